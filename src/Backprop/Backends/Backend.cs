namespace Backprop.Backends;

/// <summary>Elementwise maps of one tensor. α and β parameterise the few that need them.</summary>
public enum UnaryOp
{
    Neg, Exp, Log, Sqrt, Sin, Cos, Tanh, Sigmoid, Relu, Abs,
    /// <summary>−1, 0 or 1.</summary>
    Sign,
    /// <summary>1 where x ≠ 0, else 0.</summary>
    NonZero,
    /// <summary>x^α.</summary>
    Pow,
    /// <summary>min(max(x, α), β).</summary>
    Clamp,
    /// <summary>1 where α &lt; x &lt; β, else 0.</summary>
    Inside,
    /// <summary>log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}), accurate for large |x| (1e-9-sized results keep their digits).</summary>
    Softplus,
    /// <summary>The error function, (2/√π) ∫₀ˣ e^{−t²} dt.</summary>
    Erf,
    /// <summary>eˣ − 1, accurate near 0.</summary>
    Expm1,
    /// <summary>x·Φ(x), Φ the standard normal CDF (exact GELU).</summary>
    Gelu,
}

/// <summary>Elementwise maps of two tensors; the arithmetic ones broadcast, the gates need equal shapes.</summary>
public enum BinaryOp
{
    Add, Sub, Mul, Div, Maximum,
    /// <summary>1 where a &gt; b, else 0.</summary>
    Greater,
    /// <summary>a where b &gt; α, else 0: the gate of ReLU's backward.</summary>
    PassWhereGreater,
    /// <summary>a·(Φ(b) + b·φ(b)) (equal shapes): exact GELU's backward, a the upstream gradient, b the input.</summary>
    GeluGrad,
}

/// <summary>
/// The shape of a 2-D convolution (NCHW): input (N, C, H, W), weight (K, C/groups, KH, KW), output (N, K, OH, OW).
/// Padding may differ on the two sides of an axis (PyTorch's "same" with an even kernel pads one more at the end).
/// A transposed convolution is described by the convolution whose input gradient it is.
/// </summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InChannels, int Height, int Width, int OutChannels, int KernelHeight, int KernelWidth,
    int StrideHeight = 1, int StrideWidth = 1, int PadTop = 0, int PadBottom = 0, int PadLeft = 0, int PadRight = 0,
    int DilationHeight = 1, int DilationWidth = 1, int Groups = 1)
{
    public int OutHeight => (Height + PadTop + PadBottom - DilationHeight * (KernelHeight - 1) - 1) / StrideHeight + 1;
    public int OutWidth => (Width + PadLeft + PadRight - DilationWidth * (KernelWidth - 1) - 1) / StrideWidth + 1;
    /// <summary>Input channels per group: the weight's second dimension.</summary>
    public int GroupInChannels => InChannels / Groups;
    public int GroupOutChannels => OutChannels / Groups;
    /// <summary>True when the convolution reads each input element once, in place (1×1, stride 1, no padding).</summary>
    public bool IsPointwise => KernelHeight == 1 && KernelWidth == 1 && StrideHeight == 1 && StrideWidth == 1
        && PadTop == 0 && PadBottom == 0 && PadLeft == 0 && PadRight == 0;
}

