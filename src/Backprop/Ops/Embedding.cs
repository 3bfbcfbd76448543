using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    /// <summary>
    /// Rows of <paramref name="weight"/> (num_embeddings, dim) at <paramref name="indices"/>, shaped
    /// <paramref name="shape"/> + (dim) (default: (indices, dim)), as torch.nn.functional.embedding; the row at
    /// <paramref name="paddingIndex"/>, if given, receives no gradient.
    /// </summary>
    // y[i] = W[idx[i]];  ∂L/∂W[r] = Σ_{i: idx[i] = r} g[i]  (0 for the padding row)
    public static Tensor Embedding(ReadOnlySpan<int> indices, Tensor weight, int[]? shape = null, int? paddingIndex = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"embedding: weight must be (num_embeddings, dim), got {ShapeUtil.Format(weight.shape)}");
        int n = weight.shape[0], dim = weight.shape[1];
        for (int i = 0; i < indices.Length; i++)
            if ((uint)indices[i] >= (uint)n)
                throw new ArgumentOutOfRangeException(nameof(indices), $"embedding: index {indices[i]} at position {i} is outside [0, {n})");
        if (paddingIndex is int p && (uint)p >= (uint)n) throw new ArgumentOutOfRangeException(nameof(paddingIndex), $"embedding: padding index {p} is outside [0, {n})");
        int[] outShape = [.. shape ?? [indices.Length], dim];
        if (ShapeUtil.Count(outShape, "embedding") != indices.Length * dim)
            throw new ArgumentException($"embedding: shape {ShapeUtil.Format(shape ?? [])} does not hold {indices.Length} indices");
        var y = Tensor.Empty([indices.Length, dim], weight.DType);
        Backend.Current.IndexSelect(weight, indices, y);
        y = y.ViewOf(outShape);
        return Autograd.Recording(weight) ? new EmbeddingOp(n, indices.ToArray(), paddingIndex).Attach(y, weight) : y;
    }

    internal sealed class EmbeddingOp(int rows, int[] indices, int? paddingIndex) : Function
    {
        public override string Name => "embedding";
        public override IEnumerable<(string, object)> Attributes => paddingIndex is int p ? [("padding_idx", p)] : [];
        protected override Tensor?[] Backward(Tensor g)
        {
            var g2 = g.Reshape(indices.Length, -1);
            var dw = Tensor.Zeros([rows, g2.Size(1)], g.DType);
            Backend.Current.IndexAdd(g2, indices, dw);
            if (paddingIndex is int p) dw.Select(0, p).Fill(0);
            return [dw];
        }
    }
}
