namespace Backprop.Kernels;

// Packing copies a KC-deep slice of an operand into the order the microkernel reads it: A as MR-tall
// micro-panels (for each k, MR consecutive rows), B as NR-wide micro-panels (for each k, NR consecutive
// columns). Ragged panels are zero-padded so the kernel always runs full tiles. A transposed operand is
// packed by the same loops with the roles of its strides swapped, so AᵀB and ABᵀ cost no extra pass.
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
                // op(A)[i, q] = A[i, q]: read each row contiguously, scatter it down the panel
                for (int r = 0; r < rows; r++) Scatter(p.A + (i0 + ir + r) * p.Lda + p0, dst + r, kc, mr);
                for (int r = rows; r < mr; r++) Fill(dst + r, kc, mr);
            }
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into ⌈nc/nr⌉ micro-panels of kc×nr at <paramref name="dst"/>.</summary>
    static void PackB<T>(in Problem<T> p, int p0, int kc, int j0, int nc, int nr, T* dst) where T : unmanaged
    {
        for (int jr = 0; jr < nc; jr += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - jr);
            if (!p.TransB)
            {
                T* src = p.B + p0 * p.Ldb + j0 + jr;
                for (int q = 0; q < kc; q++, src += p.Ldb) CopyPadded(src, dst + q * nr, cols, nr);
            }
            else
            {
                // op(B)[q, j] = B[j, q]: each column of op(B) is a contiguous row of B
                for (int c = 0; c < cols; c++) Scatter(p.B + (j0 + jr + c) * p.Ldb + p0, dst + c, kc, nr);
                for (int c = cols; c < nr; c++) Fill(dst + c, kc, nr);
            }
        }
    }

    static void CopyPadded<T>(T* src, T* dst, int count, int width) where T : unmanaged
    {
        new ReadOnlySpan<T>(src, count).CopyTo(new Span<T>(dst, count));
        if (count < width) new Span<T>(dst + count, width - count).Clear();
    }

    /// <summary>dst[q·stride] = src[q] for q &lt; count.</summary>
    static void Scatter<T>(T* src, T* dst, int count, int stride) where T : unmanaged
    {
        for (int q = 0; q < count; q++, dst += stride) *dst = src[q];
    }

    static void Fill<T>(T* dst, int count, int stride) where T : unmanaged
    {
        for (int q = 0; q < count; q++, dst += stride) *dst = default;
    }
}
