namespace Backprop.Nn;

/// <summary>
/// 2-D convolution over (N, C, H, W), as torch.nn.Conv2d: weight (out, in/groups, KH, KW) and bias (out), both
/// initialised as PyTorch does (Kaiming-uniform with a = √5, i.e. U(±1/√fan_in)).
/// </summary>
public sealed class Conv2d : Module
{
    public Conv2d(int inChannels, int outChannels, Size2 kernelSize, Generator generator, Size2? stride = null, Padding2d padding = default,
        Size2? dilation = null, int groups = 1, bool bias = true, DType dtype = DType.Float32)
    {
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        Stride = stride ?? 1; Padding = padding; Dilation = dilation ?? 1; Groups = groups;
        var (w, b) = ConvParameters.Create("Conv2d", inChannels, outChannels, kernelSize, groups, [outChannels, inChannels / groups], outChannels, bias, generator, dtype);
        Weight = RegisterParameter("weight", w);
        if (b is not null) Bias = RegisterParameter("bias", b);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public Size2 KernelSize { get; }
    public Size2 Stride { get; }
    public Padding2d Padding { get; }
    public Size2 Dilation { get; }
    public int Groups { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override Tensor Forward(Tensor input) => input.Conv2d(Weight, Bias, Stride, Padding, Dilation, Groups);

    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}" +
        (Dilation != new Size2(1, 1) ? $", dilation={Dilation}" : "") + (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}

/// <summary>
/// 2-D transposed convolution, as torch.nn.ConvTranspose2d: weight (in, out/groups, KH, KW), bias (out), initialised as
/// PyTorch does (U(±1/√fan_in) with fan_in = out/groups·KH·KW, PyTorch's fan of this weight layout).
/// </summary>
public sealed class ConvTranspose2d : Module
{
    public ConvTranspose2d(int inChannels, int outChannels, Size2 kernelSize, Generator generator, Size2? stride = null, Size2? padding = null,
        Size2? outputPadding = null, int groups = 1, bool bias = true, Size2? dilation = null, DType dtype = DType.Float32)
    {
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        Stride = stride ?? 1; Padding = padding ?? 0; OutputPadding = outputPadding ?? 0; Groups = groups; Dilation = dilation ?? 1;
        var (w, b) = ConvParameters.Create("ConvTranspose2d", inChannels, outChannels, kernelSize, groups, [inChannels, outChannels / groups], outChannels, bias, generator, dtype);
        Weight = RegisterParameter("weight", w);
        if (b is not null) Bias = RegisterParameter("bias", b);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public Size2 KernelSize { get; }
    public Size2 Stride { get; }
    public Size2 Padding { get; }
    public Size2 OutputPadding { get; }
    public int Groups { get; }
    public Size2 Dilation { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override Tensor Forward(Tensor input) => input.ConvTranspose2d(Weight, Bias, Stride, Padding, OutputPadding, Groups, Dilation);

    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}" +
        (OutputPadding != new Size2(0, 0) ? $", output_padding={OutputPadding}" : "") + (Groups != 1 ? $", groups={Groups}" : "") + (Bias is null ? ", bias=False" : "");
}

/// <summary>The convolution layers' checks and PyTorch's default initialisation of their weight and bias.</summary>
file static class ConvParameters
{
    /// <summary>
    /// Weight of shape (first, second, KH, KW) Kaiming-uniform with a = √5 — U(±1/√fan_in), fan_in = second·KH·KW, PyTorch's
    /// fan for both layouts — and the bias U(±1/√fan_in).
    /// </summary>
    public static (Tensor Weight, Tensor? Bias) Create(string layer, int inChannels, int outChannels, Size2 kernel, int groups,
        int[] leading, int biasSize, bool bias, Generator generator, DType dtype)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernel.Height <= 0 || kernel.Width <= 0)
            throw new ArgumentException($"{layer}: channels and kernel size must be positive, got in={inChannels}, out={outChannels}, kernel={kernel}");
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{layer}: groups={groups} must divide in_channels={inChannels} and out_channels={outChannels}");
        var w = Init.KaimingUniform(Tensor.Empty([.. leading, kernel.Height, kernel.Width], dtype), generator, a: Math.Sqrt(5));
        if (!bias) return (w, null);
        double bound = 1 / Math.Sqrt(Init.Fans(w).FanIn);
        return (w, Tensor.Uniform([biasSize], -bound, bound, generator, dtype));
    }
}
