using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Backprop.Backends;

namespace Backprop.Kernels;

/// <summary>
/// Pooling over NCHW planes, one plane (n, c) at a time, planes shared among threads. Max pooling's common case
/// (2×2, stride 2, no padding or dilation) reads two input rows as vectors and takes pairwise maxima; the general
/// case walks each window.
/// </summary>
internal static class Pooling
{
    public static void MaxForward<T>(Tensor x, Tensor y, int[] indices, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var xs = x.Span<T>().Slice(p * inPlane, inPlane);
            var ys = y.Span<T>().Slice(p * outPlane, outPlane);
            var idx = indices.AsSpan(p * outPlane, outPlane);
            if (IsHalving(g)) MaxHalving(xs, ys, idx, g);
            else MaxGeneral(xs, ys, idx, g);
        });
    }

    static bool IsHalving(in Pool2dGeometry g) => g is { KernelHeight: 2, KernelWidth: 2, StrideHeight: 2, StrideWidth: 2, PadHeight: 0, PadWidth: 0, DilationHeight: 1, DilationWidth: 1 }
        && g.OutHeight == g.Height / 2 && g.OutWidth == g.Width / 2;

    static void MaxGeneral<T>(ReadOnlySpan<T> x, Span<T> y, Span<int> idx, in Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = 0;
        for (int i = 0; i < g.OutHeight; i++)
            for (int j = 0; j < g.OutWidth; j++, o++)
            {
                T best = T.NegativeInfinity;
                int arg = -1;
                for (int p = 0; p < g.KernelHeight; p++)
                {
                    int h = i * g.StrideHeight - g.PadHeight + p * g.DilationHeight;
                    if ((uint)h >= (uint)g.Height) continue;
                    for (int q = 0; q < g.KernelWidth; q++)
                    {
                        int w = j * g.StrideWidth - g.PadWidth + q * g.DilationWidth;
                        if ((uint)w >= (uint)g.Width) continue;
                        T v = x[h * g.Width + w];
                        if (arg < 0 || v > best || T.IsNaN(v) && !T.IsNaN(best)) { best = v; arg = h * g.Width + w; }
                    }
                }
                y[o] = best;
                idx[o] = arg;
            }
    }

    // 2×2 windows, stride 2: for each output, compare (top-left, top-right, bottom-left, bottom-right) in window order.
    // As a tournament, (a, b) then (c, d) then the two winners, each won by the later only if strictly greater (or NaN
    // against a number): the same winner as the sequential scan, first maximum and first NaN included.
    static void MaxHalving<T>(ReadOnlySpan<T> x, Span<T> y, Span<int> idx, in Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = g.Width, ow = g.OutWidth;
        for (int i = 0; i < g.OutHeight; i++)
        {
            var top = x.Slice(2 * i * w, w);
            var bottom = x.Slice((2 * i + 1) * w, w);
            var yr = y.Slice(i * ow, ow);
            var ir = idx.Slice(i * ow, ow);
            int r0 = 2 * i * w;
            int j = 0;
            if (typeof(T) == typeof(float))
            {
                ReadOnlySpan<float> t = MemoryMarshal.Cast<T, float>(top), b = MemoryMarshal.Cast<T, float>(bottom);
                var yf = MemoryMarshal.Cast<T, float>(yr);
                if (Vector256.IsHardwareAccelerated) j = MaxHalvingRow(t, b, yf, ir, r0, w);
                if (Vector128.IsHardwareAccelerated) j = MaxHalvingRow128(t, b, yf, ir, r0, w, j);
            }
            for (; j < ow; j++)
            {
                T a = top[2 * j], b = top[2 * j + 1], c = bottom[2 * j], d = bottom[2 * j + 1];
                T best = a; int arg = 0;
                if (b > best || T.IsNaN(b) && !T.IsNaN(best)) { best = b; arg = 1; }
                if (c > best || T.IsNaN(c) && !T.IsNaN(best)) { best = c; arg = w; }
                if (d > best || T.IsNaN(d) && !T.IsNaN(best)) { best = d; arg = w + 1; }
                yr[j] = best;
                ir[j] = r0 + 2 * j + arg;
            }
        }
    }

    /// <summary>Eight windows at a time of one output row (floats): returns how many outputs it wrote.</summary>
    static int MaxHalvingRow(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, Span<float> y, Span<int> idx, int r0, int w)
    {
        var even = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6);
        var odd = Vector256.Create(1, 3, 5, 7, 1, 3, 5, 7);
        var columns = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        Vector256<int> one = Vector256<int>.One, below = Vector256.Create(w), belowRight = Vector256.Create(w + 1);
        int j = 0;
        for (; j + 8 <= y.Length; j += 8)
        {
            var t0 = Vector256.Create(top.Slice(2 * j, 8)); var t1 = Vector256.Create(top.Slice(2 * j + 8, 8));
            var b0 = Vector256.Create(bottom.Slice(2 * j, 8)); var b1 = Vector256.Create(bottom.Slice(2 * j + 8, 8));
            Vector256<float> a = Pick(t0, t1, even), b = Pick(t0, t1, odd), c = Pick(b0, b1, even), d = Pick(b0, b1, odd);
            var wonB = Beats(b, a);
            var ab = Vector256.ConditionalSelect(wonB, b, a);
            var atAB = Vector256.ConditionalSelect(wonB.AsInt32(), one, Vector256<int>.Zero);
            var wonD = Beats(d, c);
            var cd = Vector256.ConditionalSelect(wonD, d, c);
            var atCD = Vector256.ConditionalSelect(wonD.AsInt32(), belowRight, below);
            var wonCD = Beats(cd, ab);
            Vector256.ConditionalSelect(wonCD, cd, ab).CopyTo(y.Slice(j, 8));
            (Vector256.ConditionalSelect(wonCD.AsInt32(), atCD, atAB) + columns + Vector256.Create(r0 + 2 * j)).CopyTo(idx.Slice(j, 8));
        }
        return j;

        // the even (or odd) elements of lo then hi, in order
        static Vector256<float> Pick(Vector256<float> lo, Vector256<float> hi, Vector256<int> which) =>
            Vector256.Create(Vector256.Shuffle(lo, which).GetLower(), Vector256.Shuffle(hi, which).GetLower());

        // v wins over the best so far: strictly greater, or NaN against a number
        static Vector256<float> Beats(Vector256<float> v, Vector256<float> best) =>
            Vector256.GreaterThan(v, best) | (~Vector256.Equals(v, v) & Vector256.Equals(best, best));
    }

    /// <summary>
    /// Four windows at a time from output <paramref name="j"/> on (rows too short for eight, such as mnist-cnn's 7-wide
    /// second pooling, and SSE or NEON machines): the same tournament as <see cref="MaxHalvingRow"/>.
    /// </summary>
    static int MaxHalvingRow128(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, Span<float> y, Span<int> idx, int r0, int w, int j)
    {
        var even = Vector128.Create(0, 2, 0, 2);
        var odd = Vector128.Create(1, 3, 1, 3);
        var columns = Vector128.Create(0, 2, 4, 6);
        Vector128<int> one = Vector128<int>.One, below = Vector128.Create(w), belowRight = Vector128.Create(w + 1);
        for (; j + 4 <= y.Length; j += 4)
        {
            var t0 = Vector128.Create(top.Slice(2 * j, 4)); var t1 = Vector128.Create(top.Slice(2 * j + 4, 4));
            var b0 = Vector128.Create(bottom.Slice(2 * j, 4)); var b1 = Vector128.Create(bottom.Slice(2 * j + 4, 4));
            Vector128<float> a = Pick(t0, t1, even), b = Pick(t0, t1, odd), c = Pick(b0, b1, even), d = Pick(b0, b1, odd);
            var wonB = Beats(b, a);
            var ab = Vector128.ConditionalSelect(wonB, b, a);
            var atAB = Vector128.ConditionalSelect(wonB.AsInt32(), one, Vector128<int>.Zero);
            var wonD = Beats(d, c);
            var cd = Vector128.ConditionalSelect(wonD, d, c);
            var atCD = Vector128.ConditionalSelect(wonD.AsInt32(), belowRight, below);
            var wonCD = Beats(cd, ab);
            Vector128.ConditionalSelect(wonCD, cd, ab).CopyTo(y.Slice(j, 4));
            (Vector128.ConditionalSelect(wonCD.AsInt32(), atCD, atAB) + columns + Vector128.Create(r0 + 2 * j)).CopyTo(idx.Slice(j, 4));
        }
        return j;

        static Vector128<float> Pick(Vector128<float> lo, Vector128<float> hi, Vector128<int> which) =>
            Vector128.Create(Vector128.Shuffle(lo, which).GetLower(), Vector128.Shuffle(hi, which).GetLower());

        static Vector128<float> Beats(Vector128<float> v, Vector128<float> best) =>
            Vector128.GreaterThan(v, best) | (~Vector128.Equals(v, v) & Vector128.Equals(best, best));
    }

    /// <summary>gx = ∂L/∂x, overwritten: each output's gradient at its window's maximum, zero elsewhere.</summary>
    public static void MaxBackward<T>(Tensor gy, int[] indices, Tensor gx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        bool halving = IsHalving(g);
        Planes(g.Batch * g.Channels, inPlane, p =>
        {
            var gxs = gx.Span<T>().Slice(p * inPlane, inPlane);
            var gys = gy.Span<T>().Slice(p * outPlane, outPlane);
            var idx = indices.AsSpan(p * outPlane, outPlane);
            if (halving) MaxHalvingBackward(gys, idx, gxs, g);
            else
            {
                gxs.Clear();
                for (int o = 0; o < gys.Length; o++) gxs[idx[o]] += gys[o];
            }
        });
    }

    // Disjoint 2×2 windows: every input element gets its window's gradient or zero, written once (no clearing pass).
    static void MaxHalvingBackward<T>(ReadOnlySpan<T> gy, ReadOnlySpan<int> idx, Span<T> gx, in Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = g.Width, ow = g.OutWidth;
        for (int i = 0, o = 0; i < g.OutHeight; i++)
        {
            int r0 = 2 * i * w;
            var top = gx.Slice(r0, w);
            var bottom = gx.Slice(r0 + w, w);
            int j = 0;
            if (typeof(T) == typeof(float))
            {
                ReadOnlySpan<float> gr = MemoryMarshal.Cast<T, float>(gy.Slice(o, ow));
                Span<float> t = MemoryMarshal.Cast<T, float>(top), b = MemoryMarshal.Cast<T, float>(bottom);
                if (Vector256.IsHardwareAccelerated) j = MaxHalvingBackwardRow(gr, idx.Slice(o, ow), t, b, r0, w);
                if (Vector128.IsHardwareAccelerated) j = MaxHalvingBackwardRow128(gr, idx.Slice(o, ow), t, b, r0, w, j);
            }
            for (o += j; j < ow; j++, o++)
            {
                int k = idx[o] - r0 - 2 * j;   // 0, 1, w or w + 1
                T v = gy[o] + T.Zero;   // as 0 + g would be, had gx been cleared and accumulated: −0 becomes +0
                top[2 * j] = k == 0 ? v : T.Zero;
                top[2 * j + 1] = k == 1 ? v : T.Zero;
                bottom[2 * j] = k == w ? v : T.Zero;
                bottom[2 * j + 1] = k == w + 1 ? v : T.Zero;
            }
            if (w > 2 * ow) { top[^1] = T.Zero; bottom[^1] = T.Zero; }   // an odd width's last column is in no window
        }
        gx[(2 * g.OutHeight * w)..].Clear();   // an odd height's last row likewise
    }

    /// <summary>Four windows at a time from output <paramref name="j"/> on: the 128-bit form of <see cref="MaxHalvingBackwardRow"/>.</summary>
    static int MaxHalvingBackwardRow128(ReadOnlySpan<float> gy, ReadOnlySpan<int> idx, Span<float> top, Span<float> bottom, int r0, int w, int j)
    {
        var columns = Vector128.Create(0, 2, 4, 6);
        Vector128<int> right = Vector128<int>.One, below = Vector128.Create(w), belowRight = Vector128.Create(w + 1);
        for (; j + 4 <= gy.Length; j += 4)
        {
            var v = Vector128.Create(gy.Slice(j, 4)) + Vector128<float>.Zero;   // −0 → +0, as the scalar path
            var k = Vector128.Create(idx.Slice(j, 4)) - columns - Vector128.Create(r0 + 2 * j);
            Zip(At(k, Vector128<int>.Zero, v), At(k, right, v), top.Slice(2 * j, 8));
            Zip(At(k, below, v), At(k, belowRight, v), bottom.Slice(2 * j, 8));
        }
        return j;

        static Vector128<float> At(Vector128<int> k, Vector128<int> position, Vector128<float> v) =>
            Vector128.ConditionalSelect(Vector128.Equals(k, position).AsSingle(), v, Vector128<float>.Zero);

        static void Zip(Vector128<float> a, Vector128<float> b, Span<float> dst)
        {
            var order = Vector128.Create(0, 2, 1, 3);
            Vector128.Shuffle(Vector128.Create(a.GetLower(), b.GetLower()), order).CopyTo(dst);
            Vector128.Shuffle(Vector128.Create(a.GetUpper(), b.GetUpper()), order).CopyTo(dst.Slice(4));
        }
    }

    /// <summary>Eight windows at a time of one output row (floats): returns how many it wrote.</summary>
    static int MaxHalvingBackwardRow(ReadOnlySpan<float> gy, ReadOnlySpan<int> idx, Span<float> top, Span<float> bottom, int r0, int w)
    {
        var columns = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        Vector256<int> right = Vector256<int>.One, below = Vector256.Create(w), belowRight = Vector256.Create(w + 1);
        int j = 0;
        for (; j + 8 <= gy.Length; j += 8)
        {
            var v = Vector256.Create(gy.Slice(j, 8)) + Vector256<float>.Zero;   // −0 → +0, as the scalar path
            var k = Vector256.Create(idx.Slice(j, 8)) - columns - Vector256.Create(r0 + 2 * j);   // 0, 1, w or w + 1
            Zip(At(k, Vector256<int>.Zero, v), At(k, right, v), top.Slice(2 * j, 16));
            Zip(At(k, below, v), At(k, belowRight, v), bottom.Slice(2 * j, 16));
        }
        return j;

        static Vector256<float> At(Vector256<int> k, Vector256<int> position, Vector256<float> v) =>
            Vector256.ConditionalSelect(Vector256.Equals(k, position).AsSingle(), v, Vector256<float>.Zero);

        // a0 b0 a1 b1 … a7 b7
        static void Zip(Vector256<float> a, Vector256<float> b, Span<float> dst)
        {
            var order = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
            Vector256.Shuffle(Vector256.Create(a.GetLower(), b.GetLower()), order).CopyTo(dst);
            Vector256.Shuffle(Vector256.Create(a.GetUpper(), b.GetUpper()), order).CopyTo(dst.Slice(8));
        }
    }

    public static void AvgForward<T>(Tensor x, Tensor y, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var xs = x.Span<T>().Slice(p * inPlane, inPlane);
            var ys = y.Span<T>().Slice(p * outPlane, outPlane);
            for (int i = 0, o = 0; i < g.OutHeight; i++)
            {
                var (hs, he, _) = g.Window(i, true);
                for (int j = 0; j < g.OutWidth; j++, o++)
                {
                    var (ws, we, _) = g.Window(j, false);
                    T s = T.Zero;
                    for (int h = hs; h < he; h++) s += TensorPrimitives.Sum(xs.Slice(h * g.Width + ws, we - ws));
                    ys[o] = s / T.CreateTruncating(g.Divisor(i, j));
                }
            }
        });
    }

    public static void AvgBackward<T>(Tensor gy, Tensor gx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, inPlane, p =>
        {
            var gxs = gx.Span<T>().Slice(p * inPlane, inPlane);
            var gys = gy.Span<T>().Slice(p * outPlane, outPlane);
            gxs.Clear();
            for (int i = 0, o = 0; i < g.OutHeight; i++)
            {
                var (hs, he, _) = g.Window(i, true);
                for (int j = 0; j < g.OutWidth; j++, o++)
                {
                    var (ws, we, _) = g.Window(j, false);
                    T share = gys[o] / T.CreateTruncating(g.Divisor(i, j));
                    for (int h = hs; h < he; h++)
                    {
                        var row = gxs.Slice(h * g.Width + ws, we - ws);
                        TensorPrimitives.Add(row, share, row);
                    }
                }
            }
        });
    }

    /// <summary>Runs body over planes, sharing them among threads when there is enough work (≈ 32 K elements per thread).</summary>
    static void Planes(int planes, int perPlane, Action<int> body)
    {
        long work = (long)planes * perPlane;
        int threads = Workers.ThreadsFor(Math.Min(planes, work / (32 * 1024)));
        Workers.For(planes, threads, body);
    }
}
