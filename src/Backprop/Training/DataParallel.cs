using System.Diagnostics;
using System.Runtime.InteropServices;
using Backprop.Nn;

namespace Backprop.Training;

/// <summary>
/// The collective operations data-parallel training needs (torch.distributed's process group): every rank calls each
/// one in the same order. <see cref="LocalGroup"/> is the one-process group; <c>Backprop.Distributed</c> has MPI's.
/// </summary>
public interface IProcessGroup
{
    /// <summary>This process's index, 0 … <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>How many processes train together.</summary>
    int Size { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank by their elementwise sum over the ranks.</summary>
    void AllReduceSum(Span<float> values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    void AllReduceSum(Span<double> values);

    /// <summary>Copies rank <paramref name="root"/>'s bytes into every other rank's <paramref name="data"/>.</summary>
    void Broadcast(Span<byte> data, int root);

    /// <summary>Every rank's <paramref name="mine"/> (all of one length), in rank order, into <paramref name="all"/> (length × ranks).</summary>
    void AllGather(ReadOnlySpan<double> mine, Span<double> all);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
}

/// <summary>A group of one process: every collective is the identity.</summary>
public sealed class LocalGroup : IProcessGroup
{
    public static LocalGroup Instance { get; } = new();
    public int Rank => 0;
    public int Size => 1;
    public void AllReduceSum(Span<float> values) { }
    public void AllReduceSum(Span<double> values) { }
    public void Broadcast(Span<byte> data, int root) { }
    public void AllGather(ReadOnlySpan<double> mine, Span<double> all) => mine.CopyTo(all);
    public void Barrier() { }
}

/// <summary>
/// Data-parallel training (PyTorch's DistributedDataParallel, without its hooks): rank 0's parameters and buffers are
/// broadcast once; after each backward pass the gradients are summed over the ranks in buckets, each rank's weighted
/// by its sample count, and divided by the total — so ranks holding 63 and 65 samples step exactly as one process
/// with 128 would, up to the order of the float sums — and every rank takes the same optimizer step. BatchNorm normalises
/// with per-rank batch statistics (DDP's default) and rank 0's running statistics are broadcast after every step (DDP's
/// broadcast_buffers). <see cref="Trainer{TBatch}"/> calls it when its
/// <see cref="Trainer{TBatch}.DataParallel"/> is set.
/// </summary>
public sealed class DataParallel
{
    readonly Module model;
    readonly int bucketElements;
    float[] floatBucket = [];
    double[] doubleBucket = [];
    double[] totals = [];
    readonly Stopwatch communication = new();
    readonly SumOver<float> sumFloats;
    readonly SumOver<double> sumDoubles;

    /// <param name="bucketBytes">Largest all-reduce message (DDP's default: 25 MB), so the staging buffer stays bounded.</param>
    public DataParallel(IProcessGroup group, Module model, int bucketBytes = 25 << 20)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(model);
        if (bucketBytes < 8) throw new ArgumentOutOfRangeException(nameof(bucketBytes), bucketBytes, "a bucket holds at least one value");
        Group = group;
        this.model = model;
        sumFloats = group.AllReduceSum;   // bound once, not per step
        sumDoubles = group.AllReduceSum;
        bucketElements = bucketBytes / 8;
    }

    public IProcessGroup Group { get; }

    /// <summary>Wall time spent inside collectives so far (waiting for slower ranks included).</summary>
    public TimeSpan CommunicationTime => communication.Elapsed;

    /// <summary>Copies rank 0's parameters and buffers to every rank (before the first step).</summary>
    public void BroadcastState() => Broadcast(model.NamedParameters().Concat(model.NamedBuffers()));

    /// <summary>
    /// Copies rank 0's buffers (BatchNorm's running statistics, which each rank updates from its own samples) to every
    /// rank after each step, as DDP's broadcast_buffers does, so the replicas stay identical and evaluate alike.
    /// </summary>
    public void BroadcastBuffers() => Broadcast(model.NamedBuffers());

    void Broadcast(IEnumerable<(string, Tensor)> tensors)
    {
        communication.Start();
        try
        {
            foreach (var (_, t) in tensors)
            {
                var dense = t.Dense();
                var bytes = dense.DType == DType.Float32 ? MemoryMarshal.AsBytes(dense.AsFloatSpan()) : MemoryMarshal.AsBytes(dense.AsDoubleSpan());
                Group.Broadcast(bytes, 0);
                if (!ReferenceEquals(dense, t)) t.CopyFrom(dense);
            }
        }
        finally { communication.Stop(); }
    }

    /// <summary>
    /// Replaces each parameter's gradient (that of this rank's mean loss over <paramref name="samples"/>) by the
    /// sample-weighted mean over the ranks, and returns the global mean loss and sample count.
    /// </summary>
    public (double Loss, long Samples) AverageGradients(IReadOnlyList<Tensor> parameters, int samples, double loss)
    {
        communication.Start();
        try
        {
            // One small all-reduce: the samples, the loss sum, and per parameter whether any rank's graph reached it.
            if (totals.Length != parameters.Count + 2) totals = new double[parameters.Count + 2];
            totals[0] = samples; totals[1] = loss * samples;
            for (int i = 0; i < parameters.Count; i++) totals[i + 2] = parameters[i].Grad is null ? 0 : 1;
            Group.AllReduceSum(totals);
            double total = totals[0];
            if (!(total > 0)) throw new InvalidOperationException("data parallel: no rank had samples in this step");
            for (int i = 0; i < parameters.Count; i++)
            {
                var p = parameters[i];
                if (p.Grad is null || !p.Grad.IsContiguous || p.Grad.DType != p.DType) p.Grad = Tensor.Zeros(p.Shape, p.DType);   // unused here, used elsewhere
            }
            // Buckets of consecutive parameters of one dtype: scale by this rank's share, sum over ranks, divide by the total.
            double scale = samples;
            int start = 0;
            while (start < parameters.Count)
            {
                var dtype = parameters[start].DType;
                int end = start; long length = 0;
                while (end < parameters.Count && parameters[end].DType == dtype && (end == start || length + parameters[end].Length <= bucketElements))
                    length += parameters[end++].Length;
                if (dtype == DType.Float32) Reduce(ref floatBucket, parameters, start, end, (int)length, scale, total, static t => t.Grad!.AsFloatSpan(), sumFloats);
                else Reduce(ref doubleBucket, parameters, start, end, (int)length, scale, total, static t => t.Grad!.AsDoubleSpan(), sumDoubles);
                start = end;
            }
            // A parameter no rank used keeps no gradient, so the optimizer skips it as one process would.
            for (int i = 0; i < parameters.Count; i++) if (totals[i + 2] == 0) parameters[i].Grad = null;
            return (totals[1] / total, (long)total);
        }
        finally { communication.Stop(); }
    }

    delegate Span<T> GradSpan<T>(Tensor t);
    delegate void SumOver<T>(Span<T> values);

    static void Reduce<T>(ref T[] bucket, IReadOnlyList<Tensor> parameters, int start, int end, int length, double scale, double total,
        GradSpan<T> grad, SumOver<T> sum) where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        if (bucket.Length < length) bucket = new T[length];
        var buffer = bucket.AsSpan(0, length);
        T share = T.CreateChecked(scale), inverse = T.CreateChecked(1 / total);
        int at = 0;
        for (int i = start; i < end; i++)
        {
            var g = grad(parameters[i]);
            System.Numerics.Tensors.TensorPrimitives.Multiply(g, share, buffer.Slice(at, g.Length));
            at += g.Length;
        }
        sum(buffer);
        at = 0;
        for (int i = start; i < end; i++)
        {
            var g = grad(parameters[i]);
            System.Numerics.Tensors.TensorPrimitives.Multiply(buffer.Slice(at, g.Length), inverse, g);
            at += g.Length;
        }
    }

