using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // Rows of x at the given indices, in order (e.g. a shuffled minibatch);  ∂ = each row of g added back at its source row
    public static Tensor IndexSelect(this Tensor x, ReadOnlySpan<int> rows)
    {
        if (x.Rank == 0) throw new ArgumentException("index_select: needs at least one dimension");
        for (int i = 0; i < rows.Length; i++)
            if ((uint)rows[i] >= (uint)x.shape[0])
                throw new IndexOutOfRangeException($"index_select: row {rows[i]} is outside dimension 0 of shape {ShapeUtil.Format(x.shape)}");
        var s = (int[])x.shape.Clone();
        s[0] = rows.Length;
        var y = Tensor.Uninitialized(s, x.DType);   // every row written by the kernel
        Backend.Current.IndexSelect(x, rows, y);
        return Autograd.Recording(x) ? new IndexSelectOp(x.shape, rows.ToArray()).Attach(y, x) : y;
    }

    internal sealed class IndexSelectOp(int[] inputShape, int[] rows) : Function
    {
        public override string Name => "index_select";
        public override IEnumerable<(string, object)> Attributes => [("rows", rows)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var dx = Tensor.Zeros(inputShape, g.DType);
            Backend.Current.IndexAdd(g, rows, dx);
            return [dx];
        }
    }

    // y_i = x[i, index_i] for a 2-D x (picks each sample's class score): index_select on the flattened matrix;
    //   ∂ = g_i at (i, index_i), 0 elsewhere
    public static Tensor Gather(this Tensor x, ReadOnlySpan<int> index)
    {
        if (x.Rank != 2 || index.Length != x.shape[0])
            throw new ArgumentException($"gather: expects a 2-D tensor and one index per row, got shape {ShapeUtil.Format(x.shape)} and {index.Length} indices");
        int n = x.shape[0], c = x.shape[1];
        CheckClasses(index, c, "gather");
        var at = new int[n];
        for (int i = 0; i < n; i++) at[i] = i * c + index[i];
        return x.Reshape(n * c, 1).IndexSelect(at).Reshape(n);
    }

    internal static int[] CheckClasses(ReadOnlySpan<int> index, int classes, string op)
    {
        for (int i = 0; i < index.Length; i++)
            if ((uint)index[i] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(index), $"{op}: target {index[i]} at position {i} is outside [0, {classes})");
        return index.ToArray();
    }

    // Joins tensors along an existing dimension;  ∂ = g cut back into the pieces (views of g)
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("cat: no tensors");
        var first = tensors[0];
        int a = ShapeUtil.Axis(dim, first.Rank, "cat");
        var s = (int[])first.shape.Clone();
        s[a] = 0;
        foreach (var t in tensors)
        {
            bool ok = t.Rank == first.Rank && t.DType == first.DType;
            for (int d = 0; ok && d < t.Rank; d++) ok = d == a || t.shape[d] == first.shape[d];
            if (!ok) throw new ArgumentException($"cat: {ShapeUtil.Format(t.shape)} {t.DType} does not match {ShapeUtil.Format(first.shape)} {first.DType} outside dimension {a}");
            s[a] += t.shape[a];
        }
        var y = Tensor.Empty(s, first.DType);
        var inputs = tensors.ToArray();
        var starts = new int[inputs.Length];
        for (int k = 0, at = 0; k < inputs.Length; at += inputs[k].shape[a], k++)
        {
            starts[k] = at;
            Backend.Current.Copy(inputs[k], y.Detach().Narrow(a, at, inputs[k].shape[a]));
        }
        if (!Autograd.IsEnabled || !Array.Exists(inputs, t => t.RequiresGrad)) return y;
        return new CatOp(a, starts, [.. inputs.Select(t => t.shape[a])]).Attach(y, inputs);
    }

    internal sealed class CatOp(int dim, int[] starts, int[] lengths) : Function
    {
        public override string Name => "cat";
        public override IEnumerable<(string, object)> Attributes => [("dim", dim)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var grads = new Tensor?[starts.Length];
            for (int k = 0; k < grads.Length; k++) grads[k] = g.Narrow(dim, starts[k], lengths[k]);
            return grads;
        }
    }

    /// <inheritdoc cref="Cat"/>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis = 0) => Cat(tensors, axis);

    /// <summary>Joins equal-shaped tensors along a new dimension <paramref name="dim"/> (torch.stack).</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("stack: no tensors");
        foreach (var t in tensors)
            if (!ShapeUtil.Equal(t.shape, tensors[0].shape))
                throw new ArgumentException($"stack: shapes {ShapeUtil.Format(tensors[0].shape)} and {ShapeUtil.Format(t.shape)} differ");
        return Cat([.. tensors.Select(t => t.Unsqueeze(dim))], dim < 0 ? dim + tensors[0].Rank + 1 : dim);
    }

    /// <summary>Views of consecutive pieces of <paramref name="splitSize"/> along <paramref name="dim"/> (the last may be smaller), as torch.split.</summary>
    public static Tensor[] Split(this Tensor x, int splitSize, int dim = 0)
    {
        if (splitSize <= 0) throw new ArgumentOutOfRangeException(nameof(splitSize), splitSize, "split: size must be positive");
        int n = x.Size(dim);
        var pieces = new List<Tensor>();
        for (int start = 0; start < n || (n == 0 && pieces.Count == 0); start += splitSize)
            pieces.Add(x.Narrow(dim, start, Math.Min(splitSize, n - start)));
        return [.. pieces];
    }

    /// <summary>Views of pieces with the given sizes along <paramref name="dim"/>, which must add up to its size.</summary>
    public static Tensor[] Split(this Tensor x, int[] sizes, int dim = 0)
    {
        int n = x.Size(dim);
        if (sizes.Any(v => v < 0) || sizes.Sum(v => (long)v) != n)
            throw new ArgumentException($"split: sizes ({string.Join(",", sizes)}) do not add up to dimension {dim} of {ShapeUtil.Format(x.shape)}");
        var pieces = new Tensor[sizes.Length];
        for (int k = 0, at = 0; k < sizes.Length; at += sizes[k], k++) pieces[k] = x.Narrow(dim, at, sizes[k]);
        return pieces;
    }

    /// <summary><paramref name="chunks"/> views of (nearly) equal size along <paramref name="dim"/>, as torch.chunk.</summary>
    public static Tensor[] Chunk(this Tensor x, int chunks, int dim = 0)
    {
        if (chunks <= 0) throw new ArgumentOutOfRangeException(nameof(chunks), chunks, "chunk: count must be positive");
        int n = x.Size(dim);
        return x.Split(Math.Max(1, (n + chunks - 1) / chunks), dim);
    }

    // Converts the element type;  ∂ = g converted back
    public static Tensor To(this Tensor x, DType dtype)
    {
        if (x.DType == dtype) return x;
        var y = Tensor.Empty(x.shape, dtype);
        y.CopyFrom(x);
        return Autograd.Recording(x) ? new ToOp(x.DType).Attach(y, x) : y;
    }

    internal sealed class ToOp(DType source) : Function
    {
        public override string Name => "to";
        public override IEnumerable<(string, object)> Attributes => [("dtype", source)];
        protected override Tensor?[] Backward(Tensor g) => [g.To(source)];
    }
}
