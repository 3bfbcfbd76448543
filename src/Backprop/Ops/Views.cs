namespace Backprop;

/// <summary>
/// View ops: a new layout (shape, strides, offset) over the same storage, no copy — as PyTorch's views. Writes
/// through one view are seen by the others. Each gradient is the inverse re-layout of g (a reshape, a transpose, or g
/// placed into zeros at the viewed positions); expand's is undone by the engine's broadcast reduction.
/// </summary>
public static partial class Ops
{
    static Tensor AsView(Tensor x, int[] shape, int[] strides, int offset) => new(x.storage, shape, strides, offset);

    static Tensor Recorded(Tensor y, Tensor x, Function op) => op.Attach(y, x);

    // view, reshape, squeeze, unsqueeze, flatten: the same elements under another shape;  ∂ = g reshaped back
    internal sealed class ReshapeOp(string name, int[] inputShape) : Function
    {
        public override string Name => name;
        public override IEnumerable<(string, object)> Attributes => [("shape", inputShape)];
        protected override Tensor?[] Backward(Tensor g) => [g.Reshape(inputShape)];
    }

    // Swaps two dimensions;  ∂ = the same swap of g
    internal sealed class TransposeOp(int dim0, int dim1) : Function
    {
        public override string Name => "transpose";
        public override IEnumerable<(string, object)> Attributes => [("dim0", dim0), ("dim1", dim1)];
        protected override Tensor?[] Backward(Tensor g) => [g.Transpose(dim0, dim1)];
    }

    // Reorders dimensions;  ∂ = g permuted by the inverse order
    internal sealed class PermuteOp(int[] dims, int[] inverse) : Function
    {
        public override string Name => "permute";
        public override IEnumerable<(string, object)> Attributes => [("dims", dims)];
        protected override Tensor?[] Backward(Tensor g) => [g.Permute(inverse)];
    }

    // Elements start, start + step, … (length of them) along dim;  ∂ = g placed into zeros at those positions
    internal sealed class SliceOp(string name, int[] inputShape, int dim, int start, int length, int step) : Function
    {
        public override string Name => name;
        public override IEnumerable<(string, object)> Attributes => [("dim", dim), ("start", start), ("length", length), ("step", step)];
        protected override Tensor?[] Backward(Tensor g) =>
            [Scatter(inputShape, g, dx => dx.Slice(dim, start, start + length * step, step))];
    }

    // The index-th element along dim;  ∂ = g placed into zeros at that index
    internal sealed class SelectOp(int[] inputShape, int dim, int index) : Function
    {
        public override string Name => "select";
        public override IEnumerable<(string, object)> Attributes => [("dim", dim), ("index", index)];
        protected override Tensor?[] Backward(Tensor g) => [Scatter(inputShape, g, dx => dx.Select(dim, index))];
    }

    // Broadcast without copying;  ∂ = g summed over the broadcast dims (the engine's SumTo does it)
    internal sealed class ExpandOp(int[] shape) : Function
    {
        public override string Name => "expand";
        public override IEnumerable<(string, object)> Attributes => [("shape", shape)];
        protected override Tensor?[] Backward(Tensor g) => [g];
    }

    // contiguous, clone: the same values in new memory;  ∂ = g
    internal sealed class CopyOp(string name) : Function
    {
        public override string Name => name;
        protected override Tensor?[] Backward(Tensor g) => [g];
    }

    // Same elements, new shape, shared memory (one dimension may be −1); the layout must allow it;  ∂ = g viewed back
    public static Tensor View(this Tensor x, params int[] shape)
    {
        var s = InferShape(x, shape, "view");
        var strides = ShapeUtil.ViewStrides(x.shape, x.strides, s)
            ?? throw new InvalidOperationException($"view: shape {ShapeUtil.Format(s)} is not compatible with the layout of a {ShapeUtil.Format(x.shape)} tensor with strides {ShapeUtil.Format(x.strides)}; use Reshape, which copies when it must");
        var y = AsView(x, s, strides, x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new ReshapeOp("view", x.shape)) : y;
    }

    /// <summary>Same elements, new shape: a view when the layout allows (as <see cref="View"/>), else a contiguous copy.</summary>
    public static Tensor Reshape(this Tensor x, params int[] shape)
    {
        var s = InferShape(x, shape, "reshape");
        if (ShapeUtil.ViewStrides(x.shape, x.strides, s) is int[] strides)
        {
            var y = AsView(x, s, strides, x.offset);
            return Autograd.Recording(x) ? Recorded(y, x, new ReshapeOp("reshape", x.shape)) : y;
        }
        return x.Contiguous().View(s);
    }