    /// <summary>Sums <paramref name="values"/> over the ranks, in place (epoch metrics).</summary>
    public void Sum(Span<double> values)
    {
        communication.Start();
        try { Group.AllReduceSum(values); }
        finally { communication.Stop(); }
    }

    /// <summary>
    /// Throws unless every rank holds bitwise the same parameters and buffers: each rank's 64-bit hash of its state (every
    /// byte), gathered as two exact 32-bit halves, must equal rank 0's — the same verdict on every rank.
    /// </summary>
    public void CheckReplicas(string when)
    {
        ulong hash = 14695981039346656037;
        foreach (var (_, t) in model.NamedParameters().Concat(model.NamedBuffers()))
        {
            var dense = t.Dense();
            var bytes = dense.DType == DType.Float32 ? MemoryMarshal.AsBytes(dense.AsFloatSpan()) : MemoryMarshal.AsBytes(dense.AsDoubleSpan());
            int whole = bytes.Length & ~7;
            foreach (var word in MemoryMarshal.Cast<byte, ulong>(bytes[..whole])) hash = (hash ^ word) * 1099511628211;
            ulong tail = 0;
            for (int i = whole; i < bytes.Length; i++) tail = tail << 8 | bytes[i];
            hash = (hash ^ tail ^ (ulong)bytes.Length) * 1099511628211;   // the tail (a float32 tensor of odd length) and the size
        }
        var all = new double[2 * Group.Size];
        communication.Start();
        try { Group.AllGather([hash >> 32, hash & 0xFFFFFFFF], all); }
        finally { communication.Stop(); }
        for (int r = 1; r < Group.Size; r++)
            if (all[2 * r] != all[0] || all[2 * r + 1] != all[1])
                throw new InvalidOperationException($"data parallel: rank {r}'s weights differ from rank 0's {when}; the replicas have diverged");
    }
}
