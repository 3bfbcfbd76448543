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
}

/// <summary>Elementwise maps of two tensors; the arithmetic ones broadcast, the gates need equal shapes.</summary>
public enum BinaryOp
{
    Add, Sub, Mul, Div, Maximum,
    /// <summary>1 where a &gt; b, else 0.</summary>
    Greater,
    /// <summary>a where b &gt; α, else 0: the gate of ReLU's backward.</summary>
    PassWhereGreater,
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

    /// <summary>y = condition ≠ 0 ? a : b, all three broadcast to y's shape.</summary>
    void Where(Tensor condition, Tensor a, Tensor b, Tensor y);
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
