using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Backprop.Backends;

namespace Backprop.Kernels;

/// <summary>
/// 2-D convolution as GEMM (im2col): each sample's input is unrolled into a matrix whose column for output pixel (i, j)
/// holds every input value the kernel reads there, so the convolution of a group is one product
/// W_g (K/G × C/G·KH·KW) · col_g (C/G·KH·KW × OH·OW), written straight into the sample's NCHW output.
/// </summary>
/// <remarks>
/// Layout: NCHW throughout. With im2col the GEMM's N dimension is the output plane (OH·OW, 784–1024 for MNIST and
/// CIFAR), which keeps the microkernel on full tiles and lets it write y in place; channels-last would make the
/// output plane the M dimension instead and cost a transpose at each layer boundary for the NCHW users and files
/// expect, for no gain on the shapes measured here.
/// Threading: samples (or, for small planes, runs of samples unrolled side by side) are shared among threads, each
/// with its own unrolled buffer and a single-threaded GEMM, as one sample's product is small; a batch of one runs on the calling thread with the GEMM's own threading. The
/// weight gradient sums over samples in fixed chunks whose partial sums are added in chunk order, so the result does
/// not depend on the thread count.
/// </remarks>
internal static class Convolution
{
    // All tensors here are contiguous (the backend makes them so); spans are taken inside the per-sample bodies.

