using System.Numerics;

namespace Backprop.Kernels;

/// <summary>
/// Exact GELU, y = x·Φ(x), and its gradient g·(Φ(x) + x·φ(x)), each in one pass. float64 uses erf to double precision;
/// float32 uses Abramowitz–Stegun 7.1.26 for erfc (|error| &lt; 1.5e-7, as PyTorch's vectorised CPU erf), written as
/// Φ(−|x|) = ½·erfc(|x|/√2) so that neither tail cancels, and sharing its e^{−x²/2} with φ.
/// </summary>
internal static class Gelu
{
    const double InvSqrt2 = 0.7071067811865476, InvSqrt2Pi = 0.3989422804014327;
    const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    public static void Forward(Tensor x, Tensor y)
    {
        if (x.DType == DType.Float32) Forward(x.Span<float>(), y.Span<float>());
        else
        {
            Span<double> xs = x.Span<double>(), ys = y.Span<double>();
            for (int i = 0; i < xs.Length; i++) ys[i] = xs[i] * Cdf(xs[i]);
        }
    }

    /// <summary>d = g·(Φ(x) + x·φ(x)), elementwise over equal shapes.</summary>
    public static void Backward(Tensor g, Tensor x, Tensor d)
    {
        if (x.DType == DType.Float32) Backward(g.Span<float>(), x.Span<float>(), d.Span<float>());
        else
        {
            Span<double> gs = g.Span<double>(), xs = x.Span<double>(), ds = d.Span<double>();
            for (int i = 0; i < xs.Length; i++) ds[i] = gs[i] * (Cdf(xs[i]) + xs[i] * Math.Exp(-0.5 * xs[i] * xs[i]) * InvSqrt2Pi);
        }
    }

    /// <summary>Φ(x) to double precision.</summary>
    public static double Cdf(double x) => 0.5 * (1 + ScalarMath.Erf(x * InvSqrt2));

    static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                (v * Cdf(v, out _)).CopyTo(y[i..]);
            }
        for (; i < x.Length; i++) y[i] = x[i] * Cdf(x[i], out _);
    }

    static void Backward(ReadOnlySpan<float> g, ReadOnlySpan<float> x, Span<float> d)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                var cdf = Cdf(v, out var e);
                (new Vector<float>(g[i..]) * (cdf + v * e * (float)InvSqrt2Pi)).CopyTo(d[i..]);
            }
        for (; i < x.Length; i++)
        {
            float cdf = Cdf(x[i], out float e);
            d[i] = g[i] * (cdf + x[i] * e * (float)InvSqrt2Pi);
        }
    }

    // Φ(x), and e^{−x²/2} for φ.
    static Vector<float> Cdf(Vector<float> x, out Vector<float> e)
    {
        var t = Vector<float>.One / (Vector<float>.One + Vector.Abs(x) * (P * (float)InvSqrt2));
        e = Vector.Exp(x * x * -0.5f);
        var tail = ((((t * A5 + new Vector<float>(A4)) * t + new Vector<float>(A3)) * t + new Vector<float>(A2)) * t + new Vector<float>(A1)) * t * e * 0.5f;
        return Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), tail, Vector<float>.One - tail);
    }

    static float Cdf(float x, out float e)
    {
        float t = 1 / (1 + MathF.Abs(x) * (P * (float)InvSqrt2));
        e = MathF.Exp(x * x * -0.5f);
        float tail = ((((t * A5 + A4) * t + A3) * t + A2) * t + A1) * t * e * 0.5f;
        return x < 0 ? tail : 1 - tail;
    }
}