    static int[] InferShape(Tensor x, int[] shape, string op)
    {
        var s = (int[])shape.Clone();
        int infer = Array.IndexOf(s, -1);
        if (infer >= 0)
        {
            if (Array.IndexOf(s, -1, infer + 1) >= 0) throw new ArgumentException($"{op}: only one dimension can be -1, got {ShapeUtil.Format(shape)}");
            long known = 1;
            for (int i = 0; i < s.Length; i++) if (i != infer) known *= s[i];
            if (known == 0 || x.Length % known != 0)
                throw new ArgumentException($"{op}: cannot reshape {ShapeUtil.Format(x.shape)} into {ShapeUtil.Format(shape)}");
            s[infer] = (int)(x.Length / known);
        }
        foreach (int d in s) if (d < 0) throw new ArgumentException($"{op}: invalid dimension {d} in {ShapeUtil.Format(shape)}");
        if (ShapeUtil.Count(s, op) != x.Length)
            throw new ArgumentException($"{op}: cannot reshape {ShapeUtil.Format(x.shape)} ({x.Length} elements) into {ShapeUtil.Format(shape)}");
        return s;
    }

    /// <summary>Dimensions <paramref name="startDim"/>..<paramref name="endDim"/> merged into one (default: keep the batch dimension, as nn.Flatten).</summary>
    public static Tensor Flatten(this Tensor x, int startDim = 1, int endDim = -1)
    {
        if (x.Rank == 0) return x.Reshape(1);
        int a = ShapeUtil.Axis(startDim, x.Rank, "flatten"), b = ShapeUtil.Axis(endDim, x.Rank, "flatten");
        if (a > b) throw new ArgumentException($"flatten: start dim {startDim} comes after end dim {endDim}");
        var s = new List<int>();
        for (int i = 0; i < a; i++) s.Add(x.shape[i]);
        int merged = 1;
        for (int i = a; i <= b; i++) merged *= x.shape[i];
        s.Add(merged);
        for (int i = b + 1; i < x.Rank; i++) s.Add(x.shape[i]);
        return x.Reshape([.. s]);
    }

    /// <summary>Dimension <paramref name="dim"/> split into <paramref name="sizes"/> (one may be −1), as nn.Unflatten.</summary>
    public static Tensor Unflatten(this Tensor x, int dim, params int[] sizes)
    {
        int d = ShapeUtil.Axis(dim, x.Rank, "unflatten");
        var s = (int[])sizes.Clone();
        int infer = Array.IndexOf(s, -1);
        long known = 1;
        for (int i = 0; i < s.Length; i++) if (i != infer) known *= s[i];
        if (infer >= 0 && known > 0 && x.shape[d] % known == 0) s[infer] = (int)(x.shape[d] / known);
        long product = 1;
        foreach (int v in s) product *= v;
        if (product != x.shape[d] || Array.Exists(s, v => v < 0))
            throw new ArgumentException($"unflatten: sizes ({string.Join(",", sizes)}) do not multiply to dimension {d} of {ShapeUtil.Format(x.shape)}");
        return x.Reshape([.. x.shape[..d], .. s, .. x.shape[(d + 1)..]]);
    }

    // Swaps two dimensions (a view);  ∂ = the same swap of g
    public static Tensor Transpose(this Tensor x, int dim0 = 0, int dim1 = 1)
    {
        int a = ShapeUtil.Axis(dim0, x.Rank, "transpose"), b = ShapeUtil.Axis(dim1, x.Rank, "transpose");
        var s = (int[])x.shape.Clone(); var st = (int[])x.strides.Clone();
        (s[a], s[b]) = (s[b], s[a]);
        (st[a], st[b]) = (st[b], st[a]);
        var y = AsView(x, s, st, x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new TransposeOp(a, b)) : y;
    }

    /// <summary>The transpose of a 2-D tensor (PyTorch's <c>.T</c>); a 0-D or 1-D tensor is returned as is.</summary>
    public static Tensor T(this Tensor x)
    {
        if (x.Rank > 2) throw new ArgumentException($"T: expects at most 2 dimensions, got shape {ShapeUtil.Format(x.shape)}; use Permute or Transpose");
        return x.Rank < 2 ? x : x.Transpose(0, 1);
    }

