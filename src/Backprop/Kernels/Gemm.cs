using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static Backprop.Kernels.MicroKernels;

namespace Backprop.Kernels;

/// <summary>Which microkernel family <see cref="Gemm"/> uses; tests force each one.</summary>
internal enum GemmPath
{
    Auto, Vector512, Vector256, Vector128, Scalar,
    /// <summary>The 128-bit path as a CPU with 16 vector registers runs it (SSE-only x64), which tests force on machines with 32.</summary>
    Vector128Narrow,
}

/// <summary>
/// General matrix multiply on row-major spans: C (m×n) = op(A)·op(B), or C += op(A)·op(B) when
/// <c>accumulate</c>. op(A) is m×k: A is stored m×k, or k×m when <c>transA</c>; likewise B is k×n or n×k.
/// Transposed operands are read in place by the packing routines, never materialised.
/// </summary>
/// <remarks>
/// The Goto/BLIS scheme: for each NC-column block of B and KC-deep slice of k, pack B into NR-wide
/// micro-panels; for each MC-row block of A, pack A into MR-tall micro-panels; then a register-tiled
/// microkernel computes each MR×NR tile of C. Large products split their columns (or rows) across threads.
/// </remarks>
internal static unsafe partial class Gemm
{
    [ThreadStatic] static GemmPath forcedPath;

    /// <summary>Forces a kernel family for calls made on the current thread (tests); Auto defers to <see cref="ProcessPath"/>.</summary>
    internal static GemmPath ForcedPath { get => forcedPath; set => forcedPath = value; }

    /// <summary>
    /// The widest kernel family every thread may use (<c>bench --isa</c>, or the BACKPROP_ISA environment variable:
    /// vector512, vector256, vector128, scalar), so each path can be measured on one machine; Auto: the widest supported.
    /// </summary>
    internal static GemmPath ProcessPath { get; set; } = Enum.TryParse<GemmPath>(Environment.GetEnvironmentVariable("BACKPROP_ISA"), ignoreCase: true, out var p) ? p : GemmPath.Auto;

