using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    /// <summary>
    /// 2-D max pooling of x (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d: the stride defaults to the kernel,
    /// padding (at most half the kernel) counts as −∞, the first maximum in a window wins a tie and NaN propagates.
    /// </summary>
    public static Tensor MaxPool2d(this Tensor x, Size2 kernelSize, Size2? stride = null, Size2? padding = null, Size2? dilation = null, bool ceilMode = false)
    {
        if (x.Rank == 3) return x.Unsqueeze(0).MaxPool2d(kernelSize, stride, padding, dilation, ceilMode).Squeeze(0);
        var g = PoolGeometry("max_pool2d", x, kernelSize, stride ?? kernelSize, padding ?? 0, dilation ?? 1, ceilMode, countIncludePad: true);
        var y = Tensor.Uninitialized([g.Batch, g.Channels, g.OutHeight, g.OutWidth], x.DType);
        var indices = GC.AllocateUninitializedArray<int>(y.Length);   // every index written by the kernel
        Backend.Current.MaxPool2d(x, y, indices, g);
        return Autograd.Recording(x) ? new MaxPool2dOp(g, indices).Attach(y, x) : y;
    }

    // ∂L/∂x[n, c, h, w] = Σ of G over the outputs whose window's (first) maximum is at (h, w)
    internal sealed class MaxPool2dOp(Pool2dGeometry g, int[] indices) : Function
    {
        int[]? indices = indices;
        public override string Name => "max_pool2d";
        public override IEnumerable<(string, object)> Attributes => PoolAttributes(g);
        protected override Tensor?[] Backward(Tensor gy)
        {
            var gx = Tensor.Uninitialized([g.Batch, g.Channels, g.Height, g.Width], gy.DType);   // overwritten by the backend
            Backend.Current.MaxPool2dBackward(gy, indices!, gx, g);
            return [gx];
        }
        protected override void Release() => indices = null;
    }

    /// <summary>
    /// 2-D average pooling, as torch.nn.functional.avg_pool2d: zero padding (at most half the kernel), counted in the divisor
    /// unless <paramref name="countIncludePad"/> is false; the stride defaults to the kernel.
    /// </summary>
    public static Tensor AvgPool2d(this Tensor x, Size2 kernelSize, Size2? stride = null, Size2? padding = null, bool ceilMode = false, bool countIncludePad = true)
    {
        if (x.Rank == 3) return x.Unsqueeze(0).AvgPool2d(kernelSize, stride, padding, ceilMode, countIncludePad).Squeeze(0);
        return AveragePool(x, PoolGeometry("avg_pool2d", x, kernelSize, stride ?? kernelSize, padding ?? 0, 1, ceilMode, countIncludePad));
    }

    /// <summary>
    /// Adaptive average pooling to (OH, OW), as torch.nn.functional.adaptive_avg_pool2d: output (i, j) averages rows
    /// ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1 and the matching columns.
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(this Tensor x, Size2 outputSize)
    {
        if (x.Rank == 3) return x.Unsqueeze(0).AdaptiveAvgPool2d(outputSize).Squeeze(0);
        if (x.Rank != 4) throw new ArgumentException($"adaptive_avg_pool2d: input must be (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(x.shape)}");
        if (outputSize.Height < 1 || outputSize.Width < 1) throw new ArgumentException($"adaptive_avg_pool2d: output size {outputSize} must be positive");
        if (x.shape[2] == 0 || x.shape[3] == 0) throw new ArgumentException($"adaptive_avg_pool2d: input {ShapeUtil.Format(x.shape)} has an empty plane");
        return AveragePool(x, new Pool2dGeometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], 1, 1, 1, 1,
            Adaptive: true, AdaptiveOutHeight: outputSize.Height, AdaptiveOutWidth: outputSize.Width));
    }

    /// <summary>The mean of each (n, c) plane, as (N, C, 1, 1): adaptive average pooling to 1×1 (ONNX GlobalAveragePool).</summary>
    public static Tensor GlobalAvgPool2d(this Tensor x) => x.AdaptiveAvgPool2d(1);

    /// <summary>The maximum of each (n, c) plane, as (N, C, 1, 1) (ONNX GlobalMaxPool): max pooling with the whole plane as its window.</summary>
    public static Tensor GlobalMaxPool2d(this Tensor x) =>
        x.Rank is 3 or 4 ? x.MaxPool2d((x.shape[^2], x.shape[^1])) : throw new ArgumentException($"global_max_pool2d: input must be (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(x.shape)}");

    static Tensor AveragePool(Tensor x, Pool2dGeometry g)
    {
        var y = Tensor.Uninitialized([g.Batch, g.Channels, g.OutHeight, g.OutWidth], x.DType);
        Backend.Current.AvgPool2d(x, y, g);
        return Autograd.Recording(x) ? new AvgPool2dOp(g).Attach(y, x) : y;
    }

    // ∂L/∂x[n, c, h, w] = Σ over the windows containing (h, w) of G[n, c, i, j] / divisor(i, j)
    internal sealed class AvgPool2dOp(Pool2dGeometry g) : Function
    {
        public override string Name => g.Adaptive ? "adaptive_avg_pool2d" : "avg_pool2d";
        public override IEnumerable<(string, object)> Attributes => g.Adaptive
            ? [("output_size", new Size2(g.AdaptiveOutHeight, g.AdaptiveOutWidth))]
            : [.. PoolAttributes(g), ("count_include_pad", g.CountIncludePad)];
        protected override Tensor?[] Backward(Tensor gy)
        {
            var gx = Tensor.Uninitialized([g.Batch, g.Channels, g.Height, g.Width], gy.DType);
            Backend.Current.AvgPool2dBackward(gy, gx, g);
            return [gx];
        }
    }

    static IEnumerable<(string, object)> PoolAttributes(Pool2dGeometry g) =>
    [
        ("kernel_size", new Size2(g.KernelHeight, g.KernelWidth)), ("stride", new Size2(g.StrideHeight, g.StrideWidth)),
        ("padding", new Size2(g.PadHeight, g.PadWidth)), ("dilation", new Size2(g.DilationHeight, g.DilationWidth)), ("ceil_mode", g.CeilMode),
    ];

    static Pool2dGeometry PoolGeometry(string op, Tensor x, Size2 k, Size2 s, Size2 p, Size2 d, bool ceilMode, bool countIncludePad)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: input must be (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(x.shape)}");
        if (k.Height < 1 || k.Width < 1) throw new ArgumentException($"{op}: kernel size {k} must be positive");
        if (s.Height < 1 || s.Width < 1) throw new ArgumentException($"{op}: stride {s} must be positive");
        if (d.Height < 1 || d.Width < 1) throw new ArgumentException($"{op}: dilation {d} must be positive");
        if (p.Height < 0 || p.Width < 0 || p.Height > k.Height / 2 || p.Width > k.Width / 2)
            throw new ArgumentException($"{op}: padding {p} must be non-negative and at most half the kernel size {k} (as PyTorch)");
        var g = new Pool2dGeometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], k.Height, k.Width, s.Height, s.Width, p.Height, p.Width,
            d.Height, d.Width, ceilMode, countIncludePad);
        if (g.OutHeight < 1 || g.OutWidth < 1)
            throw new ArgumentException($"{op}: input {ShapeUtil.Format(x.shape)} is too small for kernel {k} (dilation {d}, padding {p}): the output would be {g.OutHeight}×{g.OutWidth}");
        return g;
    }
}
