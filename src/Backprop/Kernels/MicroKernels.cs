using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Kernels;

/// <summary>
/// A register-tiled microkernel: C[MR×NR] (=|+=) Σₚ a[p]ᵀ·b[p] over kc steps, where <c>a</c> is a packed
/// A micro-panel (MR values per step) and <c>b</c> holds NR contiguous values per step, <c>ldb</c> apart
/// (NR for a packed B micro-panel, n when B is read in place). C rows are <c>ldc</c> apart.
/// </summary>
internal interface IMicroKernel<T> where T : unmanaged
{
    static abstract int MR { get; }
    static abstract int NR { get; }
    static abstract bool IsSupported { get; }
    static abstract unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add);

    /// <summary>
    /// C[MR×ncols] = Σₚ a[p]ᵀ·b[p] for a ragged last micro-panel (ncols &lt; NR; B packed, zero-padded to NR, and C a
    /// scratch tile NR wide): a kernel may compute fewer than NR columns where a narrower tile is cheaper.
    /// </summary>
    static abstract unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc);

    /// <summary>
    /// C[rows×NR] = Σₚ a[p]ᵀ·b[p] for a ragged last row panel (rows &lt; MR; A packed, zero-padded to MR, and C a scratch
    /// tile NR wide): a kernel may compute fewer than MR rows where a shorter tile is cheaper.
    /// </summary>
    static abstract unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc);
}

