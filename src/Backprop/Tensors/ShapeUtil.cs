namespace Backprop;

/// <summary>Shape arithmetic shared by every op: counts, formatting, axes and broadcasting.</summary>
internal static class ShapeUtil
{
    public static int Count(ReadOnlySpan<int> shape, string op)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"{op}: negative dimension in shape {Format(shape)}");
            n *= d;
            if (n > Array.MaxLength) throw new ArgumentException($"{op}: shape {Format(shape)} has more than {Array.MaxLength} elements");
        }
        return (int)n;
    }

    // The last few 1-D and 2-D shapes made on this thread: a shape array is never written once a tensor holds it, so
    // op outputs of a recurring shape (every step's activations) share one instead of allocating it per step.
    [ThreadStatic] static int[][]? recent;
    [ThreadStatic] static int next;

    public static int[] Of(int n) => Recent(1, n, 0);

    public static int[] Of(int m, int n) => Recent(2, m, n);

    static int[] Recent(int rank, int a, int b)
    {
        var cache = recent ??= new int[16][];
        foreach (var s in cache)
            if (s is not null && s.Length == rank && s[0] == a && (rank == 1 || s[1] == b)) return s;
        var r = rank == 1 ? new[] { a } : new[] { a, b };
        cache[next++ & 15] = r;
        return r;
    }

    public static string Format(ReadOnlySpan<int> shape) => "(" + string.Join(",", shape.ToArray()) + ")";

    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>Normalises a possibly negative axis.</summary>
    public static int Axis(int axis, int rank, string op)
    {
        int a = axis < 0 ? axis + rank : axis;
        if ((uint)a >= (uint)Math.Max(rank, 1) || (rank == 0 && axis != 0 && axis != -1))
            throw new ArgumentOutOfRangeException(nameof(axis), $"{op}: axis {axis} is out of range for a tensor of rank {rank}");
        return a;
    }

    /// <summary>NumPy broadcasting: align trailing dimensions; each pair must be equal or contain a 1.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 1; i <= rank; i++)
        {
            int da = i <= a.Length ? a[^i] : 1, db = i <= b.Length ? b[^i] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast: dimension {da} vs {db}");
            r[^i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides of <paramref name="shape"/> viewed inside the broadcast shape <paramref name="target"/> (0 on broadcast axes).</summary>
    public static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> target)
    {
        var strides = new int[target.Length];
        int s = 1;
        for (int i = 1; i <= target.Length; i++)
        {
            int d = i <= shape.Length ? shape[^i] : 1;
            strides[^i] = d == 1 ? 0 : s;
            s *= d;
        }
        return strides;
    }

    /// <summary>Splits a shape around an axis into (outer, n, inner) so the axis can be walked with unit-stride rows.</summary>
    public static (int Outer, int N, int Inner) Around(ReadOnlySpan<int> shape, int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[axis], inner);
    }

    /// <summary>Row-major strides of a contiguous tensor of this shape.</summary>
    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        for (int i = shape.Length - 1, st = 1; i >= 0; i--) { s[i] = st; st *= Math.Max(shape[i], 1); }
        return s;
    }

    /// <summary>Whether a layout is row-major without gaps (dimensions of size 1 may have any stride, as in PyTorch).</summary>
    public static bool IsContiguous(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        int expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 0) return true;
            if (shape[i] == 1) continue;
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /// <summary>
    /// Strides that let a tensor of <paramref name="shape"/>/<paramref name="strides"/> be seen as <paramref name="newShape"/>
    /// without copying, or null when no such strides exist (PyTorch's computeStride): each run of old dimensions
    /// that is contiguous within itself can be split or merged freely.
    /// </summary>
    public static int[]? ViewStrides(int[] shape, int[] strides, int[] newShape)
    {
        long numel = 1;
        foreach (int d in shape) numel *= d;
        if (numel <= 1 || shape.Length == 0) return ContiguousStrides(newShape);
        var result = new int[newShape.Length];
        int viewD = newShape.Length - 1;
        long chunkBase = strides[^1], tensorNumel = 1, viewNumel = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            tensorNumel *= shape[d];
            if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorNumel * chunkBase))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1))
                {
                    result[viewD] = (int)(viewNumel * chunkBase);
                    viewNumel *= newShape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0) { chunkBase = strides[d - 1]; tensorNumel = 1; viewNumel = 1; }
            }
        }
        return viewD == -1 ? result : null;
    }
}
