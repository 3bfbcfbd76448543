namespace Backprop.Nn;

/// <summary>A lookup table of <c>numEmbeddings</c> vectors of <c>embeddingDim</c>, initialised N(0, 1) as torch.nn.Embedding; <see cref="Forward(ReadOnlySpan{int}, int[])"/> takes indices.</summary>
public sealed class Embedding : Module
{
    public Embedding(int numEmbeddings, int embeddingDim, Generator generator, int? paddingIndex = null, DType dtype = DType.Float32)
    {
        if (numEmbeddings <= 0 || embeddingDim <= 0) throw new ArgumentException($"Embedding: sizes must be positive, got ({numEmbeddings}, {embeddingDim})");
        if (paddingIndex is int p && (uint)p >= (uint)numEmbeddings) throw new ArgumentOutOfRangeException(nameof(paddingIndex), $"Embedding: padding index {p} is outside [0, {numEmbeddings})");
        PaddingIndex = paddingIndex;
        var w = Tensor.Normal([numEmbeddings, embeddingDim], 0, 1, generator, dtype);
        if (paddingIndex is int pad) w.Select(0, pad).Fill(0);   // as PyTorch: the padding row starts at zero
        Weight = RegisterParameter("weight", w);
    }

    public Tensor Weight { get; }
    public int? PaddingIndex { get; }

    /// <summary>The vectors of <paramref name="indices"/>, shaped <paramref name="shape"/> + (dim).</summary>
    public Tensor Forward(ReadOnlySpan<int> indices, int[]? shape = null) => Ops.Embedding(indices, Weight, shape, PaddingIndex);

    /// <summary>Indices given as a tensor of whole numbers (as a model's input); the output is its shape + (dim).</summary>
    public override Tensor Forward(Tensor input)
    {
        var values = input.ToDoubleArray();
        var indices = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] != Math.Floor(values[i]) || values[i] < 0 || values[i] > int.MaxValue)
                throw new ArgumentException($"Embedding: input element {i} is {values[i]}, not an index");
            indices[i] = (int)values[i];
        }
        return Forward(indices, input.Shape.ToArray());
    }

    protected override string ExtraRepr() => $"{Weight.Size(0)}, {Weight.Size(1)}{(PaddingIndex is int p ? $", padding_idx={p}" : "")}";
}