// The vector kernels broadcast one A value per row and FMA it into two B vectors; the JIT keeps all
// accumulators in registers (checked with DOTNET_JitDisasm). Tile height was measured with 6, 8, 12 and 14
// rows (benchmarks' quick runner, CPU time): on the benchmark machine, a Zen 5 (two full-width 512-bit FMA
// pipes with 4-cycle latency, so ≥ 8 independent accumulators keep them busy), 8×32 floats runs large
// products as fast as 12×32 or 14×32, and it divides typical batch sizes (16, 128, 200), where a 14-row tile
// wastes most of a ragged panel: (16×784)·(784×50) ran at 94 GFLOP/s with 8 rows against 59 with 14.
internal static partial class MicroKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<T> MulAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<T> MulAdd<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    // 128-bit vectors: fused where the hardware fuses (x64 FMA3, Arm64 NEON), else multiply then add — emulating a
    // fused multiply-add in software would cost more than the vector saves. Both checks are JIT-time constants.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<T> MulAdd<T>(Vector128<T> a, Vector128<T> b, Vector128<T> c) where T : unmanaged
    {
        if (Fma.IsSupported || AdvSimd.Arm64.IsSupported)
        {
            if (typeof(T) == typeof(float)) return Vector128.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
            if (typeof(T) == typeof(double)) return Vector128.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        }
        return a * b + c;
    }

    /// <summary>
    /// 6×(2·w) with 128-bit vectors (w = 4 floats or 2 doubles): the path for CPUs without AVX and 16 vector registers —
    /// SSE-only x64, and NativeAOT builds that target the x64 baseline. Twelve accumulators, two B vectors and a broadcast
    /// fit SSE's 16 registers; where there are 32 (Arm64's NEON), <see cref="K128x8{T}"/> runs instead.
    /// </summary>
    internal readonly struct K128x6<T> : IMicroKernel<T> where T : unmanaged
    {
        public static int MR => 6;
        public static int NR => 2 * Vector128<T>.Count;
        public static bool IsSupported => Vector128.IsHardwareAccelerated && (typeof(T) == typeof(float) || typeof(T) == typeof(double));

        public static unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);
        public static unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add)
        {
            nint w = Vector128<T>.Count;
            Vector128<T> c00 = default, c01 = default;
            Vector128<T> c10 = default, c11 = default;
            Vector128<T> c20 = default, c21 = default;
            Vector128<T> c30 = default, c31 = default;
            Vector128<T> c40 = default, c41 = default;
            Vector128<T> c50 = default, c51 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector128.Load(b); var b1 = Vector128.Load(b + w);
                var a0 = Vector128.Create(a[0]); c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
                var a1 = Vector128.Create(a[1]); c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
                var a2 = Vector128.Create(a[2]); c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
                var a3 = Vector128.Create(a[3]); c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
                var a4 = Vector128.Create(a[4]); c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41);
                var a5 = Vector128.Create(a[5]); c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51);
                a += 6; b += ldb;
            }
            if (add)
            {
                Vector128.Store(Vector128.Load(c) + c00, c); Vector128.Store(Vector128.Load(c + w) + c01, c + w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c10, c); Vector128.Store(Vector128.Load(c + w) + c11, c + w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c20, c); Vector128.Store(Vector128.Load(c + w) + c21, c + w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c30, c); Vector128.Store(Vector128.Load(c + w) + c31, c + w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c40, c); Vector128.Store(Vector128.Load(c + w) + c41, c + w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c50, c); Vector128.Store(Vector128.Load(c + w) + c51, c + w); c += ldc;
            }
            else
            {
                Vector128.Store(c00, c); Vector128.Store(c01, c + w); c += ldc;
                Vector128.Store(c10, c); Vector128.Store(c11, c + w); c += ldc;
                Vector128.Store(c20, c); Vector128.Store(c21, c + w); c += ldc;
                Vector128.Store(c30, c); Vector128.Store(c31, c + w); c += ldc;
                Vector128.Store(c40, c); Vector128.Store(c41, c + w); c += ldc;
                Vector128.Store(c50, c); Vector128.Store(c51, c + w); c += ldc;
            }
        }
    }

    /// <summary>
    /// 8×(3·w) with 128-bit vectors, for CPUs with 32 vector registers (every Arm64 machine, and x64 with AVX-512 capped
    /// to 128 bits): 24 accumulators, three B vectors and a broadcast — 11 loads per 24 multiply-adds where the 6×(2·w)
    /// tile needs 8 per 12. Measured on a Zen 5 (family 26 model 2) with the path capped, `quick --paths Vector128`,
    /// GFLOP/s one core / two: 128×1024·1024² 38–40 / 69–75 → 45 / 85–87; 1024² 41–44 / 71–81 → 48 / 86–93 (a 6×(4·w)
    /// tile, also 24 accumulators, reached 42–45 / 71–74).
    /// </summary>
    internal readonly struct K128x8<T> : IMicroKernel<T> where T : unmanaged
    {
        public static int MR => 8;
        public static int NR => 3 * Vector128<T>.Count;
        public static bool IsSupported => K128x6<T>.IsSupported && (Avx512F.VL.IsSupported || AdvSimd.Arm64.IsSupported);

        public static unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);
        public static unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add)
        {
            nint w = Vector128<T>.Count;
            Vector128<T> c00 = default, c01 = default, c02 = default;
            Vector128<T> c10 = default, c11 = default, c12 = default;
            Vector128<T> c20 = default, c21 = default, c22 = default;
            Vector128<T> c30 = default, c31 = default, c32 = default;
            Vector128<T> c40 = default, c41 = default, c42 = default;
            Vector128<T> c50 = default, c51 = default, c52 = default;
            Vector128<T> c60 = default, c61 = default, c62 = default;
            Vector128<T> c70 = default, c71 = default, c72 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector128.Load(b); var b1 = Vector128.Load(b + w); var b2 = Vector128.Load(b + 2 * w);
                var a0 = Vector128.Create(a[0]); c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01); c02 = MulAdd(a0, b2, c02);
                var a1 = Vector128.Create(a[1]); c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11); c12 = MulAdd(a1, b2, c12);
                var a2 = Vector128.Create(a[2]); c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21); c22 = MulAdd(a2, b2, c22);
                var a3 = Vector128.Create(a[3]); c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31); c32 = MulAdd(a3, b2, c32);
                var a4 = Vector128.Create(a[4]); c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41); c42 = MulAdd(a4, b2, c42);
                var a5 = Vector128.Create(a[5]); c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51); c52 = MulAdd(a5, b2, c52);
                var a6 = Vector128.Create(a[6]); c60 = MulAdd(a6, b0, c60); c61 = MulAdd(a6, b1, c61); c62 = MulAdd(a6, b2, c62);
                var a7 = Vector128.Create(a[7]); c70 = MulAdd(a7, b0, c70); c71 = MulAdd(a7, b1, c71); c72 = MulAdd(a7, b2, c72);
                a += 8; b += ldb;
            }
            if (add)
            {
                Vector128.Store(Vector128.Load(c) + c00, c); Vector128.Store(Vector128.Load(c + w) + c01, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c02, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c10, c); Vector128.Store(Vector128.Load(c + w) + c11, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c12, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c20, c); Vector128.Store(Vector128.Load(c + w) + c21, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c22, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c30, c); Vector128.Store(Vector128.Load(c + w) + c31, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c32, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c40, c); Vector128.Store(Vector128.Load(c + w) + c41, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c42, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c50, c); Vector128.Store(Vector128.Load(c + w) + c51, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c52, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c60, c); Vector128.Store(Vector128.Load(c + w) + c61, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c62, c + 2 * w); c += ldc;
                Vector128.Store(Vector128.Load(c) + c70, c); Vector128.Store(Vector128.Load(c + w) + c71, c + w); Vector128.Store(Vector128.Load(c + 2 * w) + c72, c + 2 * w); c += ldc;
            }
            else
            {
                Vector128.Store(c00, c); Vector128.Store(c01, c + w); Vector128.Store(c02, c + 2 * w); c += ldc;
                Vector128.Store(c10, c); Vector128.Store(c11, c + w); Vector128.Store(c12, c + 2 * w); c += ldc;
                Vector128.Store(c20, c); Vector128.Store(c21, c + w); Vector128.Store(c22, c + 2 * w); c += ldc;
                Vector128.Store(c30, c); Vector128.Store(c31, c + w); Vector128.Store(c32, c + 2 * w); c += ldc;
                Vector128.Store(c40, c); Vector128.Store(c41, c + w); Vector128.Store(c42, c + 2 * w); c += ldc;
                Vector128.Store(c50, c); Vector128.Store(c51, c + w); Vector128.Store(c52, c + 2 * w); c += ldc;
                Vector128.Store(c60, c); Vector128.Store(c61, c + w); Vector128.Store(c62, c + 2 * w); c += ldc;
                Vector128.Store(c70, c); Vector128.Store(c71, c + w); Vector128.Store(c72, c + 2 * w); c += ldc;
            }
        }
    }

    /// <summary>Portable 4×4 fallback: 16 scalar accumulators fit any target's register file.</summary>
    internal readonly struct Scalar4x4<T> : IMicroKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static int MR => 4;
        public static int NR => 4;
        public static bool IsSupported => true;

        public static unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);
        public static unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);

        public static unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add)
        {
            T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero, c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero;
            T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero, c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero;
            for (int p = 0; p < kc; p++)
            {
                T b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
                T a0 = a[0]; c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                T a1 = a[1]; c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                T a2 = a[2]; c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                T a3 = a[3]; c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                a += 4; b += ldb;
            }
            Row(c, c00, c01, c02, c03, add); Row(c + ldc, c10, c11, c12, c13, add);
            Row(c + 2 * ldc, c20, c21, c22, c23, add); Row(c + 3 * ldc, c30, c31, c32, c33, add);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static unsafe void Row(T* c, T v0, T v1, T v2, T v3, bool add)
        {
            if (add) { c[0] += v0; c[1] += v1; c[2] += v2; c[3] += v3; }
            else { c[0] = v0; c[1] = v1; c[2] = v2; c[3] = v3; }
        }
    }

    /// <summary>8×2 Vector512 tile: 16 accumulators + 2 B vectors + 1 broadcast.</summary>
    internal readonly struct K512x8<T> : IMicroKernel<T> where T : unmanaged
    {
        public static int MR => 8;
        public static int NR => 2 * Vector512<T>.Count;
        public static bool IsSupported => Vector512.IsHardwareAccelerated;

        // A ragged last panel in 16- and 8-wide pieces (floats; 8 and 4 for doubles) instead of the whole 32: a Linear
        // layer of 100 outputs computed 128 columns (82 GFLOP/s against 105 for 96 or 128 outputs, Zen 4). Eight
        // accumulators are enough: Zen 4 retires one 512-bit (or two 256-bit) FMAs a cycle at 4 cycles' latency.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc)
        {
            int wide = Vector512<T>.Count, half = Vector256<T>.Count;
            if (typeof(T) != typeof(float) && typeof(T) != typeof(double) || ncols > wide + half) { Run(kc, a, b, ldb, c, ldc, false); return; }
            for (int j = 0; j < ncols;)
            {
                if (ncols - j > half) { Column512(kc, a, b + j, ldb, c + j, ldc); j += wide; }
                else { Column256(kc, a, b + j, ldb, c + j, ldc); j += half; }
            }
        }

        // A ragged last row panel of at most 4 rows in a 4-row tile (8 accumulators) instead of the whole 8: the input
        // gradient of a one-channel 5×5 convolution has 25 rows (8 + 8 + 8 + 1), a CIFAR two-layer net's weight gradient 100.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc)
        {
            if (rows > 4) { Run(kc, a, b, ldb, c, ldc, false); return; }
            nint w = Vector512<T>.Count;
            Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + w);
                var a0 = Vector512.Create(a[0]); c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
                var a1 = Vector512.Create(a[1]); c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
                var a2 = Vector512.Create(a[2]); c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
                var a3 = Vector512.Create(a[3]); c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
                a += 8; b += ldb;
            }
            Vector512.Store(c00, c); Vector512.Store(c01, c + w); c += ldc;
            Vector512.Store(c10, c); Vector512.Store(c11, c + w); c += ldc;
            Vector512.Store(c20, c); Vector512.Store(c21, c + w); c += ldc;
            Vector512.Store(c30, c); Vector512.Store(c31, c + w);
        }

        // C[8×w] = Σₚ a[p]ᵀ·b[p], one vector of B per step.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static unsafe void Column512(int kc, T* a, T* b, nint ldb, T* c, nint ldc)
        {
            Vector512<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b);
                c0 = MulAdd(Vector512.Create(a[0]), b0, c0); c1 = MulAdd(Vector512.Create(a[1]), b0, c1);
                c2 = MulAdd(Vector512.Create(a[2]), b0, c2); c3 = MulAdd(Vector512.Create(a[3]), b0, c3);
                c4 = MulAdd(Vector512.Create(a[4]), b0, c4); c5 = MulAdd(Vector512.Create(a[5]), b0, c5);
                c6 = MulAdd(Vector512.Create(a[6]), b0, c6); c7 = MulAdd(Vector512.Create(a[7]), b0, c7);
                a += 8; b += ldb;
            }
            Vector512.Store(c0, c); Vector512.Store(c1, c + ldc); Vector512.Store(c2, c + 2 * ldc); Vector512.Store(c3, c + 3 * ldc);
            Vector512.Store(c4, c + 4 * ldc); Vector512.Store(c5, c + 5 * ldc); Vector512.Store(c6, c + 6 * ldc); Vector512.Store(c7, c + 7 * ldc);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static unsafe void Column256(int kc, T* a, T* b, nint ldb, T* c, nint ldc)
        {
            Vector256<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector256.Load(b);
                c0 = MulAdd(Vector256.Create(a[0]), b0, c0); c1 = MulAdd(Vector256.Create(a[1]), b0, c1);
                c2 = MulAdd(Vector256.Create(a[2]), b0, c2); c3 = MulAdd(Vector256.Create(a[3]), b0, c3);
                c4 = MulAdd(Vector256.Create(a[4]), b0, c4); c5 = MulAdd(Vector256.Create(a[5]), b0, c5);
                c6 = MulAdd(Vector256.Create(a[6]), b0, c6); c7 = MulAdd(Vector256.Create(a[7]), b0, c7);
                a += 8; b += ldb;
            }
            Vector256.Store(c0, c); Vector256.Store(c1, c + ldc); Vector256.Store(c2, c + 2 * ldc); Vector256.Store(c3, c + 3 * ldc);
            Vector256.Store(c4, c + 4 * ldc); Vector256.Store(c5, c + 5 * ldc); Vector256.Store(c6, c + 6 * ldc); Vector256.Store(c7, c + 7 * ldc);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add)
        {
            nint w = Vector512<T>.Count;
            Vector512<T> c00 = default, c01 = default;
            Vector512<T> c10 = default, c11 = default;
            Vector512<T> c20 = default, c21 = default;
            Vector512<T> c30 = default, c31 = default;
            Vector512<T> c40 = default, c41 = default;
            Vector512<T> c50 = default, c51 = default;
            Vector512<T> c60 = default, c61 = default;
            Vector512<T> c70 = default, c71 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + w);
                var a0 = Vector512.Create(a[0]); c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
                var a1 = Vector512.Create(a[1]); c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
                var a2 = Vector512.Create(a[2]); c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
                var a3 = Vector512.Create(a[3]); c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
                var a4 = Vector512.Create(a[4]); c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41);
                var a5 = Vector512.Create(a[5]); c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51);
                var a6 = Vector512.Create(a[6]); c60 = MulAdd(a6, b0, c60); c61 = MulAdd(a6, b1, c61);
                var a7 = Vector512.Create(a[7]); c70 = MulAdd(a7, b0, c70); c71 = MulAdd(a7, b1, c71);
                a += 8; b += ldb;
            }
            if (add)
            {
                Vector512.Store(Vector512.Load(c) + c00, c); Vector512.Store(Vector512.Load(c + w) + c01, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c10, c); Vector512.Store(Vector512.Load(c + w) + c11, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c20, c); Vector512.Store(Vector512.Load(c + w) + c21, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c30, c); Vector512.Store(Vector512.Load(c + w) + c31, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c40, c); Vector512.Store(Vector512.Load(c + w) + c41, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c50, c); Vector512.Store(Vector512.Load(c + w) + c51, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c60, c); Vector512.Store(Vector512.Load(c + w) + c61, c + w); c += ldc;
                Vector512.Store(Vector512.Load(c) + c70, c); Vector512.Store(Vector512.Load(c + w) + c71, c + w); c += ldc;
            }
            else
            {
                Vector512.Store(c00, c); Vector512.Store(c01, c + w); c += ldc;
                Vector512.Store(c10, c); Vector512.Store(c11, c + w); c += ldc;
                Vector512.Store(c20, c); Vector512.Store(c21, c + w); c += ldc;
                Vector512.Store(c30, c); Vector512.Store(c31, c + w); c += ldc;
                Vector512.Store(c40, c); Vector512.Store(c41, c + w); c += ldc;
                Vector512.Store(c50, c); Vector512.Store(c51, c + w); c += ldc;
                Vector512.Store(c60, c); Vector512.Store(c61, c + w); c += ldc;
                Vector512.Store(c70, c); Vector512.Store(c71, c + w); c += ldc;
            }
        }
    }

    /// <summary>6×2 Vector256 tile: 12 accumulators + 2 B vectors + 1 broadcast.</summary>
    internal readonly struct K256x6<T> : IMicroKernel<T> where T : unmanaged
    {
        public static int MR => 6;
        public static int NR => 2 * Vector256<T>.Count;
        public static bool IsSupported => Vector256.IsHardwareAccelerated && Fma.IsSupported;

        public static unsafe void RunNarrow(int ncols, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);
        public static unsafe void RunShort(int rows, int kc, T* a, T* b, nint ldb, T* c, nint ldc) => Run(kc, a, b, ldb, c, ldc, false);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static unsafe void Run(int kc, T* a, T* b, nint ldb, T* c, nint ldc, bool add)
        {
            nint w = Vector256<T>.Count;
            Vector256<T> c00 = default, c01 = default;
            Vector256<T> c10 = default, c11 = default;
            Vector256<T> c20 = default, c21 = default;
            Vector256<T> c30 = default, c31 = default;
            Vector256<T> c40 = default, c41 = default;
            Vector256<T> c50 = default, c51 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + w);
                var a0 = Vector256.Create(a[0]); c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
                var a1 = Vector256.Create(a[1]); c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
                var a2 = Vector256.Create(a[2]); c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
                var a3 = Vector256.Create(a[3]); c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
                var a4 = Vector256.Create(a[4]); c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41);
                var a5 = Vector256.Create(a[5]); c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51);
                a += 6; b += ldb;
            }
            if (add)
            {
                Vector256.Store(Vector256.Load(c) + c00, c); Vector256.Store(Vector256.Load(c + w) + c01, c + w); c += ldc;
                Vector256.Store(Vector256.Load(c) + c10, c); Vector256.Store(Vector256.Load(c + w) + c11, c + w); c += ldc;
                Vector256.Store(Vector256.Load(c) + c20, c); Vector256.Store(Vector256.Load(c + w) + c21, c + w); c += ldc;
                Vector256.Store(Vector256.Load(c) + c30, c); Vector256.Store(Vector256.Load(c + w) + c31, c + w); c += ldc;
                Vector256.Store(Vector256.Load(c) + c40, c); Vector256.Store(Vector256.Load(c + w) + c41, c + w); c += ldc;
                Vector256.Store(Vector256.Load(c) + c50, c); Vector256.Store(Vector256.Load(c + w) + c51, c + w); c += ldc;
            }
            else
            {
                Vector256.Store(c00, c); Vector256.Store(c01, c + w); c += ldc;
                Vector256.Store(c10, c); Vector256.Store(c11, c + w); c += ldc;
                Vector256.Store(c20, c); Vector256.Store(c21, c + w); c += ldc;
                Vector256.Store(c30, c); Vector256.Store(c31, c + w); c += ldc;
                Vector256.Store(c40, c); Vector256.Store(c41, c + w); c += ldc;
                Vector256.Store(c50, c); Vector256.Store(c51, c + w); c += ldc;
            }
        }
    }
}
