using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>A binary elementwise kernel: span∘span, span∘scalar and scalar∘span (the three broadcast fast paths).</summary>
internal interface IBinaryKernel
{
    static abstract void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>Binary elementwise kernels over contiguous tensors with NumPy broadcasting.</summary>
internal static class Elementwise
{
    /// <summary>d = a ∘ b, a and b contiguous and broadcastable to d's shape.</summary>
    public static void Zip<TKernel>(Tensor a, Tensor b, Tensor d) where TKernel : IBinaryKernel
    {
        if (a.DType == DType.Float32) Zip<TKernel, float>(a, b, d); else Zip<TKernel, double>(a, b, d);
    }
    static void Zip<TKernel, T>(Tensor a, Tensor b, Tensor d) where TKernel : IBinaryKernel where T : unmanaged, IFloatingPointIeee754<T>
    {
        ReadOnlySpan<T> x = a.Span<T>(), y = b.Span<T>();
        Span<T> z = d.Span<T>();
        int n = d.Length;
        if (x.Length == n && y.Length == n) { TKernel.Run(x, y, z); return; }
        if (y.Length == 1 && x.Length == n) { TKernel.Run(x, y[0], z); return; }
        if (x.Length == 1 && y.Length == n) { TKernel.Run(x[0], y, z); return; }
        if (n == 0) return;

        // General broadcast: walk the output one innermost row at a time; each operand's row is either
        // contiguous (stride 1) or a repeated scalar (stride 0), so every row is one vectorised call.
        var shape = d.shape;
        int rank = shape.Length, inner = shape[rank - 1];
        var sa = ShapeUtil.BroadcastStrides(a.shape, shape);
        var sb = ShapeUtil.BroadcastStrides(b.shape, shape);
        var index = new int[rank];
        int oa = 0, ob = 0;
        for (int row = 0; row < n; row += inner)
        {
            var zr = z.Slice(row, inner);
            bool ra = sa[rank - 1] != 0, rb = sb[rank - 1] != 0;
            if (ra && rb) TKernel.Run(x.Slice(oa, inner), y.Slice(ob, inner), zr);
            else if (ra) TKernel.Run(x.Slice(oa, inner), y[ob], zr);
            else if (rb) TKernel.Run(x[oa], y.Slice(ob, inner), zr);
            else { TKernel.Run(x.Slice(oa, 1), y[ob], zr[..1]); zr.Fill(zr[0]); }
            // advance the multi-index over the outer dimensions
            for (int dim = rank - 2; dim >= 0; dim--)
            {
                index[dim]++; oa += sa[dim]; ob += sb[dim];
                if (index[dim] < shape[dim]) break;
                oa -= sa[dim] * shape[dim]; ob -= sb[dim] * shape[dim]; index[dim] = 0;
            }
        }
    }
}
