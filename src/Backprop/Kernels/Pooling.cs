using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
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
        int inPlane = g.Height * g.Width, oh = g.OutHeight, ow = g.OutWidth, outPlane = oh * ow;
        if (IsHalving(g))
        {
            int w = g.Width;
            OutputRows(g.Batch * g.Channels * oh, 4 * ow, (start, count) =>
            {
                var xs = x.Span<T>();
                var ys = y.Span<T>();
                // Rows of 1–3 windows (a 7×7 plane's 3) would take the scalar tournament, whose branches the data decide
                // (4× the time of the 4-window vector form on 8×8 planes): they take 4 windows through buffers instead,
                // reading a little of the next row (never past the tensor) and keeping only their own windows.
                Span<float> shortY = stackalloc float[4];
                Span<int> shortIdx = stackalloc int[4];
                bool shortRows = typeof(T) == typeof(float) && Vector128.IsHardwareAccelerated && ow < 4;
                Span<float> xf = shortRows ? MemoryMarshal.Cast<T, float>(xs) : default, yf = shortRows ? MemoryMarshal.Cast<T, float>(ys) : default;
                int p = start / oh, i = start - p * oh;
                for (int r = start; r < start + count; r++)
                {
                    int top = p * inPlane + 2 * i * w;
                    if (shortRows && top + w + 8 <= xs.Length)
                    {
                        MaxHalvingRow128(xf.Slice(top, 8), xf.Slice(top + w, 8), shortY, shortIdx, 2 * i * w, w, 0);
                        shortY[..ow].CopyTo(yf.Slice(r * ow, ow));
                        shortIdx[..ow].CopyTo(indices.AsSpan(r * ow, ow));
                    }
                    else MaxHalving(xs.Slice(top, w), xs.Slice(top + w, w), ys.Slice(r * ow, ow), indices.AsSpan(r * ow, ow), 2 * i * w);
                    if (++i == oh) { i = 0; p++; }
                }
            });
            return;
        }
        if (IsWholePlane(g))
        {
            // One window over each whole plane (global max pooling): a scan of contiguous values, by the same rule.
            Planes(g.Batch * g.Channels, inPlane, p =>
            {
                var xs = x.Span<T>().Slice(p * inPlane, inPlane);
                T best = xs[0];
                int arg = 0;
                for (int k = 1; k < xs.Length; k++)
                    if (xs[k] > best || T.IsNaN(xs[k])) { best = xs[k]; arg = k; }
                y.Span<T>()[p] = best;
                indices[p] = arg;
            });
            return;
        }
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var xs = x.Span<T>().Slice(p * inPlane, inPlane);
            var ys = y.Span<T>().Slice(p * outPlane, outPlane);
            MaxGeneral(xs, ys, indices.AsSpan(p * outPlane, outPlane), g);
        });
    }

    static bool IsWholePlane(in Pool2dGeometry g) => g is { PadHeight: 0, PadWidth: 0, DilationHeight: 1, DilationWidth: 1, Adaptive: false }
        && g.KernelHeight == g.Height && g.KernelWidth == g.Width && g.OutHeight == 1 && g.OutWidth == 1;

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
                        if (arg < 0 || v > best || T.IsNaN(v)) { best = v; arg = h * g.Width + w; }   // PyTorch's rule: the last NaN wins
                    }
                }
                y[o] = best;
                idx[o] = arg;
            }
    }

    // 2×2 windows, stride 2: for each output, compare (top-left, top-right, bottom-left, bottom-right) in window order.
    // As a tournament, (a, b) then (c, d) then the two winners, each won by the later only if strictly greater (or NaN
    // against anything): the same winner as PyTorch's sequential scan (`val > max || isnan(val)`), first maximum and
    // last NaN included.
    /// <summary>One output row from its two input rows; <paramref name="r0"/> is the top row's index within its plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MaxHalving<T>(ReadOnlySpan<T> top, ReadOnlySpan<T> bottom, Span<T> yr, Span<int> ir, int r0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = top.Length, j = 0;
        if (typeof(T) == typeof(float))
        {
            ReadOnlySpan<float> t = MemoryMarshal.Cast<T, float>(top), b = MemoryMarshal.Cast<T, float>(bottom);
            var yf = MemoryMarshal.Cast<T, float>(yr);
            if (Vector256.IsHardwareAccelerated) j = MaxHalvingRow(t, b, yf, ir, r0, w);
            if (Vector128.IsHardwareAccelerated) j = MaxHalvingRow128(t, b, yf, ir, r0, w, j);
        }
        for (; j < yr.Length; j++)
        {
            T a = top[2 * j], b = top[2 * j + 1], c = bottom[2 * j], d = bottom[2 * j + 1];
            T best = a; int arg = 0;
            if (b > best || T.IsNaN(b)) { best = b; arg = 1; }
            if (c > best || T.IsNaN(c)) { best = c; arg = w; }
            if (d > best || T.IsNaN(d)) { best = d; arg = w + 1; }
            yr[j] = best;
            ir[j] = r0 + 2 * j + arg;
        }
    }

    /// <summary>Eight windows at a time of one output row (floats): returns how many outputs it wrote.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MaxHalvingRow(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, Span<float> y, Span<int> idx, int r0, int w)
    {
        var even = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6);
        var odd = Vector256.Create(1, 3, 5, 7, 1, 3, 5, 7);
        var columns = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        Vector256<int> one = Vector256<int>.One, below = Vector256.Create(w), belowRight = Vector256.Create(w + 1);
        int j = 0;
        for (int n = y.Length; n >= 8 && j < n; j += 8)
        {
            int at = Math.Min(j, n - 8);   // a ragged end redoes the last 8: the same values written again
            var t0 = Vector256.Create(top.Slice(2 * at, 8)); var t1 = Vector256.Create(top.Slice(2 * at + 8, 8));
            var b0 = Vector256.Create(bottom.Slice(2 * at, 8)); var b1 = Vector256.Create(bottom.Slice(2 * at + 8, 8));
            Vector256<float> a = Pick(t0, t1, even), b = Pick(t0, t1, odd), c = Pick(b0, b1, even), d = Pick(b0, b1, odd);
            var wonB = Beats(b, a);
            var ab = Vector256.ConditionalSelect(wonB, b, a);
            var atAB = Vector256.ConditionalSelect(wonB.AsInt32(), one, Vector256<int>.Zero);
            var wonD = Beats(d, c);
            var cd = Vector256.ConditionalSelect(wonD, d, c);
            var atCD = Vector256.ConditionalSelect(wonD.AsInt32(), belowRight, below);
            var wonCD = Beats(cd, ab);
            Vector256.ConditionalSelect(wonCD, cd, ab).CopyTo(y.Slice(at, 8));
            (Vector256.ConditionalSelect(wonCD.AsInt32(), atCD, atAB) + columns + Vector256.Create(r0 + 2 * at)).CopyTo(idx.Slice(at, 8));
        }
        return Math.Min(j, y.Length);

        // the even (or odd) elements of lo then hi, in order
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Pick(Vector256<float> lo, Vector256<float> hi, Vector256<int> which) =>
            Vector256.Create(Vector256.Shuffle(lo, which).GetLower(), Vector256.Shuffle(hi, which).GetLower());

        // v wins over the best so far: strictly greater, or NaN (a later NaN beats an earlier one, as in PyTorch)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Beats(Vector256<float> v, Vector256<float> best) =>
            Vector256.GreaterThan(v, best) | ~Vector256.Equals(v, v);
    }

    /// <summary>
    /// Four windows at a time from output <paramref name="j"/> on (rows too short for eight, such as mnist-cnn's 7-wide
    /// second pooling, and SSE or NEON machines): the same tournament as <see cref="MaxHalvingRow"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MaxHalvingRow128(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, Span<float> y, Span<int> idx, int r0, int w, int j)
    {
        var even = Vector128.Create(0, 2, 0, 2);
        var odd = Vector128.Create(1, 3, 1, 3);
        var columns = Vector128.Create(0, 2, 4, 6);
        Vector128<int> one = Vector128<int>.One, below = Vector128.Create(w), belowRight = Vector128.Create(w + 1);
        for (int n = y.Length; n >= 4 && j < n; j += 4)
        {
            int at = Math.Min(j, n - 4);   // a ragged end redoes the last 4: the same values written again
            var t0 = Vector128.Create(top.Slice(2 * at, 4)); var t1 = Vector128.Create(top.Slice(2 * at + 4, 4));
            var b0 = Vector128.Create(bottom.Slice(2 * at, 4)); var b1 = Vector128.Create(bottom.Slice(2 * at + 4, 4));
            Vector128<float> a = Pick(t0, t1, even), b = Pick(t0, t1, odd), c = Pick(b0, b1, even), d = Pick(b0, b1, odd);
            var wonB = Beats(b, a);
            var ab = Vector128.ConditionalSelect(wonB, b, a);
            var atAB = Vector128.ConditionalSelect(wonB.AsInt32(), one, Vector128<int>.Zero);
            var wonD = Beats(d, c);
            var cd = Vector128.ConditionalSelect(wonD, d, c);
            var atCD = Vector128.ConditionalSelect(wonD.AsInt32(), belowRight, below);
            var wonCD = Beats(cd, ab);
            Vector128.ConditionalSelect(wonCD, cd, ab).CopyTo(y.Slice(at, 4));
            (Vector128.ConditionalSelect(wonCD.AsInt32(), atCD, atAB) + columns + Vector128.Create(r0 + 2 * at)).CopyTo(idx.Slice(at, 4));
        }
        return Math.Min(j, y.Length);

        // Two shuffles and a blend, all in registers (joining two Vector64 halves went through the stack: a store-forwarding stall)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<float> Pick(Vector128<float> lo, Vector128<float> hi, Vector128<int> which) =>
            Vector128.ConditionalSelect(Vector128.Create(-1, -1, 0, 0).AsSingle(), Vector128.Shuffle(lo, which), Vector128.Shuffle(hi, which));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<float> Beats(Vector128<float> v, Vector128<float> best) =>
            Vector128.GreaterThan(v, best) | ~Vector128.Equals(v, v);
    }

    /// <summary>gx = ∂L/∂x, overwritten: each output's gradient at its window's maximum, zero elsewhere.</summary>
    public static void MaxBackward<T>(Tensor gy, int[] indices, Tensor gx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, oh = g.OutHeight, ow = g.OutWidth, outPlane = oh * ow;
        if (IsHalving(g))
        {
            int w = g.Width, h = g.Height;
            OutputRows(g.Batch * g.Channels * oh, 4 * ow, (start, count) =>
            {
                var gxs = gx.Span<T>();
                var gys = gy.Span<T>();
                // Rows of 1–3 windows as in the forward pass: the 4-window form through buffers, the spare window given
                // a zero gradient, only the row's own columns copied out.
                Span<float> shortGy = stackalloc float[4], shortTop = stackalloc float[8], shortBottom = stackalloc float[8];
                Span<int> shortIdx = stackalloc int[4];
                bool shortRows = typeof(T) == typeof(float) && Vector128.IsHardwareAccelerated && ow < 4;
                Span<float> gxf = shortRows ? MemoryMarshal.Cast<T, float>(gxs) : default, gyf = shortRows ? MemoryMarshal.Cast<T, float>(gys) : default;
                int p = start / oh, i = start - p * oh;
                for (int r = start; r < start + count; r++)
                {
                    int top = p * inPlane + 2 * i * w;
                    if (shortRows)
                    {
                        int r0 = 2 * i * w;
                        shortGy.Clear();
                        gyf.Slice(r * ow, ow).CopyTo(shortGy);
                        for (int j = 0; j < 4; j++) shortIdx[j] = j < ow ? indices[r * ow + j] : r0 + 2 * j;
                        MaxHalvingBackwardRow128(shortGy, shortIdx, shortTop, shortBottom, r0, w, 0);
                        shortTop[..(2 * ow)].CopyTo(gxf.Slice(top, 2 * ow));
                        shortBottom[..(2 * ow)].CopyTo(gxf.Slice(top + w, 2 * ow));
                        if (w > 2 * ow) { gxf[top + w - 1] = 0; gxf[top + 2 * w - 1] = 0; }   // an odd width's last column is in no window
                    }
                    else MaxHalvingBackward(gys.Slice(r * ow, ow), indices.AsSpan(r * ow, ow), gxs.Slice(top, w), gxs.Slice(top + w, w), 2 * i * w);
                    if (++i < oh) continue;
                    if (h > 2 * oh) gxs.Slice(top + 2 * w, w).Clear();   // an odd height's last row is in no window
                    i = 0; p++;
                }
            });
            return;
        }
        Planes(g.Batch * g.Channels, inPlane, p =>
        {
            var gxs = gx.Span<T>().Slice(p * inPlane, inPlane);
            var gys = gy.Span<T>().Slice(p * outPlane, outPlane);
            var idx = indices.AsSpan(p * outPlane, outPlane);
            gxs.Clear();
            for (int o = 0; o < gys.Length; o++) gxs[idx[o]] += gys[o];
        });
    }

    // Disjoint 2×2 windows: every input element gets its window's gradient or zero, written once (no clearing pass).
    /// <summary>The two input rows of one output row; <paramref name="r0"/> is the top row's index within its plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MaxHalvingBackward<T>(ReadOnlySpan<T> gy, ReadOnlySpan<int> idx, Span<T> top, Span<T> bottom, int r0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = top.Length, ow = gy.Length, j = 0;
        if (typeof(T) == typeof(float))
        {
            ReadOnlySpan<float> gr = MemoryMarshal.Cast<T, float>(gy);
            Span<float> t = MemoryMarshal.Cast<T, float>(top), b = MemoryMarshal.Cast<T, float>(bottom);
            if (Vector256.IsHardwareAccelerated) j = MaxHalvingBackwardRow(gr, idx, t, b, r0, w);
            if (Vector128.IsHardwareAccelerated) j = MaxHalvingBackwardRow128(gr, idx, t, b, r0, w, j);
        }
        for (; j < ow; j++)
        {
            int k = idx[j] - r0 - 2 * j;   // 0, 1, w or w + 1
            T v = gy[j] + T.Zero;   // as 0 + g would be, had gx been cleared and accumulated: −0 becomes +0
            top[2 * j] = k == 0 ? v : T.Zero;
            top[2 * j + 1] = k == 1 ? v : T.Zero;
            bottom[2 * j] = k == w ? v : T.Zero;
            bottom[2 * j + 1] = k == w + 1 ? v : T.Zero;
        }
        if (w > 2 * ow) { top[^1] = T.Zero; bottom[^1] = T.Zero; }   // an odd width's last column is in no window
    }

    /// <summary>Four windows at a time from output <paramref name="j"/> on: the 128-bit form of <see cref="MaxHalvingBackwardRow"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MaxHalvingBackwardRow128(ReadOnlySpan<float> gy, ReadOnlySpan<int> idx, Span<float> top, Span<float> bottom, int r0, int w, int j)
    {
        var columns = Vector128.Create(0, 2, 4, 6);
        // Lane l of four input columns from 2j on is column l % 2 of window l / 2 (each window's value and winner duplicated
        // into its two lanes): it takes the gradient when the winner sits there, in the top or the bottom row.
        Vector128<int> inTop = Vector128.Create(0, 1, 0, 1), inBottom = Vector128.Create(w, w + 1, w, w + 1);
        Vector128<int> first = Vector128.Create(0, 0, 1, 1), second = Vector128.Create(2, 2, 3, 3);
        for (int n = gy.Length; n >= 4 && j < n; j += 4)
        {
            int at = Math.Min(j, n - 4);   // a ragged end redoes the last 4: the same values written again
            var v = Vector128.Create(gy.Slice(at, 4)) + Vector128<float>.Zero;   // −0 → +0, as the scalar path
            var k = Vector128.Create(idx.Slice(at, 4)) - columns - Vector128.Create(r0 + 2 * at);   // 0, 1, w or w + 1
            Vector128<float> v0 = Vector128.Shuffle(v, first), v1 = Vector128.Shuffle(v, second);
            Vector128<int> k0 = Vector128.Shuffle(k, first), k1 = Vector128.Shuffle(k, second);
            At(k0, inTop, v0).CopyTo(top.Slice(2 * at, 4));
            At(k1, inTop, v1).CopyTo(top.Slice(2 * at + 4, 4));
            At(k0, inBottom, v0).CopyTo(bottom.Slice(2 * at, 4));
            At(k1, inBottom, v1).CopyTo(bottom.Slice(2 * at + 4, 4));
        }
        return Math.Min(j, gy.Length);

        static Vector128<float> At(Vector128<int> k, Vector128<int> position, Vector128<float> v) =>
            Vector128.ConditionalSelect(Vector128.Equals(k, position).AsSingle(), v, Vector128<float>.Zero);
    }

    /// <summary>Eight windows at a time of one output row (floats): returns how many it wrote.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MaxHalvingBackwardRow(ReadOnlySpan<float> gy, ReadOnlySpan<int> idx, Span<float> top, Span<float> bottom, int r0, int w)
    {
        var columns = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        Vector256<int> right = Vector256<int>.One, below = Vector256.Create(w), belowRight = Vector256.Create(w + 1);
        int j = 0;
        for (int n = gy.Length; n >= 8 && j < n; j += 8)
        {
            int at = Math.Min(j, n - 8);   // a ragged end redoes the last 8: the same values written again
            var v = Vector256.Create(gy.Slice(at, 8)) + Vector256<float>.Zero;   // −0 → +0, as the scalar path
            var k = Vector256.Create(idx.Slice(at, 8)) - columns - Vector256.Create(r0 + 2 * at);   // 0, 1, w or w + 1
            Zip(At(k, Vector256<int>.Zero, v), At(k, right, v), top.Slice(2 * at, 16));
            Zip(At(k, below, v), At(k, belowRight, v), bottom.Slice(2 * at, 16));
        }
        return Math.Min(j, gy.Length);

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

    // Halving pooling walks output rows across plane boundaries, in runs shared among threads: per-plane calls cost
    // more than the work on small planes (128 channels of 8×8 at batch 256: 3.9 → 0.5 ms forward, 2 Zen 4 cores).
    /// <summary>Runs body(start, count) over runs of [0, rows), shared among threads when there is enough work (≈ 32 K elements each).</summary>
    static void OutputRows(int rows, int perRow, Action<int, int> body)
    {
        int threads = Workers.ThreadsFor(Math.Min(rows, (long)rows * perRow / (32 * 1024)));
        Workers.ForRanges(rows, threads == 1 ? 1 : Math.Min(rows, threads * 8), threads, body);
    }

    /// <summary>Runs body over planes, sharing them among threads when there is enough work (≈ 32 K elements per thread).</summary>
    static void Planes(int planes, int perPlane, Action<int> body)
    {
        long work = (long)planes * perPlane;
        int threads = Workers.ThreadsFor(Math.Min(planes, work / (32 * 1024)));
        Workers.For(planes, threads, body);
    }
}
