namespace Backprop.Nn;

/// <summary>2-D max pooling, as torch.nn.MaxPool2d (stride defaults to the kernel size).</summary>
public sealed class MaxPool2d(Size2 kernelSize, Size2? stride = null, Size2? padding = null, Size2? dilation = null, bool ceilMode = false) : Module
{
    public override Tensor Forward(Tensor input) => input.MaxPool2d(kernelSize, stride, padding, dilation, ceilMode);
    protected override string ExtraRepr() => $"kernel_size={kernelSize}, stride={stride ?? kernelSize}, padding={padding ?? 0}, dilation={dilation ?? 1}, ceil_mode={ceilMode}";
}

/// <summary>2-D average pooling, as torch.nn.AvgPool2d (stride defaults to the kernel size; padding counted unless told otherwise).</summary>
public sealed class AvgPool2d(Size2 kernelSize, Size2? stride = null, Size2? padding = null, bool ceilMode = false, bool countIncludePad = true) : Module
{
    public override Tensor Forward(Tensor input) => input.AvgPool2d(kernelSize, stride, padding, ceilMode, countIncludePad);
    protected override string ExtraRepr() => $"kernel_size={kernelSize}, stride={stride ?? kernelSize}, padding={padding ?? 0}";
}

/// <summary>Adaptive average pooling to a fixed output size, as torch.nn.AdaptiveAvgPool2d.</summary>
public sealed class AdaptiveAvgPool2d(Size2 outputSize) : Module
{
    public override Tensor Forward(Tensor input) => input.AdaptiveAvgPool2d(outputSize);
    protected override string ExtraRepr() => $"output_size={outputSize}";
}

/// <summary>Global average pooling: each (n, c) plane to its mean, (N, C, 1, 1) as AdaptiveAvgPool2d(1).</summary>
public sealed class GlobalAvgPool2d : Module { public override Tensor Forward(Tensor input) => input.GlobalAvgPool2d(); }

/// <summary>Global max pooling: each (n, c) plane to its maximum, (N, C, 1, 1) as AdaptiveMaxPool2d(1).</summary>
public sealed class GlobalMaxPool2d : Module { public override Tensor Forward(Tensor input) => input.GlobalMaxPool2d(); }
