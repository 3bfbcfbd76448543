using System.Numerics;

namespace Backprop.Kernels;

/// <summary>Comparison-driven kernels (gates) used by the backward passes of piecewise ops.</summary>
internal static class Masks
{
    /// <summary>d = (x > threshold) ? g : 0 — the gate of ReLU and of max-type ops (contiguous, equal shapes).</summary>
    public static void PassWhereGreater(Tensor g, Tensor x, double threshold, Tensor d)
    {
        if (g.DType == DType.Float32) PassWhereGreater(g.Span<float>(), x.Span<float>(), (float)threshold, d.Span<float>());
        else PassWhereGreater(g.Span<double>(), x.Span<double>(), threshold, d.Span<double>());
    }

    static void PassWhereGreater<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, T threshold, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var t = new Vector<T>(threshold);
            for (; i <= g.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var m = Vector.GreaterThan(new Vector<T>(x[i..]), t);
                Vector.ConditionalSelect(m, new Vector<T>(g[i..]), Vector<T>.Zero).CopyTo(d[i..]);
            }
        }
        for (; i < g.Length; i++) d[i] = x[i] > threshold ? g[i] : T.Zero;
    }

    /// <summary>1 where a > b, else 0, elementwise over equal shapes.</summary>
    public static void Greater(Tensor a, Tensor b, Tensor d)
    {
        if (a.DType == DType.Float32) Greater(a.Span<float>(), b.Span<float>(), d.Span<float>());
        else Greater(a.Span<double>(), b.Span<double>(), d.Span<double>());
    }

    static void Greater<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Length; i++) d[i] = a[i] > b[i] ? T.One : T.Zero;
    }
}
