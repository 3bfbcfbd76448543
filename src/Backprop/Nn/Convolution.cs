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
        if (inChannels <= 0 || outChannels <= 0 || kernelSize.Height <= 0 || kernelSize.Width <= 0)
            throw new ArgumentException($"Conv2d: channels and kernel size must be positive, got in={inChannels}, out={outChannels}, kernel={kernelSize}");
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d: groups={groups} must divide in_channels={inChannels} and out_channels={outChannels}");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        Stride = stride ?? 1; Padding = padding; Dilation = dilation ?? 1; Groups = groups;
        Weight = RegisterParameter("weight", Init.KaimingUniform(Tensor.Empty([outChannels, inChannels / groups, kernelSize.Height, kernelSize.Width], dtype), generator, a: Math.Sqrt(5)));
        if (bias)
        {
            double bound = 1 / Math.Sqrt(Init.Fans(Weight).FanIn);
            Bias = RegisterParameter("bias", Tensor.Uniform([outChannels], -bound, bound, generator, dtype));
        }
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
        if (inChannels <= 0 || outChannels <= 0 || kernelSize.Height <= 0 || kernelSize.Width <= 0)
            throw new ArgumentException($"ConvTranspose2d: channels and kernel size must be positive, got in={inChannels}, out={outChannels}, kernel={kernelSize}");
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"ConvTranspose2d: groups={groups} must divide in_channels={inChannels} and out_channels={outChannels}");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        Stride = stride ?? 1; Padding = padding ?? 0; OutputPadding = outputPadding ?? 0; Groups = groups; Dilation = dilation ?? 1;
        Weight = RegisterParameter("weight", Init.KaimingUniform(Tensor.Empty([inChannels, outChannels / groups, kernelSize.Height, kernelSize.Width], dtype), generator, a: Math.Sqrt(5)));
        if (bias)
        {
            double bound = 1 / Math.Sqrt(Init.Fans(Weight).FanIn);
            Bias = RegisterParameter("bias", Tensor.Uniform([outChannels], -bound, bound, generator, dtype));
        }
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
