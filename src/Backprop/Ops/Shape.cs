using Backprop.Kernels;

namespace Backprop;

public static partial class Ops
{
    // Same elements, new shape (one dimension may be −1 and is inferred);  ∂ = reshape back
    public static Tensor Reshape(this Tensor x, params int[] shape)
    {
        var s = (int[])shape.Clone();
        int infer = Array.IndexOf(s, -1);
        if (infer >= 0)
        {
            int known = 1;
            for (int i = 0; i < s.Length; i++) if (i != infer) known *= s[i];
            if (known == 0 || x.Length % known != 0)
                throw new ArgumentException($"reshape: cannot reshape {ShapeUtil.Format(x.shape)} into {ShapeUtil.Format(shape)}");
            s[infer] = x.Length / known;
        }
        if (ShapeUtil.Count(s, "reshape") != x.Length)
            throw new ArgumentException($"reshape: cannot reshape {ShapeUtil.Format(x.shape)} ({x.Length} elements) into {ShapeUtil.Format(shape)}");
        return x.ReshapeStorage(s).Record("reshape", x, g => g.ReshapeStorage(x.shape));
    }

    /// <summary>Flattens every dimension from <paramref name="startDim"/> on (default: keep the batch dimension).</summary>
    public static Tensor Flatten(this Tensor x, int startDim = 1)
    {
        startDim = ShapeUtil.Axis(startDim, x.Rank, "flatten");
        var s = new int[startDim + 1];
        for (int i = 0; i < startDim; i++) s[i] = x.shape[i];
        s[startDim] = -1;
        return x.Reshape(s);
    }

    // Swaps two dimensions (materialised);  ∂ = the same swap of g
    public static Tensor Transpose(this Tensor x, int dim0 = 0, int dim1 = 1)
    {
        int a = ShapeUtil.Axis(dim0, x.Rank, "transpose"), b = ShapeUtil.Axis(dim1, x.Rank, "transpose");
        return Swap(x, a, b).Record("transpose", x, g => Swap(g, a, b));
    }

    /// <summary>The 2-D transpose (PyTorch's <c>.T</c>).</summary>
    public static Tensor T(this Tensor x)
    {
        if (x.Rank != 2) throw new ArgumentException($"T: expects a 2-D tensor, got shape {ShapeUtil.Format(x.shape)}");
        return x.Transpose(0, 1);
    }

    static Tensor Swap(Tensor x, int a, int b)
    {
        var s = (int[])x.shape.Clone();
        (s[a], s[b]) = (s[b], s[a]);
        var y = Tensor.Empty(s, x.DType);
        if (a == b) { y.CopyFrom(x.ReshapeStorage(s)); return y; }
        // Strides of x, permuted into y's index order.
        var xs = new int[x.Rank];
        for (int i = x.Rank - 1, st = 1; i >= 0; i--) { xs[i] = st; st *= x.shape[i]; }
        (xs[a], xs[b]) = (xs[b], xs[a]);
        var idx = new int[s.Length];
        int off = 0;
        for (int n = 0; n < y.Length; n++)
        {
            y.SetFlat(n, x.GetFlat(off));
            for (int d = s.Length - 1; d >= 0; d--)
            {
                idx[d]++; off += xs[d];
                if (idx[d] < s[d]) break;
                off -= xs[d] * s[d]; idx[d] = 0;
            }
        }
        return y;
    }

