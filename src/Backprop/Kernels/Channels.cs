using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>
/// Per-channel passes over (N, C, L) for batch normalisation: each (n, c) row of L values is contiguous, so every
/// pass is a vectorised span operation per row. Statistics take two passes (mean, then squared deviations) with
/// row sums carried in float64, so a channel with a large mean keeps its small variance; channels are shared among
/// threads (each channel's sum is ordered the same whatever the thread count).
/// </summary>
internal static class Channels
{
    public static void MeanVar<T>(Tensor x, Tensor mean, Tensor variance) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int nb = x.Size(0), c = x.Size(1), l = x.Size(2);
        double count = (double)nb * l;
        ForChannels(c, (long)nb * l, k =>
        {
            var xs = x.Span<T>();
            double s = 0;
            for (int n = 0; n < nb; n++) s += double.CreateTruncating(TensorPrimitives.Sum<T>(xs.Slice((n * c + k) * l, l)));
            double mu = s / count, ss = 0;
            T m = T.CreateTruncating(mu);
            // Σ(x − m)² from the deviations themselves: Σx² − 2mΣx + l·m² would cancel in the element type.
            var scratch = Scratch<T>.Get(l);
            for (int n = 0; n < nb; n++)
            {
                TensorPrimitives.Subtract(xs.Slice((n * c + k) * l, l), m, scratch);
                ss += double.CreateTruncating(TensorPrimitives.SumOfSquares<T>(scratch));
            }
            mean.Span<T>()[k] = T.CreateTruncating(mu);
            variance.Span<T>()[k] = T.CreateTruncating(ss / count);
        });
    }

    public static void Sums<T>(Tensor a, Tensor? b, Tensor sumA, Tensor? sumAB) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int nb = a.Size(0), c = a.Size(1), l = a.Size(2);
        ForChannels(c, (long)nb * l, k =>
        {
            var xs = a.Span<T>();
            double s = 0, sab = 0;
            for (int n = 0; n < nb; n++)
            {
                var row = xs.Slice((n * c + k) * l, l);
                s += double.CreateTruncating(TensorPrimitives.Sum<T>(row));
                if (b is not null) sab += double.CreateTruncating(TensorPrimitives.Dot<T>(row, b.Span<T>().Slice((n * c + k) * l, l)));
            }
            sumA.Span<T>()[k] = T.CreateTruncating(s);
            if (sumAB is not null) sumAB.Span<T>()[k] = T.CreateTruncating(sab);
        });
    }

    public static void Affine<T>(Tensor x, Tensor scale, Tensor? z, Tensor? zScale, Tensor shift, Tensor y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int nb = x.Size(0), c = x.Size(1), l = x.Size(2);
        ForChannels(c, (long)nb * l, k =>
        {
            T a = scale.Span<T>()[k], s = shift.Span<T>()[k], b = zScale is null ? T.Zero : zScale.Span<T>()[k];
            var xs = x.Span<T>();
            var ys = y.Span<T>();
            for (int n = 0; n < nb; n++)
            {
                int at = (n * c + k) * l;
                var yr = ys.Slice(at, l);
                AffineRow(xs.Slice(at, l), a, s, yr);   // y may be x
                if (z is not null) TensorPrimitives.MultiplyAdd(z.Span<T>().Slice(at, l), b, yr, yr);
            }
        });
    }

    // y = x·a + s, the product and the sum each rounded (as TensorPrimitives' Multiply then Add, which it replaces): rows
    // are short (a 7×7 or 3×3 plane), where two library calls a row cost more than the arithmetic.
    static void AffineRow<T>(ReadOnlySpan<T> x, T a, T s, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, n = x.Length;
        if (Vector.IsHardwareAccelerated && n >= Vector<T>.Count)
        {
            Vector<T> va = new(a), vs = new(s);
            for (; i <= n - Vector<T>.Count; i += Vector<T>.Count) (new Vector<T>(x[i..]) * va + vs).CopyTo(y[i..]);
        }
        for (; i < n; i++) y[i] = x[i] * a + s;
    }

    static void ForChannels(int channels, long perChannel, Action<int> body)
    {
        int threads = Workers.ThreadsFor(Math.Min(channels, channels * perChannel / (64 * 1024)));
        Workers.For(channels, threads, body);
    }

    static class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] static T[]? buffer;
        public static Span<T> Get(int length)
        {
            if (buffer is null || buffer.Length < length) buffer = GC.AllocateUninitializedArray<T>(length);
            return buffer.AsSpan(0, length);
        }
    }
}
