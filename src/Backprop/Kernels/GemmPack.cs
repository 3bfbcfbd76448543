using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Kernels;

// Packing copies a KC-deep slice of an operand into the order the microkernel reads it: A as MR-tall
// micro-panels (for each k, MR consecutive rows), B as NR-wide micro-panels (for each k, NR consecutive
// columns). Ragged panels are zero-padded so the kernel always runs full tiles. Each operand is read in place
// in whichever storage it has: one layout packs by contiguous copies, the other by a block transpose, so AᵀB
// and ABᵀ cost no extra pass and no transposed copy.
internal static unsafe partial class Gemm
{
    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc] into ⌈mc/mr⌉ micro-panels of mr×kc at <paramref name="dst"/>.</summary>
    static void PackA<T>(in Problem<T> p, int i0, int mc, int p0, int kc, int mr, T* dst) where T : unmanaged
    {
        for (int ir = 0; ir < mc; ir += mr, dst += mr * kc)
        {
            int rows = Math.Min(mr, mc - ir);
            if (p.TransA)
            {
                // op(A)[i, q] = A[q, i]: each k step is a contiguous run of rows
                T* src = p.A + p0 * p.Lda + i0 + ir;
                for (int q = 0; q < kc; q++, src += p.Lda) CopyPadded(src, dst + q * mr, rows, mr);
            }
            else
            {
                // op(A)[i, q] = A[i, q]: rows of A become columns of the panel, a transpose
                if (rows < mr) new Span<T>(dst, mr * kc).Clear();   // one memset beats a strided zero fill
                Transpose(p.A + (i0 + ir) * p.Lda + p0, p.Lda, dst, mr, rows, kc);
            }
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into ⌈nc/nr⌉ micro-panels of kc×nr at <paramref name="dst"/>.</summary>
    static void PackB<T>(in Problem<T> p, int p0, int kc, int j0, int nc, int nr, T* dst) where T : unmanaged
    {
        if (!p.TransB)
        {
            // Row by row, each row's nc values read front to back and dealt out to the panels, the row after next
            // prefetched: a panel at a time read a strip of two cache lines down kc rows, which the prefetchers do not
            // follow. A B streaming from memory (128×1024·1024×3136, 12.8 MB; 18% of its time went to packing) ran at
            // 85 GFLOP/s on one Zen 4 core, 90 read by rows, 101 with the prefetch.
            T* row = p.B + p0 * p.Ldb + j0;
            nint ahead = 2 * p.Ldb, lineValues = 64 / sizeof(T);
            for (int q = 0; q < kc; q++, row += p.Ldb)
            {
                if (Sse.IsSupported && q + 2 < kc)
                    for (nint j = 0; j < nc; j += lineValues) Sse.Prefetch0(row + ahead + j);
                for (int jr = 0; jr < nc; jr += nr) CopyPadded(row + jr, dst + jr * kc + q * nr, Math.Min(nr, nc - jr), nr);
            }
            return;
        }
        // op(B)[q, j] = B[j, q]: rows of B become columns of the panel, a transpose
        for (int jr = 0; jr < nc; jr += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - jr);
            if (cols < nr) new Span<T>(dst, nr * kc).Clear();
            Transpose(p.B + (j0 + jr) * p.Ldb + p0, p.Ldb, dst, nr, cols, kc);
        }
    }

    static void CopyPadded<T>(T* src, T* dst, int count, int width) where T : unmanaged
    {
        ShortSpans.Copy(new ReadOnlySpan<T>(src, count), new Span<T>(dst, count));
        if (count < width) ShortSpans.Clear(new Span<T>(dst + count, width - count));
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for r &lt; rows, q &lt; cols.</summary>
    /// <remarks>
    /// In square register-wide blocks (AVX: 8×8 floats, 4×4 doubles; SSE: 4×4, 2×2) where possible: a scalar scatter
    /// costs a load and a store per element and dominated small products such as (16×784)·(50×784)ᵀ.
    /// </remarks>
    static void Transpose<T>(T* src, nint lds, T* dst, nint ldd, int rows, int cols) where T : unmanaged
    {
        int r = 0;
        // Square blocks of one register's width: 32 bytes with AVX, else 16 with SSE (an SSE-only x64, NativeAOT's baseline).
        int l = typeof(T) != typeof(float) && typeof(T) != typeof(double) ? 0
            : Avx.IsSupported ? Vector256<T>.Count : Sse2.IsSupported ? Vector128<T>.Count : 0;
        if (l > 0)
            for (; r + l <= rows; r += l)
            {
                int q = 0;
                for (; q + l <= cols; q += l) TransposeBlock(src + r * lds + q, lds, dst + q * ldd + r, ldd);
                for (int i = r; i < r + l; i++)
                    for (int j = q; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
            }
        for (; r < rows; r++)
        {
            T* s = src + r * lds, d = dst + r;
            for (int q = 0; q < cols; q++, d += ldd) *d = s[q];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose4x4(float* s, nint lds, float* d, nint ldd)
    {
        Vector128<float> r0 = Sse.LoadVector128(s), r1 = Sse.LoadVector128(s + lds), r2 = Sse.LoadVector128(s + 2 * lds), r3 = Sse.LoadVector128(s + 3 * lds);
        // _MM_TRANSPOSE4_PS: interleave pairs of rows, then take the low and high halves of each pair of pairs
        Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackHigh(r0, r1), t2 = Sse.UnpackLow(r2, r3), t3 = Sse.UnpackHigh(r2, r3);
        Sse.Store(d, Sse.MoveLowToHigh(t0, t2));
        Sse.Store(d + ldd, Sse.MoveHighToLow(t2, t0));
        Sse.Store(d + 2 * ldd, Sse.MoveLowToHigh(t1, t3));
        Sse.Store(d + 3 * ldd, Sse.MoveHighToLow(t3, t1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose2x2(double* s, nint lds, double* d, nint ldd)
    {
        Vector128<double> r0 = Sse2.LoadVector128(s), r1 = Sse2.LoadVector128(s + lds);
        Sse2.Store(d, Sse2.UnpackLow(r0, r1));
        Sse2.Store(d + ldd, Sse2.UnpackHigh(r0, r1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void TransposeBlock<T>(T* s, nint lds, T* d, nint ldd) where T : unmanaged
    {
        if (Avx.IsSupported)
        {
            if (typeof(T) == typeof(float)) Transpose8x8((float*)s, lds, (float*)d, ldd);
            else Transpose4x4((double*)s, lds, (double*)d, ldd);
        }
        else if (typeof(T) == typeof(float)) Transpose4x4((float*)s, lds, (float*)d, ldd);
        else Transpose2x2((double*)s, lds, (double*)d, ldd);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(float* s, nint lds, float* d, nint ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + lds), r2 = Avx.LoadVector256(s + 2 * lds),
            r3 = Avx.LoadVector256(s + 3 * lds), r4 = Avx.LoadVector256(s + 4 * lds), r5 = Avx.LoadVector256(s + 5 * lds),
            r6 = Avx.LoadVector256(s + 6 * lds), r7 = Avx.LoadVector256(s + 7 * lds);
        // interleave pairs of rows, then pairs of pairs within each 128-bit lane, then swap lanes
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose4x4(double* s, nint lds, double* d, nint ldd)
    {
        Vector256<double> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + lds), r2 = Avx.LoadVector256(s + 2 * lds), r3 = Avx.LoadVector256(s + 3 * lds);
        Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Avx.Store(d, Avx.Permute2x128(t0, t2, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(t1, t3, 0x20));
        Avx.Store(d + 2 * ldd, Avx.Permute2x128(t0, t2, 0x31));
        Avx.Store(d + 3 * ldd, Avx.Permute2x128(t1, t3, 0x31));
    }
}