    /// <summary>The kernel family a call on this thread would use for element type <typeparamref name="T"/>: the widest supported at or below the forced one.</summary>
    internal static GemmPath PathFor<T>() where T : unmanaged
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double)) return GemmPath.Scalar;
        var path = forcedPath != GemmPath.Auto ? forcedPath : ProcessPath;
        if (path is GemmPath.Auto or GemmPath.Vector512 && K512x8<T>.IsSupported) return GemmPath.Vector512;
        if (path is GemmPath.Auto or GemmPath.Vector512 or GemmPath.Vector256 && K256x6<T>.IsSupported) return GemmPath.Vector256;
        if (path is GemmPath.Vector128Narrow && K128x6<T>.IsSupported) return path;
        if (path is not GemmPath.Scalar && K128x6<T>.IsSupported) return GemmPath.Vector128;
        return GemmPath.Scalar;
    }

    /// <param name="ldb">B's row stride when it is not its row length (0: dense): an unrolled convolution input pads rows
    /// whose length is a multiple of 256 bytes by a cache line.</param>
    public static void Multiply<T>(ReadOnlySpan<T> a, bool transA, ReadOnlySpan<T> b, bool transB, Span<T> c,
        int m, int n, int k, bool accumulate, bool singleThreaded = false, int ldb = 0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int bRow = transB ? k : n;
        if (ldb == 0) ldb = bRow;
        if ((long)m * k > a.Length || (n > 0 && k > 0 && (long)((transB ? n : k) - 1) * ldb + bRow > b.Length) || (long)m * n > c.Length || ldb < bRow)
            throw new ArgumentException($"gemm: spans too short for {m}x{k} @ {k}x{n}");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) c[..(m * n)].Clear();
            return;
        }
        var path = PathFor<T>();
        fixed (T* pa = a) fixed (T* pb = b) fixed (T* pc = c)
        {
            var p = new Problem<T>(pa, transA, transA ? m : k, pb, transB, ldb, pc, n, m, n, k, accumulate);
            int threads = singleThreaded ? 1 : IsRowTimesRows(path, p)
                ? Workers.ThreadsFor((long)m * n * k / GemvMinPerThread)
                : ThreadsFor(m, n, k);
            if (threads <= 1) Run(path, p);
            else Job<T>.ForThisThread().Run(path, p, threads);
        }
    }

    // Below this many multiply-adds per thread a single-row product stays on the calling thread (a hand-off costs µs).
    const long GemvMinPerThread = 256 * 1024;

    // One row times a matrix stored (n × k) — a Linear layer on one sample: n dot products of contiguous rows. Packing
    // B for the blocked kernel would copy the whole weight matrix to use each value once. Large ones split their columns
    // across the GEMM's helper threads like any product (no allocation, no Parallel.For hand-off); each output is one
    // thread's, and shares are whole multiples of the tile's width (so of the four rows taken at a time): the thread
    // count changes nothing. Memory-bound: Vector<T> serves every machine, and floats on the 512-bit path take 512-bit
    // fused multiply-adds (Gemv512), which streamed a little faster on Zen 4.
    //
    // A few rows (a Linear layer on a small batch: A·Bᵀ with both operands' rows contiguous) are dot products too, on
    // the 512-bit path four rows of A against four of B at a time, each loaded vector serving four multiply-adds. The
    // blocked kernel transposed both operands into panels on every call (9% of W1's perf samples). Measured (Intel Xeon
    // family 6 model 167, `quick --tb`, GFLOP/s one thread / two, three interleaved runs): 16×784·(50×784)ᵀ 30–34 /
    // 39–48 → 49–54 / 55–69, 8×784·(1024×784)ᵀ 30–32 / 59–62 → 41–42 / 64–86, 16 rows against 1024 level, 32 rows
    // 56–58 → 43–46 one thread (B's packing is then well shared): hence at most 16 rows, and at least 64 deep.
    static bool IsRowTimesRows<T>(GemmPath path, in Problem<T> p) where T : unmanaged =>
        p.TransB && (p.M == 1 ? !p.TransA || p.Lda == 1   // A's row contiguous
            : typeof(T) == typeof(float) && path == GemmPath.Vector512 && !p.TransA && p.M <= DotMaxRows && p.K >= DotMinDepth);

    const int DotMaxRows = 16, DotMinDepth = 64;

    static void RowTimesRows<T>(GemmPath path, in Problem<T> p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && path == GemmPath.Vector512 && p.K >= 16)
            Dots512((float*)p.A, p.Lda, (float*)p.B, p.Ldb, (float*)p.C, p.Ldc, p.M, p.N, p.K, p.Accumulate);
        else
            Gemv(new ReadOnlySpan<T>(p.A, p.K), new ReadOnlySpan<T>(p.B, (p.N - 1) * (int)p.Ldb + p.K), new Span<T>(p.C, p.N), p.N, p.K, (int)p.Ldb, p.Accumulate);
    }

    // C[i, j] (+)= A[i, :] · B[j, :]: for each four rows of B (in L1), every four rows of A (in L2), so B streams past
    // once; the last rows (a single row: all of them) and columns by Gemv512. Every element is the same chain — fused multiply-adds along the 16-wide body, the
    // vector's sum, then the tail — in either routine, so how a product is split between threads (in multiples of four
    // rows or columns) changes no bit.
    static void Dots512(float* a, nint lda, float* b, nint ldb, float* c, nint ldc, int m, int n, int k, bool accumulate)
    {
        int m4 = m - m % 4, n4 = n - n % 4;
        for (int j = 0; j < n4 && m4 > 0; j += 4)
            for (int i = 0; i < m4; i += 4) Dot4x4(a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, k, accumulate);
        if (n4 < n)
            for (int r = 0; r < m4; r++) Gemv512(a + r * lda, b + n4 * ldb, c + r * ldc + n4, n - n4, k, ldb, accumulate);
        for (int r = m4; r < m; r++) Gemv512(a + r * lda, b, c + r * ldc, n, k, ldb, accumulate);
    }

    static void Dot4x4(float* a, nint lda, float* b, nint ldb, float* c, nint ldc, int k, bool accumulate)
    {
        float* a0 = a, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
        float* b0 = b, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
        int body = k - k % 16;
        for (int p = 0; p < body; p += 16)
        {
            Vector512<float> w0 = Vector512.Load(b0 + p), w1 = Vector512.Load(b1 + p), w2 = Vector512.Load(b2 + p), w3 = Vector512.Load(b3 + p);
            var x = Vector512.Load(a0 + p);
            s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01); s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
            x = Vector512.Load(a1 + p);
            s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11); s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
            x = Vector512.Load(a2 + p);
            s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21); s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
            x = Vector512.Load(a3 + p);
            s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31); s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
        }
        Finish(a0, b, ldb, c, k, body, accumulate, s00, s01, s02, s03);
        Finish(a1, b, ldb, c + ldc, k, body, accumulate, s10, s11, s12, s13);
        Finish(a2, b, ldb, c + 2 * ldc, k, body, accumulate, s20, s21, s22, s23);
        Finish(a3, b, ldb, c + 3 * ldc, k, body, accumulate, s30, s31, s32, s33);
    }

    // One row's four outputs exactly as Gemv512 finishes them: the sums, the tail, then store or add.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Finish(float* x, float* w0, nint ldw, float* y, int k, int body, bool accumulate,
        Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        float* w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        float d0 = Vector512.Sum(s0), d1 = Vector512.Sum(s1), d2 = Vector512.Sum(s2), d3 = Vector512.Sum(s3);
        for (int p = body; p < k; p++) { d0 += x[p] * w0[p]; d1 += x[p] * w1[p]; d2 += x[p] * w2[p]; d3 += x[p] * w3[p]; }
        if (accumulate) { y[0] += d0; y[1] += d1; y[2] += d2; y[3] += d3; }
        else { y[0] = d0; y[1] = d1; y[2] = d2; y[3] = d3; }
    }

    // The 512-bit path with fused multiply-adds: the rows stream from L3 at ~4% more per core than 256-bit separate
    // multiplies and adds did (one Zen 4 core, 784→1024 and 1024→1024 in turn: 98.6 → 94.9 µs).
    static void Gemv512(float* x, float* w, float* y, int n, int k, nint ldw, bool accumulate)
    {
        int body = k - k % 16, j = 0;
        for (; j + 4 <= n; j += 4)
        {
            float* w0 = w + j * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int p = 0; p < body; p += 16)
            {
                var xv = Vector512.Load(x + p);
                s0 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w0 + p), s0); s1 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w1 + p), s1);
                s2 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w2 + p), s2); s3 = Vector512.FusedMultiplyAdd(xv, Vector512.Load(w3 + p), s3);
            }
            Finish(x, w0, ldw, y + j, k, body, accumulate, s0, s1, s2, s3);
        }
        for (; j < n; j++)
        {
            float d = TensorPrimitives.Dot(new ReadOnlySpan<float>(x, k), new ReadOnlySpan<float>(w + j * ldw, k));
            y[j] = accumulate ? y[j] + d : d;
        }
    }

    // y[j] (+)= x · w[j, :], four rows at a time so each load of x serves four accumulators.
    static void Gemv<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, int n, int k, int ldw, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported && k >= Vector<T>.Count)
        {
            int width = Vector<T>.Count, body = k - k % width;
            for (; j + 4 <= n; j += 4)
            {
                ReadOnlySpan<T> w0 = w.Slice(j * ldw, k), w1 = w.Slice((j + 1) * ldw, k), w2 = w.Slice((j + 2) * ldw, k), w3 = w.Slice((j + 3) * ldw, k);
                Vector<T> s0 = default, s1 = default, s2 = default, s3 = default;
                for (int p = 0; p < body; p += width)
                {
                    var xv = new Vector<T>(x[p..]);
                    s0 += xv * new Vector<T>(w0[p..]); s1 += xv * new Vector<T>(w1[p..]);
                    s2 += xv * new Vector<T>(w2[p..]); s3 += xv * new Vector<T>(w3[p..]);
                }
                T d0 = Vector.Sum(s0), d1 = Vector.Sum(s1), d2 = Vector.Sum(s2), d3 = Vector.Sum(s3);
                for (int p = body; p < k; p++) { d0 += x[p] * w0[p]; d1 += x[p] * w1[p]; d2 += x[p] * w2[p]; d3 += x[p] * w3[p]; }
                if (accumulate) { y[j] += d0; y[j + 1] += d1; y[j + 2] += d2; y[j + 3] += d3; }
                else { y[j] = d0; y[j + 1] = d1; y[j + 2] = d2; y[j + 3] = d3; }
            }
        }
        for (; j < n; j++)
        {
            T d = TensorPrimitives.Dot(x, w.Slice(j * ldw, k));
            y[j] = accumulate ? y[j] + d : d;
        }
    }

    /// <summary>One GEMM on raw pointers with leading dimensions, so a thread's share is just an offset view.</summary>
    internal readonly struct Problem<T>(T* a, bool transA, nint lda, T* b, bool transB, nint ldb, T* c, nint ldc,
        int m, int n, int k, bool accumulate, bool? smallB = null) where T : unmanaged
    {
        public readonly T* A = a, B = b, C = c;
        public readonly nint Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly bool TransA = transA, TransB = transB, Accumulate = accumulate;
        public readonly int M = m, N = n, K = k;

        /// <summary>The whole product's B fits <see cref="DirectBMaxBytes"/>: decided once, so every thread's share agrees.</summary>
        public readonly bool SmallB = smallB ?? (long)k * n * sizeof(T) <= DirectBMaxBytes;

        /// <summary>Rows [i0, i0+rows) of op(A) and C.</summary>
        public Problem<T> Rows(int i0, int rows) =>
            new(TransA ? A + i0 : A + i0 * Lda, TransA, Lda, B, TransB, Ldb, C + i0 * Ldc, Ldc, rows, N, K, Accumulate, SmallB);

        /// <summary>Columns [j0, j0+cols) of op(B) and C.</summary>
        public Problem<T> Cols(int j0, int cols) =>
            new(A, TransA, Lda, TransB ? B + j0 * Ldb : B + j0, TransB, Ldb, C + j0, Ldc, M, cols, K, Accumulate, SmallB);
    }

    static void Run<T>(GemmPath path, in Problem<T> p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (IsRowTimesRows(path, p)) RowTimesRows(path, p);
        else RunBlocked(path, p);
    }

    static void RunBlocked<T>(GemmPath path, in Problem<T> p) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (path)
        {
            case GemmPath.Vector512: Blocked<T, K512x8<T>>(p); break;
            case GemmPath.Vector256: Blocked<T, K256x6<T>>(p); break;
            case GemmPath.Vector128 when K128x8<T>.IsSupported: Blocked<T, K128x8<T>>(p); break;
            case GemmPath.Vector128 or GemmPath.Vector128Narrow: Blocked<T, K128x6<T>>(p); break;
            default: Blocked<T, Scalar4x4<T>>(p); break;
        }
    }

    static (int MR, int NR) Tile<T>(GemmPath path) where T : unmanaged, IFloatingPointIeee754<T> => path switch
    {
        GemmPath.Vector512 => (K512x8<T>.MR, K512x8<T>.NR),
        GemmPath.Vector256 => (K256x6<T>.MR, K256x6<T>.NR),
        GemmPath.Vector128 when K128x8<T>.IsSupported => (K128x8<T>.MR, K128x8<T>.NR),
        GemmPath.Vector128 or GemmPath.Vector128Narrow => (K128x6<T>.MR, K128x6<T>.NR),
        _ => (Scalar4x4<T>.MR, Scalar4x4<T>.NR),
    };

    // Block sizes for Zen 4/5 (32/48 KiB L1d, 1 MiB L2 per core), in bytes so float and double keep the same
    // footprint. Loop order: jc (NC) → pc (KC, pack B) → ic (MC, pack A) → ir (MR) → jr (NR) → microkernel.
    // - KC = 256 floats: the A micro-panel (MR×KC = 8×256 floats = 8 KiB) stays in L1 across the whole jr loop,
    //   leaving most of L1 for the B micro-panel (KC×NR = 32 KiB) streaming past it from L2. Each C tile is
    //   loaded and stored once per KC steps, so KC much smaller starts to cost C traffic.
    // - NC = 512 columns: the packed B block (KC×NC = 512 KiB) fills half of L2 and is re-read from there
    //   for every MR rows of A; the other half absorbs the A block and C lines.
    // - MC ≈ 224 KiB of A: a packed A block is consumed right after packing, while it is still in L2.
    // Measured (benchmarks `quick --cpu`): KC 192–384 and NC 256–1024 are within noise of this choice.
    const int KcBytes = 1024, NcCols = 512, McBytes = 224 * 1024;

    // Up to this many rows, packing B costs more than it saves (each B value is reused only m times), so the
    // kernel reads a non-transposed B in place, row stride n; only a ragged last micro-panel is packed.
    // Measured: (16×50)·(50×784) 227 GFLOP/s direct vs 143 packed; (128×784)·(784×1024) 170 direct vs 204 packed.
    // But a B too large for the caches streams from memory, and the kernel's strided reads of it stall where packing
    // prefetches row by row (Zen 4, 1 thread, interleaved runs): 64×1024·1024×3136 (12.8 MB of B, mnist-cnn's
    // Linear input gradient) 68–85 GFLOP/s direct, 87–94 packed; 64×800·800×784 (2.5 MB) 108 direct, 98 packed. The
    // size is the whole product's B, not a thread's share of it.
    const int DirectBMaxRows = 64;
    const long DirectBMaxBytes = 4L << 20;

    static void Blocked<T, TK>(in Problem<T> p) where T : unmanaged, IFloatingPointIeee754<T> where TK : struct, IMicroKernel<T>
    {
        int mr = TK.MR, nr = TK.NR;
        int kcMax = Math.Min(p.K, KcBytes / sizeof(T));
        int ncMax = Math.Min(RoundUp(p.N, nr), RoundUp(NcCols, nr));
        int mcMax = Math.Min(RoundUp(p.M, mr), Math.Max(mr, McBytes / (kcMax * sizeof(T)) / mr * mr));
        bool directB = !p.TransB && p.M <= DirectBMaxRows && p.SmallB;
        var s = Scratch<T>.Get(mcMax * kcMax, kcMax * ncMax, mr * nr);
        T* ap = s.A, bp = s.B, tile = s.Tile;

        for (int jc = 0; jc < p.N; jc += ncMax)
        {
            int nc = Math.Min(ncMax, p.N - jc);
            for (int pc = 0; pc < p.K; pc += kcMax)
            {
                int kc = Math.Min(kcMax, p.K - pc);
                bool add = p.Accumulate || pc > 0;
                int packedFrom = directB ? nc / nr * nr : 0;   // direct: only the ragged tail is packed
                PackB(p, pc, kc, jc + packedFrom, nc - packedFrom, nr, bp + packedFrom * kc);
                for (int ic = 0; ic < p.M; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, p.M - ic);
                    PackA(p, ic, mc, pc, kc, mr, ap);
                    for (int ir = 0; ir < mc; ir += mr)
                    {
                        int mrows = Math.Min(mr, mc - ir);
                        T* a = ap + ir * kc;
                        T* crow = p.C + (ic + ir) * p.Ldc + jc;
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int ncols = Math.Min(nr, nc - jr);
                            T* b; nint ldb;
                            if (jr < packedFrom) { b = p.B + pc * p.Ldb + jc + jr; ldb = p.Ldb; }
                            else { b = bp + jr * kc; ldb = nr; }
                            if (mrows == mr && ncols == nr) TK.Run(kc, a, b, ldb, crow + jr, p.Ldc, add);
                            else
                            {
                                if (ncols < nr && ldb == nr) TK.RunNarrow(ncols, kc, a, b, ldb, tile, nr);
                                else if (mrows < mr) TK.RunShort(mrows, kc, a, b, ldb, tile, nr);
                                else TK.Run(kc, a, b, ldb, tile, nr, false);
                                MergeTile(tile, nr, crow + jr, p.Ldc, mrows, ncols, add);
                            }
                        }
                    }
                }
            }
        }
    }

    static void MergeTile<T>(T* tile, int nr, T* c, nint ldc, int rows, int cols, bool add) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < rows; i++, tile += nr, c += ldc)
        {
            var src = new ReadOnlySpan<T>(tile, cols);
            var dst = new Span<T>(c, cols);
            if (add) TensorPrimitives.Add(dst, src, dst);
            else ShortSpans.Copy(src, dst);
        }
    }

    internal static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>Per-thread packing buffers, 64-byte aligned (whole cache lines, aligned vector loads), reused across calls.</summary>
    static class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] static T[]? buffer;

        public readonly struct View(T* a, T* b, T* tile)
        {
            public readonly T* A = a, B = b, Tile = tile;
        }

        public static View Get(int aLen, int bLen, int tileLen)
        {
            int align = 64 / sizeof(T);
            aLen = RoundUp(aLen, align); bLen = RoundUp(bLen, align);
            int need = aLen + bLen + tileLen + align;
            var buf = buffer;
            if (buf is null || buf.Length < need) buffer = buf = GC.AllocateUninitializedArray<T>(need, pinned: true);
            T* p = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buf));
            p += (int)((64 - (nint)p % 64) % 64) / sizeof(T);
            return new View(p, p + aLen, p + aLen + bLen);
        }
    }
}
