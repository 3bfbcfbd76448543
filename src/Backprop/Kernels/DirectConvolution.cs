using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Backprop.Backends;

namespace Backprop.Kernels;

/// <summary>
/// Direct convolution for layers that read few input channels (an image's 1 or 3), float32, stride 1, no dilation or
/// groups, kernels up to 7 rows × 5 columns: each sample's planes are copied into zero-padded scratch rows wide enough
/// for whole vectors, and the kernel taps are walked with output pixels along 512-bit vectors. The forward pass and the
/// weight gradient run here; the input gradient (which a first layer does not need) stays with im2col, which measured
/// faster than a direct version (W9b 123 against 102 GFLOP/s).
/// </summary>
/// <remarks>
/// Why: im2col makes such a layer a GEMM of depth C·KH·KW (27 for CIFAR's 3→32 3×3, 25 for MNIST's 1→32 5×5) — too
/// shallow to amortise the microkernel's tile loads and stores and the packing. Measured (quick-conv, 2 Zen 4 cores,
/// GFLOP/s im2col → direct): CIFAR's 256×3×32×32 → 32 3×3 forward 123 → 147–151, weight gradient 89 → 120–124;
/// W9b 64×1×28×28 → 32 5×5 forward 150 → 131–147 (level), weight gradient 98 → 120–126.
/// Register tiles: forward 8 output channels × 32 pixels (16 accumulators, each loaded input vector used 8 times);
/// weight gradient 4 output channels × 5 kernel columns of one kernel row (20 accumulators), reading the output gradient
/// in place, summed over a fixed chunk of samples before its horizontal sums, so the result does not depend on the
/// thread count. Samples are shared among threads, so a batch smaller than the thread count stays with im2col.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class DirectConvolution
{
    const int V = 16;        // floats per vector
    const int Tile = 2 * V;  // output pixels per register tile along a row

    public static bool Applies(in Conv2dGeometry g) =>
        Gemm.PathFor<float>() == GemmPath.Vector512 && g.Groups == 1 && g.InChannels <= 4   // the 512-bit path, unless capped (--isa)
        && g is { StrideHeight: 1, StrideWidth: 1, DilationHeight: 1, DilationWidth: 1 }
        && g.KernelHeight <= 7 && g.KernelWidth <= 5
        && g.PadTop < g.KernelHeight && g.PadBottom < g.KernelHeight && g.PadLeft < g.KernelWidth && g.PadRight < g.KernelWidth
        && g.OutHeight > 0 && g.OutWidth > 0
        && g.Batch >= Workers.ThreadsFor(int.MaxValue)   // samples are shared among threads: fewer than threads leave cores idle
        && (long)g.Batch * g.OutChannels * g.OutHeight * g.OutWidth >= V;   // the weight gradient's last vector loads 16 floats of gy

    // ---- forward ---------------------------------------------------------------------------------------------------

    public static void Forward(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv2dGeometry g)
    {
        int c = g.InChannels, k = g.OutChannels, kh = g.KernelHeight, kw = g.KernelWidth, oh = g.OutHeight, ow = g.OutWidth;
        int blocks = (k + 7) / 8, taps = c * kh * kw;
        // Weights as [block][c][i][j][8 channels], zero past the last channel: the eight broadcasts of a tap are adjacent.
        // Rented (the bias copied beside them): no weight-sized garbage per call.
        var wt = System.Buffers.ArrayPool<float>.Shared.Rent(blocks * taps * 8 + k);
        Array.Clear(wt, 0, blocks * taps * 8);
        var ws = w.Span<float>();
        for (int o = 0; o < k; o++)
            for (int t = 0; t < taps; t++) wt[((o / 8) * taps + t) * 8 + o % 8] = ws[o * taps + t];
        int biasAt = blocks * taps * 8;
        bias?.Span<float>().CopyTo(wt.AsSpan(biasAt, k));
        int ph = oh + kh - 1, pw = Gemm.RoundUp(ow, Tile) + kw - 1;
        bool hasBias = bias is not null;
        try
        {
            Workers.For(g.Batch, Workers.ThreadsFor(g.Batch), n =>
            {
                var pad = Scratch.Get(c * ph * pw);
                PadPlanes(x.Span<float>().Slice(n * c * g.Height * g.Width, c * g.Height * g.Width), c, g.Height, g.Width, pad, ph, pw, g.PadTop, g.PadLeft);
                var yn = y.Span<float>().Slice(n * k * oh * ow, k * oh * ow);
                fixed (float* p = pad, wp = wt, yp = yn)
                    for (int b = 0; b < blocks; b++)
                        for (int r = 0; r < oh; r++)
                            for (int x0 = 0; x0 < ow; x0 += Tile)
                                ForwardTile(p + r * pw + x0, ph * pw, pw, wp + b * taps * 8, c, kh, kw, hasBias ? wp + biasAt : null, b * 8, k,
                                    yp + (b * 8 * oh + r) * ow + x0, oh * ow, Math.Min(Tile, ow - x0),
                                    whole: r * ow + x0 + Tile <= oh * ow);   // a ragged tile's overflow lands on pixels a later tile writes
            });
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(wt); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardTile(float* src, int plane, int pw, float* wt, int c, int kh, int kw, float* bias, int k0, int k,
        float* dst, int outPlane, int width, bool whole)
    {
        float* tile = stackalloc float[8 * Tile];
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        Vector512<float> e0 = default, e1 = default, f0 = default, f1 = default, g0 = default, g1 = default, h0 = default, h1 = default;
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < kh; i++)
            {
                float* row = src + ch * plane + i * pw;
                for (int j = 0; j < kw; j++, wt += 8)
                {
                    var lo = Vector512.Load(row + j);
                    var hi = Vector512.Load(row + j + V);
                    var s = Vector512.Create(wt[0]); a0 = Vector512.FusedMultiplyAdd(lo, s, a0); a1 = Vector512.FusedMultiplyAdd(hi, s, a1);
                    s = Vector512.Create(wt[1]); b0 = Vector512.FusedMultiplyAdd(lo, s, b0); b1 = Vector512.FusedMultiplyAdd(hi, s, b1);
                    s = Vector512.Create(wt[2]); c0 = Vector512.FusedMultiplyAdd(lo, s, c0); c1 = Vector512.FusedMultiplyAdd(hi, s, c1);
                    s = Vector512.Create(wt[3]); d0 = Vector512.FusedMultiplyAdd(lo, s, d0); d1 = Vector512.FusedMultiplyAdd(hi, s, d1);
                    s = Vector512.Create(wt[4]); e0 = Vector512.FusedMultiplyAdd(lo, s, e0); e1 = Vector512.FusedMultiplyAdd(hi, s, e1);
                    s = Vector512.Create(wt[5]); f0 = Vector512.FusedMultiplyAdd(lo, s, f0); f1 = Vector512.FusedMultiplyAdd(hi, s, f1);
                    s = Vector512.Create(wt[6]); g0 = Vector512.FusedMultiplyAdd(lo, s, g0); g1 = Vector512.FusedMultiplyAdd(hi, s, g1);
                    s = Vector512.Create(wt[7]); h0 = Vector512.FusedMultiplyAdd(lo, s, h0); h1 = Vector512.FusedMultiplyAdd(hi, s, h1);
                }
            }
        // Accumulators to a buffer first: any call while they are live (a store helper; a stackalloc's zeroing, were it not
        // for SkipLocalsInit) makes the JIT keep them on the stack for the whole loop, a store after every multiply-add.
        a0.Store(tile); a1.Store(tile + V); b0.Store(tile + 2 * V); b1.Store(tile + 3 * V);
        c0.Store(tile + 4 * V); c1.Store(tile + 5 * V); d0.Store(tile + 6 * V); d1.Store(tile + 7 * V);
        e0.Store(tile + 8 * V); e1.Store(tile + 9 * V); f0.Store(tile + 10 * V); f1.Store(tile + 11 * V);
        g0.Store(tile + 12 * V); g1.Store(tile + 13 * V); h0.Store(tile + 14 * V); h1.Store(tile + 15 * V);
        for (int o = 0, count = Math.Min(8, k - k0); o < count; o++)
        {
            var b = bias == null ? Vector512<float>.Zero : Vector512.Create(bias[k0 + o]);
            float* to = dst + o * outPlane;
            if (whole)
            {
                (Vector512.Load(tile + o * Tile) + b).Store(to);
                (Vector512.Load(tile + o * Tile + V) + b).Store(to + V);
                continue;
            }
            for (int t = 0; t < width; t++) to[t] = tile[o * Tile + t] + b.ToScalar();
        }
    }

    /// <summary>Planes (channels × h × w) into rows of <paramref name="pw"/> at (top, left), zero around them (every
    /// padded buffer here is ph = h + top + bottom rows of at least w + left + right, so each row fits whole).</summary>
    static void PadPlanes(ReadOnlySpan<float> src, int channels, int h, int w, Span<float> dst, int ph, int pw, int top, int left)
    {
        dst.Clear();
        for (int ch = 0; ch < channels; ch++)
            for (int r = 0; r < h; r++)
                ShortSpans.Copy(src.Slice((ch * h + r) * w, w), dst.Slice((ch * ph + r + top) * pw + left, w));
    }

    // ---- weight gradient ---------------------------------------------------------------------------------------------

    // gW[k, c, i, j] = Σ_n Σ_{y,x} gy[n, k, y, x] · xp[n, c, y + i, x + j], xp the zero-padded input. The output gradient
    // is read in place (copying it into padded rows cost as much as the products): a row's ragged last vector is masked,
    // and the few floats it reads past the row belong to the next row — except at the very end of gy, read with a copy.
    public static void WeightGrad(Tensor x, Tensor gy, Tensor gw, Conv2dGeometry g)
    {
        int c = g.InChannels, k = g.OutChannels, kh = g.KernelHeight, kw = g.KernelWidth, oh = g.OutHeight, ow = g.OutWidth;
        int ph = oh + kh - 1, pw = Gemm.RoundUp(ow, Tile) + kw - 1, size = k * c * kh * kw, outPlane = oh * ow;
        int blocks = (k + 3) / 4;
        // Fixed chunks of samples (not one per thread), their sums added in chunk order: the same result on any thread count.
        int chunks = Math.Min(g.Batch, 16), per = (g.Batch + chunks - 1) / chunks;
        chunks = (g.Batch + per - 1) / per;
        var partial = System.Buffers.ArrayPool<float>.Shared.Rent(chunks * size);   // every chunk writes its whole slice
        Workers.For(chunks, Workers.ThreadsFor(chunks), chunk =>
        {
            int n0 = chunk * per, count = Math.Min(per, g.Batch - n0);
            var xp = Scratch.Get(count * c * ph * pw);
            for (int s = 0; s < count; s++)
                PadPlanes(x.Span<float>().Slice((n0 + s) * c * g.Height * g.Width, c * g.Height * g.Width), c, g.Height, g.Width,
                    xp.Slice(s * c * ph * pw, c * ph * pw), ph, pw, g.PadTop, g.PadLeft);
            var gys = gy.Span<float>();
            var sum = partial.AsSpan(chunk * size, size);
            fixed (float* xs = xp, gs = gys, dst = sum)
                for (int b = 0; b < blocks; b++)
                {
                    // A block's missing channels (K not a multiple of 4) read the last channel again; their sums are not stored.
                    int o1 = Math.Min(b * 4 + 1, k - 1) - b * 4, o2 = Math.Min(b * 4 + 2, k - 1) - b * 4, o3 = Math.Min(b * 4 + 3, k - 1) - b * 4;
                    for (int ch = 0; ch < c; ch++)
                        for (int i = 0; i < kh; i++)
                            WeightGradTile(xs + ch * ph * pw + i * pw, c * ph * pw, pw, gs + (n0 * k + b * 4) * outPlane, gs + gys.Length,
                                o1 * outPlane, o2 * outPlane, o3 * outPlane, k * outPlane, count, oh, ow, kw, dst, b * 4, k, ch, i, c, kh);
                }
        });
        var dstAll = gw.Span<float>();
        partial.AsSpan(0, size).CopyTo(dstAll);
        for (int ch = 1; ch < chunks; ch++) System.Numerics.Tensors.TensorPrimitives.Add(dstAll, partial.AsSpan(ch * size, size), dstAll);
        System.Buffers.ArrayPool<float>.Shared.Return(partial);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightGradTile(float* xs, int xSample, int pw, float* gs, float* end, int off1, int off2, int off3, int gSample,
        int samples, int oh, int ow, int kw, float* dst, int k0, int k, int ch, int i, int c, int kh)
    {
        float* sums = stackalloc float[20];
        // lanes of a row's ragged last vector that are inside the row
        var inside = Vector512.LessThan(Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create((float)(ow % V == 0 ? V : ow % V)));
        var all = Vector512<float>.AllBitsSet;
        int full = ow / V * V;   // pixels in whole vectors
        // accumulators [output channel 0..3][kernel column 0..4]
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default;
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default;
        for (int s = 0; s < samples; s++, xs += xSample, gs += gSample)
            for (int r = 0; r < oh; r++)
                for (int x0 = 0; x0 < ow; x0 += V)
                {
                    float* xr = xs + r * pw + x0, gr = gs + r * ow + x0;
                    Vector512<float> ga, gb, gc, gd, m = all;
                    if (x0 < full)
                    {
                        ga = Vector512.Load(gr); gb = Vector512.Load(gr + off1); gc = Vector512.Load(gr + off2); gd = Vector512.Load(gr + off3);
                    }
                    else
                    {
                        // Lanes past the row: both factors zeroed (the padded input holds real pixels there, and 0·∞ is NaN).
                        ga = Ragged(gr, end, inside); gb = Ragged(gr + off1, end, inside);
                        gc = Ragged(gr + off2, end, inside); gd = Ragged(gr + off3, end, inside);
                        m = inside;
                    }
                    var x0v = Vector512.Load(xr) & m;
                    a0 = Vector512.FusedMultiplyAdd(ga, x0v, a0); b0 = Vector512.FusedMultiplyAdd(gb, x0v, b0); c0 = Vector512.FusedMultiplyAdd(gc, x0v, c0); d0 = Vector512.FusedMultiplyAdd(gd, x0v, d0);
                    if (kw < 2) continue;
                    var x1v = Vector512.Load(xr + 1) & m;
                    a1 = Vector512.FusedMultiplyAdd(ga, x1v, a1); b1 = Vector512.FusedMultiplyAdd(gb, x1v, b1); c1 = Vector512.FusedMultiplyAdd(gc, x1v, c1); d1 = Vector512.FusedMultiplyAdd(gd, x1v, d1);
                    if (kw < 3) continue;
                    var x2v = Vector512.Load(xr + 2) & m;
                    a2 = Vector512.FusedMultiplyAdd(ga, x2v, a2); b2 = Vector512.FusedMultiplyAdd(gb, x2v, b2); c2 = Vector512.FusedMultiplyAdd(gc, x2v, c2); d2 = Vector512.FusedMultiplyAdd(gd, x2v, d2);
                    if (kw < 4) continue;
                    var x3v = Vector512.Load(xr + 3) & m;
                    a3 = Vector512.FusedMultiplyAdd(ga, x3v, a3); b3 = Vector512.FusedMultiplyAdd(gb, x3v, b3); c3 = Vector512.FusedMultiplyAdd(gc, x3v, c3); d3 = Vector512.FusedMultiplyAdd(gd, x3v, d3);
                    if (kw < 5) continue;
                    var x4v = Vector512.Load(xr + 4) & m;
                    a4 = Vector512.FusedMultiplyAdd(ga, x4v, a4); b4 = Vector512.FusedMultiplyAdd(gb, x4v, b4); c4 = Vector512.FusedMultiplyAdd(gc, x4v, c4); d4 = Vector512.FusedMultiplyAdd(gd, x4v, d4);
                }
        // gW[k0 + o, ch, i, j]
        sums[0] = Vector512.Sum(a0); sums[1] = Vector512.Sum(a1); sums[2] = Vector512.Sum(a2); sums[3] = Vector512.Sum(a3); sums[4] = Vector512.Sum(a4);
        sums[5] = Vector512.Sum(b0); sums[6] = Vector512.Sum(b1); sums[7] = Vector512.Sum(b2); sums[8] = Vector512.Sum(b3); sums[9] = Vector512.Sum(b4);
        sums[10] = Vector512.Sum(c0); sums[11] = Vector512.Sum(c1); sums[12] = Vector512.Sum(c2); sums[13] = Vector512.Sum(c3); sums[14] = Vector512.Sum(c4);
        sums[15] = Vector512.Sum(d0); sums[16] = Vector512.Sum(d1); sums[17] = Vector512.Sum(d2); sums[18] = Vector512.Sum(d3); sums[19] = Vector512.Sum(d4);
        for (int o = 0; o < 4 && k0 + o < k; o++)
            for (int j = 0; j < kw; j++) dst[(((k0 + o) * c + ch) * kh + i) * kw + j] = sums[o * 5 + j];
    }

    /// <summary>A row's ragged last vector, lanes past the row zeroed (no call: the accumulators stay in registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Ragged(float* p, float* end, Vector512<float> inside)
    {
        if (p + V <= end) return Vector512.Load(p) & inside;   // the floats past the row are the next row's
        // The row ends gy: load its last 16 floats (gy holds at least 16) and move the row's down to lane 0.
        var shift = Vector512.Create((int)(V - (end - p)));
        return Avx512F.PermuteVar16x32(Vector512.Load(end - V), Vector512<int>.Indices + shift) & inside;
    }

    /// <summary>Per-thread scratch for the padded input planes, grown, never shrunk (as im2col's unrolled buffers).</summary>
    static class Scratch
    {
        [ThreadStatic] static float[]? buffer;

        public static Span<float> Get(int length)
        {
            if (buffer is null || buffer.Length < length) buffer = GC.AllocateUninitializedArray<float>(length, pinned: true);
            return buffer.AsSpan(0, length);
        }
    }
}
