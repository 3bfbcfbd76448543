using System.Runtime.CompilerServices;

namespace Backprop.Kernels;

/// <summary>
/// Copies between layouts: the one kernel that understands strides. Every other kernel reads contiguous spans,
/// and an op hands it a strided view only after one pass here (<see cref="Tensor.Dense"/>) — one copy where the
/// data is not in row-major order, none where it is.
/// </summary>
internal static class Strided
{
    const long ParallelCopyBytes = 1 << 20;

    /// <summary>dst[i] = src[i] for every multi-index i (same shape and dtype; any strides, stride 0 included).</summary>
    public static void Copy(Tensor src, Tensor dst)
    {
        if (!ShapeUtil.Equal(src.shape, dst.shape) || src.DType != dst.DType)
            throw new ArgumentException($"copy: {ShapeUtil.Format(src.shape)} {src.DType} into {ShapeUtil.Format(dst.shape)} {dst.DType}");
        if (src.Length == 0) return;
        if (src.DType == DType.Float32) Copy(Unsafe.As<float[]>(src.storage.Data), src, Unsafe.As<float[]>(dst.storage.Data), dst);
        else Copy(Unsafe.As<double[]>(src.storage.Data), src, Unsafe.As<double[]>(dst.storage.Data), dst);
    }

    // Its own method: the lambda's captures would otherwise be allocated on every call of Copy, small ones included.
    static void CopyInPieces<T>(T[] s, int so, T[] d, int dof, int n, int threads) where T : unmanaged =>
        Workers.ForRanges(n, 4 * threads, threads, (start, length) => s.AsSpan(so + start, length).CopyTo(d.AsSpan(dof + start, length)));

    static void Copy<T>(T[] s, Tensor src, T[] d, Tensor dst) where T : unmanaged
    {
        if (src.IsContiguous && dst.IsContiguous)
        {
            int n = src.Length, so = src.offset, dof = dst.offset;
            // A large copy between two arrays in pieces on both cores (memory-bound: 6.4 MB in ~0.4 ms on one Zen 4
            // core); within one array the pieces could overlap, so memmove keeps it.
            long bytes = (long)n * Unsafe.SizeOf<T>();
            int threads = bytes >= ParallelCopyBytes && !ReferenceEquals(s, d) ? Workers.ThreadsFor(bytes / (ParallelCopyBytes / 2)) : 1;
            if (threads <= 1) s.AsSpan(so, n).CopyTo(d.AsSpan(dof, n));
            else CopyInPieces(s, so, d, dof, n, threads);
            return;
        }
        int rank = src.Rank;
        if (rank == 0) { d[dst.offset] = s[src.offset]; return; }
        int inner = src.shape[rank - 1], ss = src.strides[rank - 1], ds = dst.strides[rank - 1];
        Span<int> index = rank <= 16 ? stackalloc int[rank] : new int[rank];
        index.Clear();
        int si = src.offset, di = dst.offset;
        for (int row = 0; row < src.Length; row += inner)
        {
            if (ss == 1 && ds == 1) s.AsSpan(si, inner).CopyTo(d.AsSpan(di, inner));
            else if (ss == 0 && ds == 1) d.AsSpan(di, inner).Fill(s[si]);   // an expanded row: one value repeated
            else for (int j = 0, a = si, b = di; j < inner; j++, a += ss, b += ds) d[b] = s[a];
            for (int dim = rank - 2; dim >= 0; dim--)
            {
                index[dim]++; si += src.strides[dim]; di += dst.strides[dim];
                if (index[dim] < src.shape[dim]) break;
                si -= src.strides[dim] * src.shape[dim]; di -= dst.strides[dim] * dst.shape[dim]; index[dim] = 0;
            }
        }
    }
}