/// <summary>
/// The shape of 2-D pooling over (N, C, H, W): windows of KH×KW every stride, implicit padding (−∞ for max, 0 for
/// average), dilation (max only), and PyTorch's ceil mode (a last window may start in the input or the left padding,
/// never in the right padding). <see cref="Adaptive"/> windows are PyTorch's adaptive ones, ⌊o·H/OH⌋ to ⌈(o+1)·H/OH⌉.
/// </summary>
public readonly record struct Pool2dGeometry(
    int Batch, int Channels, int Height, int Width, int KernelHeight, int KernelWidth,
    int StrideHeight, int StrideWidth, int PadHeight = 0, int PadWidth = 0, int DilationHeight = 1, int DilationWidth = 1,
    bool CeilMode = false, bool CountIncludePad = true, bool Adaptive = false, int AdaptiveOutHeight = 0, int AdaptiveOutWidth = 0)
{
    public int OutHeight => Adaptive ? AdaptiveOutHeight : OutSize(Height, KernelHeight, StrideHeight, PadHeight, DilationHeight);
    public int OutWidth => Adaptive ? AdaptiveOutWidth : OutSize(Width, KernelWidth, StrideWidth, PadWidth, DilationWidth);

    int OutSize(int size, int kernel, int stride, int pad, int dilation)
    {
        int span = size + 2 * pad - dilation * (kernel - 1) - 1;
        if (span < 0) return 0;   // the window does not fit
        int o = (CeilMode ? (span + stride - 1) / stride : span / stride) + 1;
        if (CeilMode && (o - 1) * stride >= size + pad) o--;   // the last window must start inside the input or the left padding
        return o;
    }

    /// <summary>
    /// Average pooling's window along rows (or columns) for output index <paramref name="o"/>: the input range
    /// [Start, End) it covers, and its extent counting padding (the divisor when <see cref="CountIncludePad"/>).
    /// </summary>
    public (int Start, int End, int Extent) Window(int o, bool rows)
    {
        int size = rows ? Height : Width;
        if (Adaptive)
        {
            int outs = rows ? AdaptiveOutHeight : AdaptiveOutWidth;
            int s = (int)((long)o * size / outs), e = (int)(((long)(o + 1) * size + outs - 1) / outs);
            return (s, e, e - s);
        }
        int k = rows ? KernelHeight : KernelWidth, st = rows ? StrideHeight : StrideWidth, p = rows ? PadHeight : PadWidth;
        int start = o * st - p, end = Math.Min(start + k, size + p), extent = end - start;
        return (Math.Max(start, 0), Math.Min(end, size), extent);
    }

    /// <summary>The divisor of the average over output (oh, ow).</summary>
    public int Divisor(int oh, int ow)
    {
        var (hs, he, hx) = Window(oh, true);
        var (ws, we, wx) = Window(ow, false);
        return Adaptive || !CountIncludePad ? (he - hs) * (we - ws) : hx * wx;
    }
}

/// <summary>
/// The one seam between ops and kernels: every computation an op performs on tensor memory goes through these
/// methods, so a device or kernel set is added by implementing this interface alone — ops, autograd and modules
/// stay as they are. Inputs may be strided views (a backend reads them as it likes); outputs are contiguous tensors
/// the op has just created, except where a method says it writes into a given tensor. See docs/backends.md.
/// </summary>
public interface IBackend
{
    string Name { get; }

