using System.Collections;

namespace Backprop.Data;

/// <summary>
/// Minibatches (inputs, labels) over in-memory tensors, as torch's DataLoader: each enumeration is one epoch,
/// reshuffled from the seeded generator when <c>shuffle</c> is set (same seed → same batches), optionally
/// dropping a last incomplete batch. Each batch is a new tensor and label array that belongs to the consumer.
/// The copy is one row memcpy per sample.
/// Each enumeration draws its permutation when it starts, so two enumerations never share state.
/// </summary>
public sealed class DataLoader : IReadOnlyCollection<(Tensor X, int[] Y)>
{
    readonly Tensor inputs;
    readonly int[] labels;
    readonly Generator? generator;
    readonly bool shuffle;
    readonly IImageTransform? transform;
    readonly (int Rank, int Size)? shard;
    int epoch;

    /// <param name="shard">
    /// For data-parallel training: this rank's share of every batch. <paramref name="batchSize"/> is then the global batch,
    /// drawn identically on every rank from the same seed; rank r of R takes rows ⌊n·r/R⌋ … ⌊n·(r+1)/R⌋ − 1 of each, so
    /// together the ranks see exactly the single-process batches. A last batch with fewer rows than ranks is skipped on
    /// every rank alike. A transform is applied to the whole batch before slicing, keeping the ranks' generators in step.
    /// </param>
    public DataLoader(Tensor inputs, int[] labels, int batchSize, bool shuffle = false, Generator? generator = null, bool dropLast = false,
        IImageTransform? transform = null, (int Rank, int Size)? shard = null)
    {
        if (shard is { } sh && (sh.Size < 1 || sh.Rank < 0 || sh.Rank >= sh.Size))
            throw new ArgumentOutOfRangeException(nameof(shard), shard, "DataLoader: the shard's rank must be in [0, size)");
        if (shard is { } s1 && batchSize < s1.Size)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"DataLoader: a batch of {batchSize} leaves some of {s1.Size} ranks without samples");
        this.shard = shard;
        if (inputs.Rank == 0 || inputs.Size(0) != labels.Length)
            throw new ArgumentException($"DataLoader: {labels.Length} labels for inputs of shape {ShapeUtil.Format(inputs.Shape)}");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "DataLoader: batch size must be positive");
        if (shuffle && generator is null) throw new ArgumentException("DataLoader: shuffling needs a Generator (explicit seed, no hidden state)");
        if (transform is not null && generator is null) throw new ArgumentException("DataLoader: a random transform needs a Generator (explicit seed, no hidden state)");
        this.inputs = inputs; this.labels = labels; this.generator = shuffle || transform is not null ? generator : null;
        this.shuffle = shuffle; this.transform = transform;
        BatchSize = batchSize; DropLast = dropLast;
    }

    public int BatchSize { get; }
    public bool DropLast { get; }

    /// <summary>
    /// The epoch (from 0) the next enumeration is, as an <see cref="IEpochImageTransform"/> sees it: each enumeration
    /// takes it and adds one. Set it when resuming a run, so epoch-dependent augmentation continues where it stopped.
    /// </summary>
    public int Epoch
    {
        get => epoch;
        set => epoch = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(Epoch), value, "DataLoader: the epoch must not be negative");
    }

    public int Samples => labels.Length;

    /// <summary>Batches per epoch.</summary>
    public int Count => DropLast || (shard is { } s && Samples % BatchSize is > 0 and var r && r < s.Size)
        ? Samples / BatchSize : (Samples + BatchSize - 1) / BatchSize;

    public IEnumerator<(Tensor X, int[] Y)> GetEnumerator()
    {
        var order = new int[Samples];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (shuffle) generator!.Shuffle(order.AsSpan());
        int batches = Count, thisEpoch = epoch++;
        for (int b = 0; b < batches; b++)
        {
            int start = b * BatchSize, n = Math.Min(BatchSize, Samples - start);
            if (shard is { } sh && transform is null)
            {
                // only this rank's rows are gathered; with a transform, the whole batch is (its draws cover every image)
                int lo = (int)((long)n * sh.Rank / sh.Size), hi = (int)((long)n * (sh.Rank + 1) / sh.Size);
                start += lo; n = hi - lo;
            }
            var idx = order.AsSpan(start, n);
            var y = new int[n];
            for (int i = 0; i < n; i++) y[i] = labels[idx[i]];
            Tensor x;
            using (Autograd.NoGrad())
            {
                x = inputs.IndexSelect(idx);
                // after the order's draw, batch by batch: same seed, same batches
                if (transform is IEpochImageTransform et) x = et.Apply(x, idx, thisEpoch, generator!);
                else if (transform is not null) x = transform.Apply(x, generator!);
            }
            if (shard is { } s && transform is not null)
            {
                int lo = (int)((long)n * s.Rank / s.Size), hi = (int)((long)n * (s.Rank + 1) / s.Size);
                using (Autograd.NoGrad()) x = x.Narrow(0, lo, hi - lo).Contiguous();
                y = y[lo..hi];
            }
            yield return (x, y);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// <paramref name="batches"/> minibatches of rows drawn with replacement (the classic exercise's
    /// <c>np.random.choice(N, batch)</c>, from a Generator), each drawn as it is requested.
    /// </summary>
    public static IEnumerable<(Tensor X, int[] Y)> WithReplacement(Tensor inputs, int[] labels, int batchSize, int batches, Generator generator)
    {
        if (inputs.Rank == 0 || inputs.Size(0) != labels.Length)
            throw new ArgumentException($"DataLoader: {labels.Length} labels for inputs of shape {ShapeUtil.Format(inputs.Shape)}");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "DataLoader: batch size must be positive");
        return Draw();

        IEnumerable<(Tensor X, int[] Y)> Draw()
        {
            for (int b = 0; b < batches; b++)
            {
                var idx = new int[batchSize];
                var y = new int[batchSize];
                for (int i = 0; i < idx.Length; i++) { idx[i] = generator.NextInt(labels.Length); y[i] = labels[idx[i]]; }
                Tensor x;
                using (Autograd.NoGrad()) x = inputs.IndexSelect(idx);
                yield return (x, y);
            }
        }
    }
}
