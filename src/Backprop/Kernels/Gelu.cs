using System.Numerics;
using System.Runtime.Intrinsics;

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

    // The activations of a conv net are large (cifar10-cnn's stem: 5.9 M values a batch) and each value costs an
    // exponential and a division: one 256-bit core took 16 of a 205 ms step (Zen 5). So the float32 passes run in
    // 512-bit vectors where the CPU has them, in pieces on the kernels' helpers. Every value — the ragged end included,
    // through a zero-padded vector — takes the same vector formula, so neither the split nor the vector width changes a bit.
    const int MinPerThread = 32 * 1024, Pieces = 16;

    static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length, threads = Workers.ThreadsFor(n / MinPerThread);
        if (threads <= 1) { ForwardRange(x, y); return; }
        fixed (float* px = x, py = y)
        {
            nint x0 = (nint)px, y0 = (nint)py;
            Workers.ForRanges(n, Pieces, threads, (s, len) => ForwardRange(new ReadOnlySpan<float>((float*)x0 + s, len), new Span<float>((float*)y0 + s, len)));
        }
    }

    static unsafe void Backward(ReadOnlySpan<float> g, ReadOnlySpan<float> x, Span<float> d)
    {
        int n = x.Length, threads = Workers.ThreadsFor(n / MinPerThread);
        if (threads <= 1) { BackwardRange(g, x, d); return; }
        fixed (float* pg = g, px = x, pd = d)
        {
            nint g0 = (nint)pg, x0 = (nint)px, d0 = (nint)pd;
            Workers.ForRanges(n, Pieces, threads, (s, len) => BackwardRange(new ReadOnlySpan<float>((float*)g0 + s, len), new ReadOnlySpan<float>((float*)x0 + s, len), new Span<float>((float*)d0 + s, len)));
        }
    }

    static void ForwardRange(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0, n = x.Length;
        Span<float> pad = stackalloc float[16];
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Create(x[i..]);
                (v * Cdf(v, out _)).CopyTo(y[i..]);
            }
            if (i == n) return;
            var last = Vector512.Create<float>(Padded(x[i..], pad));
            (last * Cdf(last, out _)).CopyTo(pad);
        }
        else
        {
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                (v * Cdf(v, out _)).CopyTo(y[i..]);
            }
            if (i == n) return;
            var last = new Vector<float>(Padded(x[i..], pad));
            (last * Cdf(last, out _)).CopyTo(pad);
        }
        pad[..(n - i)].CopyTo(y[i..]);
    }

    static void BackwardRange(ReadOnlySpan<float> g, ReadOnlySpan<float> x, Span<float> d)
    {
        int i = 0, n = x.Length;
        Span<float> px = stackalloc float[16], pg = stackalloc float[16];
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Create(x[i..]);
                var cdf = Cdf(v, out var e);
                (Vector512.Create(g[i..]) * (cdf + v * e * (float)InvSqrt2Pi)).CopyTo(d[i..]);
            }
            if (i == n) return;
            var lx = Vector512.Create<float>(Padded(x[i..], px));
            var lcdf = Cdf(lx, out var le);
            (Vector512.Create<float>(Padded(g[i..], pg)) * (lcdf + lx * le * (float)InvSqrt2Pi)).CopyTo(px);
        }
        else
        {
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                var cdf = Cdf(v, out var e);
                (new Vector<float>(g[i..]) * (cdf + v * e * (float)InvSqrt2Pi)).CopyTo(d[i..]);
            }
            if (i == n) return;
            var lx = new Vector<float>(Padded(x[i..], px));
            var lcdf = Cdf(lx, out var le);
            (new Vector<float>(Padded(g[i..], pg)) * (lcdf + lx * le * (float)InvSqrt2Pi)).CopyTo(px);
        }
        px[..(n - i)].CopyTo(d[i..]);
    }

    /// <summary>The last values of a row, zero after them, in a buffer one vector long.</summary>
    static Span<float> Padded(ReadOnlySpan<float> rest, Span<float> buffer)
    {
        buffer.Clear();
        rest.CopyTo(buffer);
        return buffer;
    }

    // Φ(x), and e^{−x²/2} for φ (the two widths: the same formula lane by lane).
    static Vector512<float> Cdf(Vector512<float> x, out Vector512<float> e)
    {
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Abs(x) * (P * (float)InvSqrt2));
        e = Vector512.Exp(x * x * -0.5f);
        var tail = ((((t * A5 + Vector512.Create(A4)) * t + Vector512.Create(A3)) * t + Vector512.Create(A2)) * t + Vector512.Create(A1)) * t * e * 0.5f;
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), tail, Vector512<float>.One - tail);
    }

    static Vector<float> Cdf(Vector<float> x, out Vector<float> e)
    {
        var t = Vector<float>.One / (Vector<float>.One + Vector.Abs(x) * (P * (float)InvSqrt2));
        e = Vector.Exp(x * x * -0.5f);
        var tail = ((((t * A5 + new Vector<float>(A4)) * t + new Vector<float>(A3)) * t + new Vector<float>(A2)) * t + new Vector<float>(A1)) * t * e * 0.5f;
        return Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), tail, Vector<float>.One - tail);
    }
}