    /// <summary>destination[i] = source[i] for every index; any layouts, same shape and dtype (stride 0 allowed in the source).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>y = op(x), same shape.</summary>
    void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0);

    /// <summary>y = op(a, b) with NumPy broadcasting to y's shape (y may be a when shapes are equal).</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, double alpha = 0);

    /// <summary>y ← y + α·x in place (same shape; y contiguous).</summary>
    void Axpy(double alpha, Tensor x, Tensor y);

    /// <summary>Σᵢ aᵢ·bᵢ over equal shapes.</summary>
    double Dot(Tensor a, Tensor b);

    /// <summary>Σᵢ xᵢ.</summary>
    double SumAll(Tensor x);

    /// <summary>y = Σ of x along <paramref name="axis"/>; y holds x's elements' order with that axis removed.</summary>
    void Sum(Tensor x, int axis, Tensor y);

    /// <summary>Maximum along <paramref name="axis"/> and the index of its first occurrence (NaN counts as the largest).</summary>
    void Max(Tensor x, int axis, Tensor values, int[] indices);

    /// <summary>Softmax over the last dimension, max-shifted; the rows' log-sum-exp into <paramref name="logSumExp"/> when given.</summary>
    void SoftmaxRows(Tensor x, Tensor probs, Tensor? logSumExp);

    /// <summary>c = op(a)·op(b) (or c += when <paramref name="accumulate"/>) for 2-D operands; c contiguous.</summary>
    void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, bool accumulate);

    /// <summary>y[i] = x[rows[i]] along dimension 0.</summary>
    void IndexSelect(Tensor x, ReadOnlySpan<int> rows, Tensor y);

    /// <summary>target[rows[i]] += source[i] along dimension 0 (rows may repeat); target contiguous.</summary>
    void IndexAdd(Tensor source, ReadOnlySpan<int> rows, Tensor target);

    /// <summary>target[p] += value at each flat position p (positions may repeat); target contiguous.</summary>
    void AddAt(double value, ReadOnlySpan<int> positions, Tensor target);

    /// <summary>y = condition ≠ 0 ? a : b, all three broadcast to y's shape.</summary>
    void Where(Tensor condition, Tensor a, Tensor b, Tensor y);

    /// <summary>y = conv2d(x, weight) (+ bias per output channel); x (N, C, H, W), y (N, K, OH, OW) contiguous, overwritten.</summary>
    void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g);

    /// <summary>gx = ∂L/∂x of a convolution given gy = ∂L/∂y (also a transposed convolution's forward); gx contiguous, overwritten.</summary>
    void Conv2dInputGrad(Tensor gy, Tensor weight, Tensor gx, in Conv2dGeometry g);

    /// <summary>gw = ∂L/∂weight of a convolution given x and gy; gw contiguous (K, C/groups, KH, KW), overwritten.</summary>
    void Conv2dWeightGrad(Tensor x, Tensor gy, Tensor gw, in Conv2dGeometry g);

    /// <summary>
    /// Max pooling: y (N, C, OH, OW) and, per output, the flat index (h·W + w) of its maximum in its input plane. The first
    /// maximum in window order wins a tie; a NaN wins over any number (as PyTorch).
    /// </summary>
    void MaxPool2d(Tensor x, Tensor y, int[] indices, in Pool2dGeometry g);

    /// <summary>gx = ∂L/∂x of max pooling: gy added at each output's index, zero elsewhere (gx contiguous, overwritten).</summary>
    void MaxPool2dBackward(Tensor gy, int[] indices, Tensor gx, in Pool2dGeometry g);

    /// <summary>Average pooling (plain or adaptive) into y (N, C, OH, OW), overwritten.</summary>
    void AvgPool2d(Tensor x, Tensor y, in Pool2dGeometry g);

    /// <summary>Average pooling's backward: each gy spread evenly over its window; gx contiguous, overwritten.</summary>
    void AvgPool2dBackward(Tensor gy, Tensor gx, in Pool2dGeometry g);

    /// <summary>Per channel of x (N, C, L): the mean and the biased variance over N and L, into 1-D tensors of C.</summary>
    void ChannelMeanVar(Tensor x, Tensor mean, Tensor variance);

    /// <summary>Per channel of a (N, C, L): Σ a into <paramref name="sumA"/> and, when b is given, Σ a·b into <paramref name="sumAB"/>.</summary>
    void ChannelSums(Tensor a, Tensor? b, Tensor sumA, Tensor? sumAB);

    /// <summary>y[n, c, l] = x·scale[c] + z·zScale[c] + shift[c] over (N, C, L) (z optional); y contiguous, overwritten, and may be x.</summary>
    void ChannelAffine(Tensor x, Tensor scale, Tensor? z, Tensor? zScale, Tensor shift, Tensor y);
}

/// <summary>Which backend ops use: <see cref="Cpu"/> unless a <see cref="Use"/> scope says otherwise (flows across await).</summary>
public static class Backend
{
    /// <summary>Managed SIMD kernels (TensorPrimitives, the blocked GEMM): the default.</summary>
    public static IBackend Cpu { get; } = new CpuBackend();

    /// <summary>Deliberately simple scalar kernels accumulating in float64: an oracle for <see cref="Cpu"/>, and proof of the seam.</summary>
    public static IBackend Reference { get; } = new ReferenceBackend();

    static readonly AsyncLocal<IBackend?> current = new();

    public static IBackend Current => current.Value ?? Cpu;

    /// <summary>Runs ops on <paramref name="backend"/> until the returned scope is disposed (disposing twice is harmless).</summary>
    public static IDisposable Use(IBackend backend) => new Scope(backend);

    sealed class Scope : IDisposable
    {
        readonly IBackend? previous;
        bool disposed;
        public Scope(IBackend backend) { previous = current.Value; current.Value = backend; }
        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            current.Value = previous;
        }
    }
}
