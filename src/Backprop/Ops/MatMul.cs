using System.Numerics;
using System.Numerics.Tensors;
using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // C = op(A)·op(B) for 2-D operands, op = identity or transpose (read in place, never materialised).
    //   ∂L/∂A = G·Bᵀ,  ∂L/∂B = Aᵀ·G        (and the matching forms when an operand is transposed)
    public static Tensor MatMul(this Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        if ((a.Rank != 2 || b.Rank != 2) && !transposeA && !transposeB) return MatMulNd(a, b);
        var (m, n, k) = MatMulShape(a, b, transposeA, transposeB);
        var c = Tensor.Uninitialized(ShapeUtil.Of(m, n), a.DType);   // the GEMM overwrites C
        Gemm(a, transposeA, b, transposeB, c, m, n, k, accumulate: false);
        return Autograd.Recording(a, b) ? new MatMulOp(a, b, transposeA, transposeB).Attach(c, a, b) : c;
    }

    internal sealed class MatMulOp : Function
    {
        readonly bool transposeA, transposeB;
        public MatMulOp(Tensor a, Tensor b, bool transposeA, bool transposeB) { this.transposeA = transposeA; this.transposeB = transposeB; SaveForBackward(a, b); }
        public override string Name => "matmul";
        public override IEnumerable<(string, object)> Attributes => [("transpose_a", transposeA), ("transpose_b", transposeB)];
        protected override Tensor?[] Backward(Tensor g)
        {
            Tensor a = Saved(0), b = Saved(1);
            return [
                !NeedsInputGrad(0) ? null : transposeA ? Product(b, transposeB, g, true, AccumulationBuffer(0)) : Product(g, false, b, !transposeB, AccumulationBuffer(0)),
                !NeedsInputGrad(1) ? null : transposeB ? Product(g, true, a, transposeA, AccumulationBuffer(1)) : Product(a, !transposeA, g, false, AccumulationBuffer(1))];
        }
    }

    // torch.matmul beyond 2-D: a 1-D operand gains a dimension (removed again after), batch dimensions broadcast,
    // and each batch is one GEMM. Written with views and the 3-D product, so autograd derives the rest.
    static Tensor MatMulNd(Tensor a, Tensor b)
    {
        if (a.Rank == 0 || b.Rank == 0) throw new ArgumentException($"matmul: both operands need at least one dimension, got {ShapeUtil.Format(a.shape)} and {ShapeUtil.Format(b.shape)}");
        if (a.DType != b.DType) throw new ArgumentException($"matmul: dtypes {a.DType} and {b.DType} differ");
        bool vecA = a.Rank == 1, vecB = b.Rank == 1;
        var a2 = vecA ? a.Unsqueeze(0) : a;
        var b2 = vecB ? b.Unsqueeze(1) : b;
        int m = a2.shape[^2], k = a2.shape[^1], kb = b2.shape[^2], n = b2.shape[^1];
        if (k != kb) throw new ArgumentException($"matmul: {ShapeUtil.Format(a.shape)} x {ShapeUtil.Format(b.shape)}: inner dimensions {k} and {kb} differ");
        if (a2.Rank == 2 && b2.Rank == 2)
        {
            var r2 = a2.MatMul(b2);
            return vecA && vecB ? r2.Reshape() : vecA ? r2.Squeeze(0) : vecB ? r2.Squeeze(1) : r2;
        }
        var batch = ShapeUtil.Broadcast(a2.shape[..^2], b2.shape[..^2], "matmul");
        int count = ShapeUtil.Count(batch, "matmul");
        var a3 = a2.Expand([.. batch, m, k]).Reshape(count, m, k);
        var b3 = b2.Expand([.. batch, k, n]).Reshape(count, k, n);
        var r = BatchedMatMul(a3, b3).Reshape([.. batch, m, n]);
        if (vecA) r = r.Squeeze(-2);
        if (vecB) r = r.Squeeze(-1);
        return r;
    }

    // C[i] = A[i]·B[i] over a batch of 3-D operands;  ∂L/∂A[i] = G[i]·B[i]ᵀ,  ∂L/∂B[i] = A[i]ᵀ·G[i]
    static Tensor BatchedMatMul(Tensor a, Tensor b)
    {
        int count = a.shape[0], m = a.shape[1], k = a.shape[2], n = b.shape[2];
        var c = Tensor.Empty([count, m, n], a.DType);
        Tensor ad = a.Dense().Detach(), bd = b.Dense().Detach();
        for (int i = 0; i < count; i++)
            Gemm(ad.Select(0, i), false, bd.Select(0, i), false, c.Detach().Select(0, i), m, n, k, accumulate: false);
        return Autograd.Recording(a, b) ? new BatchedMatMulOp(ad, bd).Attach(c, a, b) : c;
    }

    internal sealed class BatchedMatMulOp : Function
    {
        public BatchedMatMulOp(Tensor a, Tensor b) => SaveForBackward(a, b);
        public override string Name => "bmm";
        protected override Tensor?[] Backward(Tensor g)
        {
            Tensor ad = Saved(0), bd = Saved(1);
            int count = ad.shape[0], m = ad.shape[1], k = ad.shape[2], n = bd.shape[2];
            var gd = g.Dense().Detach();
            Tensor? da = NeedsInputGrad(0) ? Tensor.Empty(ad.shape, ad.DType) : null, db = NeedsInputGrad(1) ? Tensor.Empty(bd.shape, bd.DType) : null;
            for (int i = 0; i < count; i++)
            {
                var gi = gd.Select(0, i);
                if (da is not null) Gemm(gi, false, bd.Select(0, i), true, da.Select(0, i), m, k, n, accumulate: false);
                if (db is not null) Gemm(ad.Select(0, i), true, gi, false, db.Select(0, i), k, n, m, accumulate: false);
            }
            return [da, db];
        }
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
        if (x.Rank != 2 && x.Rank > 0)   // (…, in): the leading dimensions are one batch
            return x.Reshape(-1, x.shape[^1]).Linear(weight, bias).Reshape([.. x.shape[..^1], weight.Size(0)]);
        var (m, n, k) = MatMulShape(x, weight, false, true, "linear");
        if (bias is not null && (bias.Rank != 1 || bias.shape[0] != n || bias.DType != x.DType))
            throw new ArgumentException($"linear: bias {ShapeUtil.Format(bias.shape)} {bias.DType} does not match {n} outputs {x.DType}");
        var y = Tensor.Uninitialized(ShapeUtil.Of(m, n), x.DType);   // overwritten by the rows or the GEMM
        if (bias is not null) BroadcastRows(bias, y, m, n);
        Gemm(x, false, weight, true, y, m, n, k, accumulate: bias is not null);
        if (!Autograd.Recording(x, weight, bias)) return y;
        return bias is null ? new LinearOp(x, weight).Attach(y, x, weight) : new LinearOp(x, weight).Attach(y, x, weight, bias);
    }

    internal sealed class LinearOp : Function
    {
        public LinearOp(Tensor x, Tensor weight) => SaveForBackward(x, weight);
        public override string Name => "linear";
        protected override Tensor?[] Backward(Tensor g)
        {
            Tensor x = Saved(0), weight = Saved(1);
            return [
                NeedsInputGrad(0) ? Product(g, false, weight, false, AccumulationBuffer(0)) : null,
                NeedsInputGrad(1) ? Product(g, true, x, false, AccumulationBuffer(1)) : null,
                NeedsInputGrad(2) ? ColumnSums(g, AccumulationBuffer(2)) : null];
        }
    }

    /// <summary>
    /// op(p)·op(q) as an input's gradient: added straight into the engine's accumulation buffer when it offers one
    /// (returning null — the GEMM accumulates, saving a temporary and a pass), else returned as a new tensor.
    /// </summary>
    static Tensor? Product(Tensor p, bool tp, Tensor q, bool tq, Tensor? buffer)
    {
        if (buffer is null) return p.MatMul(q, tp, tq);
        var (m, n, k) = MatMulShape(p, q, tp, tq);
        bool overwrite = buffer.TakePendingZero(p, q);   // a zeroed gradient is overwritten
        try { Gemm(p, tp, q, tq, buffer, m, n, k, accumulate: !overwrite); }
        catch { if (overwrite) buffer.ZeroLater(); throw; }
        return null;
    }

    /// <summary>Σ_rows g as a bias's gradient, added into the engine's accumulation buffer when it offers one.</summary>
    static Tensor? ColumnSums(Tensor g, Tensor? buffer)
    {
        bool overwrite = buffer is not null && buffer.TakePendingZero(g);   // a zeroed gradient: the sums written straight into it
        var sums = overwrite ? buffer! : Tensor.Uninitialized(buffer?.shape ?? ShapeUtil.Of(g.shape[1]), g.DType);   // every sum written by the kernel
        try { Backend.Current.Sum(g, 0, sums); }
        catch { if (overwrite) buffer!.ZeroLater(); throw; }
        if (buffer is null) return sums;
        if (overwrite) return null;
        Backend.Current.Axpy(1, sums, buffer);
        return null;
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

    static void Gemm(Tensor a, bool ta, Tensor b, bool tb, Tensor c, int m, int n, int k, bool accumulate) =>
        Backend.Current.MatMul(a, ta, b, tb, c, accumulate);

    // The row seen as (m, n) with stride 0 down the rows: a view made directly (no recorded op, no shape arrays).
    static void BroadcastRows(Tensor row, Tensor y, int m, int n)
    {
        var r = row.Dense();
        Backend.Current.Copy(new Tensor(r.storage, y.shape, RowStrides, r.offset), y);
    }

    static readonly int[] RowStrides = [0, 1];
}