    // Reorders the dimensions: result dim i is x's dim dims[i] (a view);  ∂ = g permuted by the inverse
    public static Tensor Permute(this Tensor x, params int[] dims)
    {
        if (dims.Length != x.Rank) throw new ArgumentException($"permute: {dims.Length} dims for a tensor of rank {x.Rank}");
        var seen = new bool[x.Rank];
        var inverse = new int[x.Rank];
        var s = new int[x.Rank]; var st = new int[x.Rank];
        for (int i = 0; i < dims.Length; i++)
        {
            int d = ShapeUtil.Axis(dims[i], x.Rank, "permute");
            if (seen[d]) throw new ArgumentException($"permute: dimension {d} repeated in ({string.Join(",", dims)})");
            seen[d] = true;
            s[i] = x.shape[d]; st[i] = x.strides[d]; inverse[d] = i;
        }
        var y = AsView(x, s, st, x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new PermuteOp(dims, inverse)) : y;
    }

    // Elements start..start+length−1 along dim (a view);  ∂ = g placed into zeros at those positions
    public static Tensor Narrow(this Tensor x, int dim, int start, int length)
    {
        int d = ShapeUtil.Axis(dim, x.Rank, "narrow");
        if (start < 0) start += x.shape[d];
        if (start < 0 || length < 0 || (long)start + length > x.shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow: [{start}, {(long)start + length}) is outside dimension {d} of shape {ShapeUtil.Format(x.shape)}");
        return SliceView(x, d, start, length, 1, "narrow");
    }

    /// <summary>Python's x[..., start:end:step, ...] along <paramref name="dim"/> (a view); bounds clamp and may be negative, as in PyTorch.</summary>
    public static Tensor Slice(this Tensor x, int dim, int start, int end, int step = 1)
    {
        int d = ShapeUtil.Axis(dim, x.Rank, "slice");
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), step, "slice: step must be positive");
        int n = x.shape[d];
        if (start < 0) start += n;
        if (end < 0) end += n;
        start = Math.Clamp(start, 0, n); end = Math.Clamp(end, start, n);
        return SliceView(x, d, start, (end - start + step - 1) / step, step, "slice");
    }

    /// <summary>x[.., range, ..] along <paramref name="dim"/> (a view), e.g. <c>x.Slice(1, 2..^1)</c>.</summary>
    public static Tensor Slice(this Tensor x, int dim, Range range)
    {
        int n = x.Size(dim);
        var (start, length) = range.GetOffsetAndLength(n);
        return x.Narrow(dim, start, length);
    }

    static Tensor SliceView(Tensor x, int d, int start, int length, int step, string name)
    {
        var s = (int[])x.shape.Clone(); var st = (int[])x.strides.Clone();
        s[d] = length; st[d] = x.strides[d] * step;
        var y = AsView(x, s, st, x.offset + start * x.strides[d]);
        return Autograd.Recording(x) ? Recorded(y, x, new SliceOp(name, x.shape, d, start, length, step)) : y;
    }

    // The index-th element along dim, which disappears (a view);  ∂ = g placed into zeros at that index
    public static Tensor Select(this Tensor x, int dim, int index)
    {
        int d = ShapeUtil.Axis(dim, x.Rank, "select");
        int i = index < 0 ? index + x.shape[d] : index;
        if ((uint)i >= (uint)x.shape[d]) throw new IndexOutOfRangeException($"select: index {index} is out of range for dimension {d} of shape {ShapeUtil.Format(x.shape)}");
        int[] s = [.. x.shape[..d], .. x.shape[(d + 1)..]], st = [.. x.strides[..d], .. x.strides[(d + 1)..]];
        var y = AsView(x, s, st, x.offset + i * x.strides[d]);
        return Autograd.Recording(x) ? Recorded(y, x, new SelectOp(x.shape, d, i)) : y;
    }

    /// <summary>Rows [start, start + count) along dimension 0 (a view; e.g. a minibatch).</summary>
    public static Tensor SliceRows(this Tensor x, int start, int count)
    {
        if (x.Rank == 0 || start < 0 || count < 0 || (long)start + count > x.shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice: rows [{start}, {(long)start + count}) are outside dimension 0 of shape {ShapeUtil.Format(x.shape)}");
        return x.Narrow(0, start, count);
    }

    /// <summary>Zeros of <paramref name="shape"/> with <paramref name="g"/> written into the positions <paramref name="region"/> views.</summary>
    static Tensor Scatter(int[] shape, Tensor g, Func<Tensor, Tensor> region)
    {
        var dx = Tensor.Zeros(shape, g.DType);
        Backends.Backend.Current.Copy(g, region(dx));
        return dx;
    }

    /// <summary>Broadcasts to <paramref name="shape"/> without copying (a view; −1 keeps a dimension's size).</summary>
    public static Tensor Expand(this Tensor x, params int[] shape) => ExpandView(x, shape);

    // Broadcast to a larger shape without copying: size-1 and new leading dims get stride 0 (−1 keeps a size);
    //   ∂ = g summed over the broadcast dims (by the engine's SumTo)
    static Tensor ExpandView(Tensor x, int[] shape)
    {
        int lead = shape.Length - x.Rank;
        if (lead < 0) throw new ArgumentException($"expand: cannot expand {ShapeUtil.Format(x.shape)} to fewer dimensions {ShapeUtil.Format(shape)}");
        var s = new int[shape.Length]; var st = new int[shape.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            int own = i < lead ? -2 : x.shape[i - lead];
            int want = shape[i] == -1 && own >= 0 ? own : shape[i];
            if (want < 0) throw new ArgumentException($"expand: invalid size {shape[i]} at dimension {i} of {ShapeUtil.Format(shape)}");
            if (own == want) { s[i] = want; st[i] = x.strides[i - lead]; continue; }
            if (own != -2 && own != 1)
                throw new ArgumentException($"expand: dimension {i - lead} of {ShapeUtil.Format(x.shape)} has size {own}, which cannot expand to {want} (only size-1 dimensions can)");
            s[i] = want; st[i] = 0;
        }
        if (ShapeUtil.Equal(s, x.shape)) return x;
        var y = AsView(x, s, st, x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new ExpandOp(s)) : y;
    }

    /// <summary>Expands to <paramref name="other"/>'s shape.</summary>
    public static Tensor ExpandAs(this Tensor x, Tensor other) => ExpandView(x, other.shape);

    // Removes size-1 dimensions (all, or just dim if it has size 1);  ∂ = g reshaped back
    public static Tensor Squeeze(this Tensor x, int? dim = null)
    {
        int? d = dim is int v ? ShapeUtil.Axis(v, x.Rank, "squeeze") : null;
        var s = new List<int>(); var st = new List<int>();
        for (int i = 0; i < x.Rank; i++)
            if (x.shape[i] != 1 || (d is int k && k != i)) { s.Add(x.shape[i]); st.Add(x.strides[i]); }
        if (s.Count == x.Rank) return x;
        var y = AsView(x, [.. s], [.. st], x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new ReshapeOp("squeeze", x.shape)) : y;
    }

    // Inserts a size-1 dimension at dim (−1: last);  ∂ = g reshaped back
    public static Tensor Unsqueeze(this Tensor x, int dim)
    {
        int d = dim < 0 ? dim + x.Rank + 1 : dim;
        if ((uint)d > (uint)x.Rank) throw new ArgumentOutOfRangeException(nameof(dim), $"unsqueeze: dimension {dim} is out of range for a tensor of rank {x.Rank}");
        int inner = d < x.Rank ? x.strides[d] * x.shape[d] : 1;
        int[] s = [.. x.shape[..d], 1, .. x.shape[d..]], st = [.. x.strides[..d], inner, .. x.strides[d..]];
        var y = AsView(x, s, st, x.offset);
        return Autograd.Recording(x) ? Recorded(y, x, new ReshapeOp("unsqueeze", x.shape)) : y;
    }

    // The same values in row-major order (x itself when it already is);  ∂ = g
    public static Tensor Contiguous(this Tensor x)
    {
        if (x.IsContiguous) return x;
        var y = x.Copy();
        return Autograd.Recording(x) ? Recorded(y, x, new CopyOp("contiguous")) : y;
    }

    // A copy with its own memory, recorded as PyTorch's clone (use Detach().Clone() for a copy without history);  ∂ = g
    public static Tensor Clone(this Tensor x)
    {
        var y = x.Copy();
        return Autograd.Recording(x) ? Recorded(y, x, new CopyOp("clone")) : y;
    }
}

public sealed partial class Tensor
{
    /// <summary>x[range] along dimension 0 (a view), e.g. <c>x[2..5]</c>.</summary>
    [System.Runtime.CompilerServices.IndexerName("Element")]
    public Tensor this[Range range] => this.Slice(0, range);

    /// <summary>x[r0, r1, …]: one range per leading dimension (a view), e.g. <c>x[.., 1..3]</c>.</summary>
    [System.Runtime.CompilerServices.IndexerName("Element")]
    public Tensor this[params Range[] ranges]
    {
        get
        {
            if (ranges.Length > Rank) throw new IndexOutOfRangeException($"index: {ranges.Length} ranges for a tensor of rank {Rank}");
            var t = this;
            for (int d = 0; d < ranges.Length; d++) t = t.Slice(d, ranges[d]);
            return t;
        }
    }
}