    // Rows [start, start + count) along dimension 0 (a minibatch);  ∂ = g placed back into zeros
    public static Tensor SliceRows(this Tensor x, int start, int count)
    {
        if (x.Rank == 0 || start < 0 || count < 0 || start + count > x.shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice: rows [{start}, {start + count}) are outside dimension 0 of shape {ShapeUtil.Format(x.shape)}");
        int row = x.Length / Math.Max(1, x.shape[0]);
        var s = (int[])x.shape.Clone();
        s[0] = count;
        var y = Tensor.Empty(s, x.DType);
        CopyRange(x, start * row, y, 0, count * row);
        return y.Record("slice", x, g =>
        {
            var dx = Tensor.EmptyLike(x);
            CopyRange(g, 0, dx, start * row, count * row);
            return dx;
        });
    }

    /// <summary>Rows of <paramref name="x"/> at the given indices, in order (building a shuffled minibatch).</summary>
    public static Tensor IndexSelect(this Tensor x, ReadOnlySpan<int> rows)
    {
        if (x.Rank == 0) throw new ArgumentException("index_select: needs at least one dimension");
        int row = x.Length / Math.Max(1, x.shape[0]);
        var s = (int[])x.shape.Clone();
        s[0] = rows.Length;
        var y = Tensor.Empty(s, x.DType);
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)x.shape[0])
                throw new IndexOutOfRangeException($"index_select: row {rows[i]} is outside dimension 0 of shape {ShapeUtil.Format(x.shape)}");
            CopyRange(x, rows[i] * row, y, i * row, row);
        }
        return Autograd.Recording(x) ? RecordIndexSelect(y, x, rows.ToArray(), row) : y;
    }

    // ∂ = each row of g added back at its source row (rows may repeat). Apart, so the closure is only built when recording.
    static Tensor RecordIndexSelect(Tensor y, Tensor x, int[] rows, int row) => y.Record("index_select", x, g =>
    {
        var dx = Tensor.EmptyLike(x);
        for (int i = 0; i < rows.Length; i++) AddRange(g, i * row, dx, rows[i] * row, row);
        return dx;
    });

    // y_i = x[i, index_i] for a 2-D x (picks each sample's class score);  ∂ = g_i at (i, index_i), 0 elsewhere
    public static Tensor Gather(this Tensor x, ReadOnlySpan<int> index)
    {
        if (x.Rank != 2 || index.Length != x.shape[0])
            throw new ArgumentException($"gather: expects a 2-D tensor and one index per row, got shape {ShapeUtil.Format(x.shape)} and {index.Length} indices");
        int n = x.shape[0], c = x.shape[1];
        var y = Tensor.Empty([n], x.DType);
        var saved = CheckClasses(index, c, "gather");
        for (int i = 0; i < n; i++) y.SetFlat(i, x.GetFlat(i * c + saved[i]));
        return y.Record("gather", x, g =>
        {
            var dx = Tensor.EmptyLike(x);
            for (int i = 0; i < n; i++) dx.SetFlat(i * c + saved[i], g.GetFlat(i));
            return dx;
        });
    }

    internal static int[] CheckClasses(ReadOnlySpan<int> index, int classes, string op)
    {
        for (int i = 0; i < index.Length; i++)
            if ((uint)index[i] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(index), $"{op}: target {index[i]} at position {i} is outside [0, {classes})");
        var copy = TensorPool.RentInts(index.Length);
        index.CopyTo(copy);
        return copy;
    }

    // Joins tensors along an axis;  ∂ = g cut back into the pieces
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("concat: no tensors");
        var first = tensors[0];
        int a = ShapeUtil.Axis(axis, first.Rank, "concat");
        var s = (int[])first.shape.Clone();
        s[a] = 0;
        foreach (var t in tensors)
        {
            bool ok = t.Rank == first.Rank && t.DType == first.DType;
            for (int d = 0; ok && d < t.Rank; d++) ok = d == a || t.shape[d] == first.shape[d];
            if (!ok) throw new ArgumentException($"concat: {ShapeUtil.Format(t.shape)} {t.DType} does not match {ShapeUtil.Format(first.shape)} {first.DType} outside axis {a}");
            s[a] += t.shape[a];
        }
        var y = Tensor.Empty(s, first.DType);
        var (outer, _, inner) = ShapeUtil.Around(s, a);
        int yRow = s[a] * inner, at = 0;
        foreach (var t in tensors)
        {
            int tRow = t.shape[a] * inner;
            for (int o = 0; o < outer; o++) CopyRange(t, o * tRow, y, o * yRow + at, tRow);
            at += tRow;
        }
        var inputs = tensors.ToArray();
        return y.Record("concat", inputs, g =>
        {
            var grads = new Tensor?[inputs.Length];
            int off = 0;
            for (int k = 0; k < inputs.Length; k++)
            {
                var t = inputs[k];
                int tRow = t.shape[a] * inner;
                var dt = Tensor.EmptyLike(t);
                for (int o = 0; o < outer; o++) CopyRange(g, o * yRow + off, dt, o * tRow, tRow);
                grads[k] = dt;
                off += tRow;
            }
            return grads;
        });
    }

    // Converts the element type;  ∂ = g converted back
    public static Tensor To(this Tensor x, DType dtype)
    {
        if (x.DType == dtype) return x;
        var y = Tensor.Empty(x.shape, dtype);
        y.CopyFrom(x);
        return y.Record("to", x, g => g.To(x.DType));
    }

    static void AddRange(Tensor src, int srcOffset, Tensor dst, int dstOffset, int count)
    {
        if (src.DType == DType.Float32)
        {
            var d = dst.Span<float>().Slice(dstOffset, count);
            System.Numerics.Tensors.TensorPrimitives.Add(d, src.Span<float>().Slice(srcOffset, count), d);
        }
        else
        {
            var d = dst.Span<double>().Slice(dstOffset, count);
            System.Numerics.Tensors.TensorPrimitives.Add(d, src.Span<double>().Slice(srcOffset, count), d);
        }
    }

    internal static void CopyRange(Tensor src, int srcOffset, Tensor dst, int dstOffset, int count)
    {
        if (src.DType == DType.Float32) src.Span<float>().Slice(srcOffset, count).CopyTo(dst.Span<float>().Slice(dstOffset, count));
        else src.Span<double>().Slice(srcOffset, count).CopyTo(dst.Span<double>().Slice(dstOffset, count));
    }
}