    public static void Forward<T>(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv2dGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && DirectConvolution.Applies(g)) { DirectConvolution.Forward(x, w, bias, y, g); return; }
        int span = SamplesPerProduct(g);
        ForSamples((g.Batch + span - 1) / span, b =>
        {
            int plane = g.OutHeight * g.OutWidth, rows = g.GroupInChannels * g.KernelHeight * g.KernelWidth;
            int n0 = b * span, count = Math.Min(span, g.Batch - n0), width = count * plane;
            var ys = y.Span<T>();
            var yn = ys.Slice(n0 * g.OutChannels * plane, g.OutChannels * plane);
            // One sample: bias first, the product accumulated into y. Several: their products side by side, then each
            // sample's columns copied into its NCHW output with the bias.
            var product = count == 1 ? yn : Scratch<T>.Get(2, g.OutChannels * width);
            if (bias is not null && count == 1)
            {
                var bs = bias.Span<T>();
                for (int k = 0; k < g.OutChannels; k++) yn.Slice(k * plane, plane).Fill(bs[k]);
            }
            int stride = g.IsPointwise ? width : ColStride<T>(width);
            ReadOnlySpan<T> col = g.IsPointwise ? x.Span<T>().Slice(n0 * g.InChannels * plane, g.InChannels * plane) : Unroll<T>(x, n0, count, stride, g);
            var ws = w.Span<T>();
            for (int gi = 0; gi < g.Groups; gi++)
                Gemm.Multiply(ws[(gi * g.GroupOutChannels * rows)..], false, col[(gi * rows * stride)..], false,
                    product[(gi * g.GroupOutChannels * width)..], g.GroupOutChannels, width, rows, accumulate: bias is not null && count == 1, SingleThreaded(g.Batch), ldb: stride);
            if (count == 1) return;
            var bv = bias is null ? default : bias.Span<T>();
            for (int i = 0; i < count; i++)
                for (int k = 0; k < g.OutChannels; k++)
                {
                    var from = product.Slice(k * width + i * plane, plane);
                    var to = ys.Slice(((n0 + i) * g.OutChannels + k) * plane, plane);
                    if (bias is null) ShortSpans.Copy(from, to); else TensorPrimitives.Add(from, bv[k], to);
                }
        });
    }

    // Small output planes make a thin GEMM per sample (N = OH·OW: 196 for mnist-cnn's second layer), so the forward and
    // input-gradient passes unroll several samples side by side into one product of N ≈ 800 and copy the outputs back.
    // Measured (ConvRunner, 2 Zen 4 cores, GFLOP/s one sample → several): mnist-cnn's 32→64 5×5 at 14×14 forward
    // 145 → 169, input gradient 127 → 153; the GEMM 64×800·800×N alone 96 (N 196) → 107 (N 784) on one core. Wider
    // layers (CIFAR's 64→128 at 16×16, 128→256 at 8×8) already run near 180 and lost 2–10%, hence the limits. But 4×4
    // planes (a CIFAR net's third stage with two convolutions) gain whatever the depth: 128→128 forward 77/87 → 116/127
    // GFLOP/s, input gradient 77/66 → 113/99; 256→256 91/117 → 127/144 and 71/95 → 121/127 (2 Xeon cores, two runs
    // each). Planes of 16–63 pixels (7×7, say) take the same rule unmeasured.
    static int SamplesPerProduct(in Conv2dGeometry g)
    {
        int plane = g.OutHeight * g.OutWidth, rows = g.InChannels * g.KernelHeight * g.KernelWidth;
        if (g.IsPointwise || plane >= 256 || (rows > 800 && plane >= 64)) return 1;
        int span = Math.Min(800 / plane, (1 << 20) / Math.Max(1, rows * plane));   // the unrolled block stays ≤ 4 MB of floats
        return Math.Clamp(Math.Min(span, g.Batch / 2), 1, 16);   // and every thread still gets work
    }

    public static void InputGrad<T>(Tensor gy, Tensor w, Tensor gx, Conv2dGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (AsFlippedForward(g) is Conv2dGeometry flipped)
        {
            Forward<T>(gy, Flip<T>(w, g), null, gx, flipped);
            return;
        }
        int span = SamplesPerProduct(g);
        ForSamples((g.Batch + span - 1) / span, b =>
        {
            int plane = g.OutHeight * g.OutWidth, rows = g.GroupInChannels * g.KernelHeight * g.KernelWidth, inPlane = g.Height * g.Width;
            int n0 = b * span, count = Math.Min(span, g.Batch - n0), width = count * plane;
            var gyb = GatherSamples(gy.Span<T>(), n0, count, g.OutChannels, plane);
            var gxs = gx.Span<T>();
            var ws = w.Span<T>();
            var col = g.IsPointwise ? gxs.Slice(n0 * g.InChannels * inPlane, g.InChannels * inPlane) : Scratch<T>.Get(0, g.InChannels * g.KernelHeight * g.KernelWidth * width);
            for (int gi = 0; gi < g.Groups; gi++)   // col_g = W_gᵀ · gy_g
                Gemm.Multiply(ws[(gi * g.GroupOutChannels * rows)..], true, gyb[(gi * g.GroupOutChannels * width)..], false,
                    col[(gi * rows * width)..], rows, width, g.GroupOutChannels, accumulate: false, SingleThreaded(g.Batch));
            if (g.IsPointwise) return;
            for (int i = 0; i < count; i++)
                Fold(col[(i * plane)..], width, gxs.Slice((n0 + i) * g.InChannels * inPlane, g.InChannels * inPlane), g);
        });
    }

    // At stride 1 the input gradient is itself a convolution: of gy, padded by d·(k − 1) − pad, with each group's weight
    // transposed (in ↔ out channels) and rotated by 180°. Run as a forward pass, its GEMM has depth K/G·KH·KW instead
    // of K/G and unrolling gy is a copy where col2im is a scatter of adds; but its GEMM has only C/G rows. Measured
    // (ConvRunner, 2 Zen 4 cores, GFLOP/s col2im → flipped): 32→64 3×3 at 32×32 62 → 118, 128→256 3×3 at 8×8 131 → 143,
    // 64→128 3×3 at 16×16 162 → 154, 32→64 5×5 at 14×14 118 → 91, 1→32 5×5 6 ← 110, 3→32 3×3 78 → 25. Hence: few taps,
    // at least 16 input channels per group and no more than twice as many output channels.
    static Conv2dGeometry? AsFlippedForward(in Conv2dGeometry g)
    {
        if (g.StrideHeight != 1 || g.StrideWidth != 1 || g.IsPointwise) return null;
        if (g.KernelHeight * g.KernelWidth > 9 || g.GroupInChannels < 16 || g.GroupOutChannels > 2 * g.GroupInChannels) return null;
        int th = g.DilationHeight * (g.KernelHeight - 1), tw = g.DilationWidth * (g.KernelWidth - 1);
        if (g.PadTop > th || g.PadBottom > th || g.PadLeft > tw || g.PadRight > tw) return null;
        return new Conv2dGeometry(g.Batch, g.OutChannels, g.OutHeight, g.OutWidth, g.InChannels, g.KernelHeight, g.KernelWidth,
            1, 1, th - g.PadTop, th - g.PadBottom, tw - g.PadLeft, tw - g.PadRight, g.DilationHeight, g.DilationWidth, g.Groups);
    }

    // W'[gi·Cg + c, k, p, q] = W[gi·Kg + k, c, KH−1−p, KW−1−q], in this thread's buffer.
    static Tensor Flip<T>(Tensor w, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cg = g.GroupInChannels, kg = g.GroupOutChannels, kh = g.KernelHeight, kw = g.KernelWidth, taps = kh * kw;
        var flipped = Tensor.Uninitialized([g.InChannels, kg, kh, kw], w.DType);
        var src = w.Span<T>();
        var dst = flipped.Span<T>();
        for (int gi = 0; gi < g.Groups; gi++)
            for (int k = 0; k < kg; k++)
                for (int c = 0; c < cg; c++)
                {
                    var from = src.Slice(((gi * kg + k) * cg + c) * taps, taps);
                    var to = dst.Slice(((gi * cg + c) * kg + k) * taps, taps);
                    for (int t = 0; t < taps; t++) to[t] = from[taps - 1 - t];
                }
        return flipped;
    }

    public static void WeightGrad<T>(Tensor x, Tensor gy, Tensor gw, Conv2dGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (g.Batch == 0) { gw.Span<T>().Clear(); return; }   // no samples: a zero gradient, as PyTorch
        if (typeof(T) == typeof(float) && DirectConvolution.Applies(g)) { DirectConvolution.WeightGrad(x, gy, gw, g); return; }
        int plane = g.OutHeight * g.OutWidth, rows = g.GroupInChannels * g.KernelHeight * g.KernelWidth, size = g.OutChannels * rows;
        int chunks = Math.Min(g.Batch, WeightChunks), perChunk = (g.Batch + chunks - 1) / chunks;
        chunks = (g.Batch + perChunk - 1) / perChunk;
        // A plane under 64 pixels makes a product of depth OH·OW that loads and stores the whole gradient every 16 or 64
        // multiply-adds, so such samples are unrolled side by side (depth ≈ 256, within a chunk: the sums' order depends
        // on the batch, never on the thread count). Measured (ConvRunner, 2 Xeon cores, GFLOP/s): 128→128 3×3 at 4×4
        // 92/74 → 101/77 and 256→256 93/103 → 119/109, noisy. From 64 pixels up side by side measured slower: W6
        // 1,144/996/1,146 against 1,157/1,089/1,166 samples/s.
        int span = g.IsPointwise || plane >= 64 ? 1 : Math.Clamp(256 / plane, 1, perChunk);   // pointwise: x is its own col, one sample
        // Chunk 0 sums straight into gw; the others into a rented array (each chunk writes its whole slice first, so its
        // old contents never matter): a fresh one was 3 MB of zeroed garbage per call in mnist-cnn's second layer.
        var partials = chunks == 1 ? null : System.Buffers.ArrayPool<T>.Shared.Rent((chunks - 1) * size);
        try
        {
            ForSamples(chunks, chunk =>
            {
                var sum = chunk == 0 ? gw.Span<T>() : partials.AsSpan((chunk - 1) * size, size);
                for (int n = chunk * perChunk, end = Math.Min(g.Batch, n + perChunk); n < end; n += span)
                {
                    bool add = n != chunk * perChunk;
                    int count = Math.Min(span, end - n), width = count * plane;
                    int stride = g.IsPointwise ? width : ColStride<T>(width);
                    ReadOnlySpan<T> col = g.IsPointwise ? x.Span<T>().Slice(n * g.InChannels * plane, g.InChannels * plane) : Unroll<T>(x, n, count, stride, g);
                    var gyb = GatherSamples(gy.Span<T>(), n, count, g.OutChannels, plane);
                    for (int gi = 0; gi < g.Groups; gi++)   // dW_g += gy_g · col_gᵀ
                        Gemm.Multiply(gyb[(gi * g.GroupOutChannels * width)..], false, col[(gi * rows * stride)..], true,
                            sum[(gi * g.GroupOutChannels * rows)..], g.GroupOutChannels, rows, width, add, SingleThreaded(chunks), ldb: stride);
                }
            });
            if (partials is null) return;
            var dst = gw.Span<T>();
            for (int c = 1; c < chunks; c++) TensorPrimitives.Add(dst, partials.AsSpan((c - 1) * size, size), dst);
        }
        finally { if (partials is not null) System.Buffers.ArrayPool<T>.Shared.Return(partials); }
    }

    // Enough chunks for 16 threads; each costs one weight-sized partial sum.
    const int WeightChunks = 16;

    static bool SingleThreaded(int items) => items > 1 && Workers.ThreadsFor(items) > 1;

    /// <summary>Runs body(0 … count−1), sharing items among threads (each item on one thread, any order).</summary>
    static void ForSamples(int count, Action<int> body) => Workers.For(count, Workers.ThreadsFor(count), body);

    /// <summary>
    /// im2col of samples n0 … n0+count−1 side by side into this thread's buffer, rows <paramref name="stride"/> apart:
    /// row (c, p, q), column (i, j) = x[n, c, i·s − pad + p·d, j·s − pad + q·d] or 0.
    /// </summary>
    static Span<T> Unroll<T>(Tensor x, int n0, int count, int stride, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = g.OutHeight * g.OutWidth;
        var col = Scratch<T>.Get(1, g.InChannels * g.KernelHeight * g.KernelWidth * stride);
        for (int i = 0; i < count; i++) Unroll(x.Span<T>(), n0 + i, col[(i * plane)..], stride, g);
        return col;
    }

    // The product reads its KC × 32 block of B down 256 rows, two cache lines each, for every 8 rows of A; rows 4 KiB
    // apart (a 32×32 plane of floats) all map to the same L1 sets, and rows 256 bytes apart to a sixteenth of them, so
    // the block falls out of L1 between uses. Such rows are padded by a cache line. W9 (64×32×32×32 → 64 3×3, 2 Zen 5
    // cores, two interleaved runs, GFLOP/s): 285/274 → 306/319.
    static int ColStride<T>(int width) where T : unmanaged =>
        width * Unsafe.SizeOf<T>() % 256 == 0 ? width + 64 / Unsafe.SizeOf<T>() : width;

    /// <summary>Sample n's unrolled rows into col, row r at r·<paramref name="width"/> (other samples' columns beside it).</summary>
    static void Unroll<T>(ReadOnlySpan<T> x, int n, Span<T> col, int width, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = g.OutHeight, ow = g.OutWidth, plane = oh * ow, inPlane = g.Height * g.Width;
        var xn = x.Slice(n * g.InChannels * inPlane, g.InChannels * inPlane);
        bool rowPreserving = IsRowPreserving(g);   // the geometry's derived sizes are computed, not stored: kept out of the loop
        var masks = rowPreserving ? WrapMasks<T>.For(g.Width, plane) : null;
        int row = 0;
        for (int c = 0; c < g.InChannels; c++)
            for (int p = 0; p < g.KernelHeight; p++)
                for (int q = 0; q < g.KernelWidth; q++, row++)
                {
                    var dst = col.Slice(row * width, plane);
                    if (rowPreserving) { ShiftedPlane<T>(xn.Slice(c * inPlane, inPlane), dst, p, q, oh, masks!, g); continue; }
                    var (j0, j1) = ValidColumns(q, ow, g);
                    int dw = q * g.DilationWidth - g.PadLeft;
                    for (int i = 0; i < oh; i++)
                    {
                        var d = dst.Slice(i * ow, ow);
                        int h = i * g.StrideHeight - g.PadTop + p * g.DilationHeight;
                        if (h < 0 || h >= g.Height || j0 >= j1) { ShortSpans.Clear(d); continue; }
                        var src = xn.Slice(c * inPlane + h * g.Width, g.Width);
                        ShortSpans.Clear(d[..j0]);
                        ShortSpans.Clear(d[j1..]);
                        if (g.StrideWidth == 1) ShortSpans.Copy(src.Slice(j0 + dw, j1 - j0), d[j0..j1]);
                        else for (int j = j0; j < j1; j++) d[j] = src[j * g.StrideWidth + dw];
                    }
                }
    }

    /// <summary>Samples n0 … n0+count−1 of (N, K, plane) side by side as one (K, count·plane) matrix (no copy for one sample).</summary>
    static ReadOnlySpan<T> GatherSamples<T>(ReadOnlySpan<T> t, int n0, int count, int channels, int plane) where T : unmanaged
    {
        if (count == 1) return t.Slice(n0 * channels * plane, channels * plane);
        int width = count * plane;
        var dst = Scratch<T>.Get(2, channels * width);
        for (int i = 0; i < count; i++)
            for (int k = 0; k < channels; k++)
                ShortSpans.Copy(t.Slice(((n0 + i) * channels + k) * plane, plane), dst.Slice(k * width + i * plane, plane));
        return dst;
    }

    // Stride 1 and an output as wide as the input (a "same" convolution): output row i of tap (p, q) reads input row
    // i + dy shifted by dx, and rows of both are W long, so the whole valid block is ONE contiguous copy — instead of one
    // copy per output row, which for 14- or 28-wide planes cost as much as the GEMM — through a mask that zeroes the |dx|
    // columns that wrapped around from the neighbouring row.
    static bool IsRowPreserving(in Conv2dGeometry g) => g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth == g.Width;

    /// <summary>dst (OH × W) = the input plane shifted by tap (p, q), zero where the tap reads padding.</summary>
    static void ShiftedPlane<T>(ReadOnlySpan<T> src, Span<T> dst, int p, int q, int oh, WrapMasks<T> masks, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = g.Width;   // oh: the caller's g.OutHeight (a division; this runs once per tap and sample)
        int dy = p * g.DilationHeight - g.PadTop, dx = q * g.DilationWidth - g.PadLeft;
        int i0 = Math.Clamp(-dy, 0, oh), i1 = Math.Clamp(g.Height - dy, i0, oh);
        ShortSpans.Clear(dst[..(i0 * w)]);
        ShortSpans.Clear(dst[(i1 * w)..]);
        if (i0 >= i1) return;
        int d0 = i0 * w, d1 = i1 * w, shift = dy * w + dx;   // dst[k] = src[k + shift] inside the block
        int s0 = d0 + shift, s1 = d1 + shift;
        if (s0 < 0) { ShortSpans.Clear(dst[d0..(d0 - s0)]); d0 -= s0; s0 = 0; }
        if (s1 > src.Length) { ShortSpans.Clear(dst[(d1 - (s1 - src.Length))..d1]); d1 -= s1 - src.Length; s1 = src.Length; }
        if (d1 <= d0) return;
        if (dx == 0) ShortSpans.Copy(src[s0..s1], dst[d0..d1]);
        else if (Math.Abs(dx) >= w) ShortSpans.Clear(dst[d0..d1]);   // every column's source is off its row
        else MaskedCopy(src[s0..s1], dst[d0..d1], masks.Shifted(dx)[d0..d1]);   // columns whose source fell off the row's edge: 0
    }

    /// <summary>dst = src &amp; mask, element by element (the mask's entries all ones or zero); the spans must not overlap.</summary>
    static void MaskedCopy<T>(ReadOnlySpan<T> src, Span<T> dst, ReadOnlySpan<T> mask) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = src.Length, i = 0;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            int v = Vector512<T>.Count;
            for (; i + v <= n; i += v) (Vector512.Create(src[i..]) & Vector512.Create(mask[i..])).CopyTo(dst[i..]);
            if (i < n) (Vector512.Create(src[(n - v)..]) & Vector512.Create(mask[(n - v)..])).CopyTo(dst[(n - v)..]);   // overlapping: the same values
            return;
        }
        if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            int v = Vector256<T>.Count;
            for (; i + v <= n; i += v) (Vector256.Create(src[i..]) & Vector256.Create(mask[i..])).CopyTo(dst[i..]);
            if (i < n) (Vector256.Create(src[(n - v)..]) & Vector256.Create(mask[(n - v)..])).CopyTo(dst[(n - v)..]);
            return;
        }
        if (Vector128.IsHardwareAccelerated && n >= Vector128<T>.Count)
        {
            int v = Vector128<T>.Count;
            for (; i + v <= n; i += v) (Vector128.Create(src[i..]) & Vector128.Create(mask[i..])).CopyTo(dst[i..]);
            if (i < n) (Vector128.Create(src[(n - v)..]) & Vector128.Create(mask[(n - v)..])).CopyTo(dst[(n - v)..]);
            return;
        }
        for (; i < n; i++) dst[i] = mask[i] == T.Zero ? T.Zero : src[i];   // a set mask entry is a NaN pattern, never zero
    }

    /// <summary>
    /// Per thread and plane width w, for each shift dx: all ones where a column's source lies in its own row, zero at the
    /// |dx| columns the shift wraps around. Copying through it replaces a zeroing pass of one or two stores per row, which
    /// after the copy itself became the im2col's largest cost (W6: 2% of the step). Fetched once per unrolled sample (a
    /// lookup per tap cost as much as the zeroing it saves) and kept for every width a network uses.
    /// </summary>
    sealed class WrapMasks<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] static List<WrapMasks<T>>? perWidth;

        readonly int w;
        int length;
        readonly T[]?[] byShift;   // indexed by dx + w, |dx| < w

        WrapMasks(int w) { this.w = w; byShift = new T[]?[2 * w + 1]; }

        public static WrapMasks<T> For(int w, int length)
        {
            perWidth ??= [];
            WrapMasks<T>? set = null;
            foreach (var s in perWidth) if (s.w == w) { set = s; break; }
            if (set is null) perWidth.Add(set = new WrapMasks<T>(w));
            if (set.length < length) { set.length = length; Array.Clear(set.byShift); }   // a taller plane: masks rebuilt longer
            return set;
        }

        public ReadOnlySpan<T> Shifted(int dx)
        {
            ref var mask = ref byShift[dx + w];
            if (mask is null)
            {
                int c0 = dx > 0 ? w - dx : 0, c1 = dx > 0 ? w : -dx;
                mask = new T[length];
                for (int k = 0; k < length; k++) mask[k] = k % w >= c0 && k % w < c1 ? T.Zero : Vector128<T>.AllBitsSet.ToScalar();
            }
            return mask;
        }
    }

    /// <summary>Zeroes the |dx| columns at the edge a shift by dx wrapped around, in rows [i0, i1) of w values.</summary>
    static void ZeroWrappedColumns<T>(Span<T> plane, int i0, int i1, int w, int dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // A store or two per row: a Clear call per row cost more than the copy of the whole plane (W6: 4% of the step).
        if (dx == 0) return;
        int c0 = dx > 0 ? Math.Max(0, w - dx) : 0, c1 = dx > 0 ? w : Math.Min(w, -dx);
        var rows = plane[(i0 * w)..(i1 * w)];
        for (int r = 0; r < rows.Length; r += w)
            for (int c = c0; c < c1; c++) rows[r + c] = T.Zero;
    }

    /// <summary>The adjoint of <see cref="ShiftedPlane{T}"/>: gx plane += src shifted back (src's padding entries are zeroed first; src is scratch).</summary>
    static void AddShiftedPlane<T>(Span<T> src, Span<T> dst, int p, int q, int oh, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = g.Width;
        int dy = p * g.DilationHeight - g.PadTop, dx = q * g.DilationWidth - g.PadLeft;
        int i0 = Math.Clamp(-dy, 0, oh), i1 = Math.Clamp(g.Height - dy, i0, oh);
        if (i0 >= i1) return;
        ZeroWrappedColumns(src, i0, i1, w, dx);   // entries that read padding carry no gradient to any pixel
        int d0 = i0 * w, d1 = i1 * w, shift = dy * w + dx;   // gx[k + shift] += src[k] inside the block
        int s0 = d0 + shift, s1 = d1 + shift;
        if (s0 < 0) { d0 -= s0; s0 = 0; }
        if (s1 > dst.Length) { d1 -= s1 - dst.Length; s1 = dst.Length; }
        if (d1 > d0) TensorPrimitives.Add(dst[s0..s1], src[d0..d1], dst[s0..s1]);
    }

    /// <summary>col2im: adds each column entry back onto the input pixel it was read from (gx overwritten).</summary>
    static void Fold<T>(Span<T> col, int width, Span<T> gx, in Conv2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = g.OutHeight, ow = g.OutWidth, plane = oh * ow, inPlane = g.Height * g.Width;
        gx.Clear();
        bool rowPreserving = IsRowPreserving(g);
        int row = 0;
        for (int c = 0; c < g.InChannels; c++)
            for (int p = 0; p < g.KernelHeight; p++)
                for (int q = 0; q < g.KernelWidth; q++, row++)
                {
                    var src = col.Slice(row * width, plane);
                    if (rowPreserving) { AddShiftedPlane<T>(src, gx.Slice(c * inPlane, inPlane), p, q, oh, g); continue; }
                    var (j0, j1) = ValidColumns(q, ow, g);
                    if (j0 >= j1) continue;
                    int dw = q * g.DilationWidth - g.PadLeft;
                    for (int i = 0; i < oh; i++)
                    {
                        int h = i * g.StrideHeight - g.PadTop + p * g.DilationHeight;
                        if (h < 0 || h >= g.Height) continue;
                        var dst = gx.Slice(c * inPlane + h * g.Width, g.Width);
                        var s = src.Slice(i * ow, ow);
                        if (g.StrideWidth == 1) TensorPrimitives.Add(dst.Slice(j0 + dw, j1 - j0), s[j0..j1], dst.Slice(j0 + dw, j1 - j0));
                        else for (int j = j0; j < j1; j++) dst[j * g.StrideWidth + dw] += s[j];
                    }
                }
    }

    /// <summary>The output columns [j0, j1) whose kernel tap q reads inside the input row.</summary>
    static (int, int) ValidColumns(int q, int ow, in Conv2dGeometry g)
    {
        int dw = q * g.DilationWidth - g.PadLeft;   // input column = j·s + dw
        int s = g.StrideWidth;
        int j0 = dw >= 0 ? 0 : (-dw + s - 1) / s;
        int j1 = g.Width - dw <= 0 ? 0 : Math.Min(ow, (g.Width - dw + s - 1) / s);
        return (j0, Math.Max(j0, j1));
    }

    /// <summary>Per-thread unrolled-input buffers (two slots: the forward's and the input gradient's), grown, never shrunk.</summary>
    static class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] static T[]? slot0, slot1, slot2;

        public static Span<T> Get(int slot, int length)
        {
            ref var buf = ref slot == 0 ? ref slot0 : ref slot == 1 ? ref slot1 : ref slot2;
            if (buf is null || buf.Length < length) buf = GC.AllocateUninitializedArray<T>(length);
            return buf.AsSpan(0, length);
        }
    }
}
