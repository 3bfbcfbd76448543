using System.Numerics;
using System.Numerics.Tensors;
using Backprop.Kernels;

namespace Backprop;

public static partial class Ops
{
    // C = op(A)·op(B), op = identity or transpose (read in place, never materialised).
    //   ∂L/∂A = G·Bᵀ,  ∂L/∂B = Aᵀ·G        (and the matching forms when an operand is transposed)
    public static Tensor MatMul(this Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        var (m, n, k) = MatMulShape(a, b, transposeA, transposeB);
        var c = Tensor.Empty([m, n], a.DType);
        Gemm(a, transposeA, b, transposeB, c, m, n, k, accumulate: false);
        return c.Record("matmul", a, b, g => (
            !a.RequiresGrad ? null : transposeA ? Product(b, transposeB, g, true, a) : Product(g, false, b, !transposeB, a),
            !b.RequiresGrad ? null : transposeB ? Product(g, true, a, transposeA, b) : Product(a, !transposeA, g, false, b)));
    }

    /// <summary>destination = op(a)·op(b) written in place (PyTorch's <c>out=</c>); not recorded by autograd.</summary>
    public static void MatMulInto(Tensor a, Tensor b, Tensor destination, bool transposeA = false, bool transposeB = false)
    {
        var (m, n, k) = MatMulShape(a, b, transposeA, transposeB);
        if (destination.Rank != 2 || destination.Size(0) != m || destination.Size(1) != n || destination.DType != a.DType)
            throw new ArgumentException($"matmul: destination {ShapeUtil.Format(destination.Shape)} {destination.DType} is not ({m},{n}) {a.DType}");
        Gemm(a, transposeA, b, transposeB, destination, m, n, k, accumulate: false);
    }

    // y = x·Wᵀ + b, with W stored (out, in) as in PyTorch.
    //   ∂L/∂x = G·W,  ∂L/∂W = Gᵀ·x,  ∂L/∂b = Σ_rows G
    public static Tensor Linear(this Tensor x, Tensor weight, Tensor? bias = null)
    {
        var (m, n, k) = MatMulShape(x, weight, false, true, "linear");
        if (bias is not null && (bias.Rank != 1 || bias.shape[0] != n || bias.DType != x.DType))
            throw new ArgumentException($"linear: bias {ShapeUtil.Format(bias.shape)} {bias.DType} does not match {n} outputs {x.DType}");
        var y = Tensor.Empty([m, n], x.DType);
        if (bias is not null) BroadcastRows(bias, y, m, n);
        Gemm(x, false, weight, true, y, m, n, k, accumulate: bias is not null);
        if (Autograd.Recording(x, weight, bias)) Autograd.RecordStatic(y, "linear", LinearBackward, x, weight, bias);
        return y;
    }

    static readonly Action<Node, Tensor> LinearBackward = static (node, g) =>
    {
        Tensor x = node.Inputs[0], weight = node.Inputs[1];
        if (x.RequiresGrad) node.Grads[0] = Product(g, false, weight, false, x);
        if (weight.RequiresGrad) node.Grads[1] = Product(g, true, x, false, weight);
        if (node.Inputs.Length > 2 && node.Inputs[2] is { RequiresGrad: true } bias) node.Grads[2] = ColumnSums(g, bias);
    };

    /// <summary>
    /// op(p)·op(q) as the gradient of <paramref name="target"/>: added straight into the target's Grad when it is a
    /// leaf (returning null), else returned as a new tensor.
    /// </summary>
    static Tensor? Product(Tensor p, bool tp, Tensor q, bool tq, Tensor target)
    {
        if (Autograd.LeafGradBuffer(target) is not Tensor buffer) return p.MatMul(q, tp, tq);
        var (m, n, k) = MatMulShape(p, q, tp, tq);
        Gemm(p, tp, q, tq, buffer, m, n, k, accumulate: true);
        return null;
    }

    /// <summary>Σ_rows g as the gradient of a bias, accumulated in place when the bias is a leaf.</summary>
    static Tensor? ColumnSums(Tensor g, Tensor bias)
    {
        if (Autograd.LeafGradBuffer(bias) is not Tensor buffer) return Reduce.Sum(g, 0, keepDim: false);
        int m = g.Size(0), n = g.Size(1);
        if (g.DType == DType.Float32) AddRows<float>(g.Span<float>(), buffer.Span<float>(), m, n);
        else AddRows<double>(g.Span<double>(), buffer.Span<double>(), m, n);
        return null;

        static void AddRows<T>(ReadOnlySpan<T> src, Span<T> dst, int m, int n) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < m; i++) TensorPrimitives.Add(dst, src.Slice(i * n, n), dst);
        }
    }

    static (int M, int N, int K) MatMulShape(Tensor a, Tensor b, bool ta, bool tb, string op = "matmul")
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: dtypes {a.DType} and {b.DType} differ");
        if (a.Rank != 2 || b.Rank != 2)
            throw new ArgumentException($"{op}: {ShapeUtil.Format(a.shape)} x {ShapeUtil.Format(b.shape)}: both operands must be 2-D");
        int m = ta ? a.shape[1] : a.shape[0], ka = ta ? a.shape[0] : a.shape[1];
        int kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1];
        if (ka != kb)
        {
            string sa = ShapeUtil.Format(a.shape) + (ta ? "ᵀ" : ""), sb = ShapeUtil.Format(b.shape) + (tb ? "ᵀ" : "");
            throw new ArgumentException($"{op}: {sa} x {sb}: inner dimensions {ka} and {kb} differ");
        }
        return (m, n, ka);
    }

    static void Gemm(Tensor a, bool ta, Tensor b, bool tb, Tensor c, int m, int n, int k, bool accumulate)
    {
        if (a.DType == DType.Float32) Kernels.Gemm.Multiply<float>(a.Span<float>(), ta, b.Span<float>(), tb, c.Span<float>(), m, n, k, accumulate);
        else Kernels.Gemm.Multiply<double>(a.Span<double>(), ta, b.Span<double>(), tb, c.Span<double>(), m, n, k, accumulate);
    }

    static void BroadcastRows(Tensor row, Tensor y, int m, int n)
    {
        if (y.DType == DType.Float32) Fill<float>(row.Span<float>(), y.Span<float>(), m, n);
        else Fill<double>(row.Span<double>(), y.Span<double>(), m, n);

        static void Fill<T>(ReadOnlySpan<T> r, Span<T> d, int m, int n) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < m; i++) r.CopyTo(d.Slice(i * n, n));
        }
    }
}
