using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>Reductions along one axis of a contiguous tensor, seen as (outer, n, inner) so every step is a unit-stride span call.</summary>
internal static class Reduce
{
    public static void Sum(Tensor x, int axis, Tensor y)
    {
        var (outer, n, inner) = ShapeUtil.Around(x.shape, axis);
        if (x.DType == DType.Float32) Sum<float>(x.Span<float>(), y.Span<float>(), outer, n, inner);
        else Sum<double>(x.Span<double>(), y.Span<double>(), outer, n, inner);
    }

    static void Sum<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int n, int inner) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (inner == 1)
        {
            for (int o = 0; o < outer; o++) y[o] = TensorPrimitives.Sum(x.Slice(o * n, n));
            return;
        }
        y.Clear();
        for (int o = 0; o < outer; o++)
        {
            var yr = y.Slice(o * inner, inner);
            for (int i = 0; i < n; i++) TensorPrimitives.Add(yr, x.Slice((o * n + i) * inner, inner), yr);
        }
    }

    /// <summary>Maximum along an axis and, per output element, the index of its first maximum.</summary>
    public static void Max(Tensor x, int axis, Tensor values, int[] indices)
    {
        var (outer, n, inner) = ShapeUtil.Around(x.shape, axis);
        if (x.DType == DType.Float32) Max<float>(x.Span<float>(), values.Span<float>(), indices, outer, n, inner);
        else Max<double>(x.Span<double>(), values.Span<double>(), indices, outer, n, inner);
    }

    static void Max<T>(ReadOnlySpan<T> x, Span<T> y, int[] idx, int outer, int n, int inner) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                var row = x.Slice(o * n, n);
                int k = TensorPrimitives.IndexOfMax(row);
                idx[o] = k; y[o] = row[k];
                continue;
            }
            for (int j = 0; j < inner; j++)
            {
                int best = 0; T bv = x[o * n * inner + j];
                for (int i = 1; i < n; i++)
                {
                    T v = x[(o * n + i) * inner + j];
                    if (v > bv || T.IsNaN(v) && !T.IsNaN(bv)) { bv = v; best = i; }
                }
                idx[o * inner + j] = best; y[o * inner + j] = bv;
            }
        }
    }
}
