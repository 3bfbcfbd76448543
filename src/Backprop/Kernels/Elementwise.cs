using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>A unary elementwise kernel over spans, written once for float and double (TensorPrimitives style).</summary>
internal interface IUnaryKernel
{
    static abstract void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>A binary elementwise kernel: span∘span, span∘scalar and scalar∘span (the three broadcast fast paths).</summary>
internal interface IBinaryKernel
{
    static abstract void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
    static abstract void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>Applies elementwise kernels to tensors, with NumPy broadcasting for binary ones.</summary>
internal static class Elementwise
{
    public static Tensor Map<TKernel>(Tensor x) where TKernel : IUnaryKernel
    {
        var y = Tensor.EmptyLike(x);
        x = x.Dense();
        if (x.DType == DType.Float32) TKernel.Run<float>(x.Span<float>(), y.Span<float>());
        else TKernel.Run<double>(x.Span<double>(), y.Span<double>());
        return y;
    }

    public static Tensor Zip<TKernel>(Tensor a, Tensor b, string op) where TKernel : IBinaryKernel
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: dtypes {a.DType} and {b.DType} differ; convert one with To()");
        var shape = ShapeUtil.Equal(a.shape, b.shape) ? (int[])a.shape.Clone() : ShapeUtil.Broadcast(a.shape, b.shape, op);
        var d = Tensor.Empty(shape, a.DType);
        a = a.Dense(); b = b.Dense();
        if (a.DType == DType.Float32) Zip<TKernel, float>(a, b, d); else Zip<TKernel, double>(a, b, d);
        return d;
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

    /// <summary>target += source (same shape), in place.</summary>
    public static void AddInPlace(Tensor target, Tensor source)
    {
        if (!ShapeUtil.Equal(target.shape, source.shape) || target.DType != source.DType)
            throw new ArgumentException($"add_: {ShapeUtil.Format(source.shape)} {source.DType} into {ShapeUtil.Format(target.shape)} {target.DType}");
        source = source.Dense();
        if (target.DType == DType.Float32) TensorPrimitives.Add(target.Span<float>(), source.Span<float>(), target.Span<float>());
        else TensorPrimitives.Add(target.Span<double>(), source.Span<double>(), target.Span<double>());
    }
}
