using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Backprop;

/// <summary>Element type of a tensor. Float32 is the default; Float64 is what gradient checks run in.</summary>
public enum DType { Float32, Float64 }

/// <summary>
/// An N-dimensional array in contiguous row-major storage (float32 or float64) that records the operations
/// producing it when gradients are required. Arithmetic lives in <see cref="Ops"/>; this file is storage,
/// creation and inspection.
/// </summary>
public sealed partial class Tensor
{
    // Mutable only so a TensorPool can recycle the object between training steps (see Reset).
    internal Array data;   // float[] or double[]
    internal int[] shape;
    bool requiresGrad;

    internal Tensor(Array data, int[] shape)
    {
        this.data = data;
        this.shape = shape;
        Reset(data, shape);
    }

    /// <summary>Re-initialises a recycled tensor: new storage and shape, no gradient state.</summary>
    internal void Reset(Array storage, int[] dims)
    {
        data = storage;
        shape = dims;
        DType = storage is float[] ? DType.Float32 : storage is double[] ? DType.Float64
            : throw new ArgumentException($"tensor storage must be float[] or double[], not {storage.GetType().Name}");
        Length = ShapeUtil.Count(dims, "tensor");
        if (storage.Length < Length)
            throw new ArgumentException($"tensor: storage holds {storage.Length} elements, shape {ShapeUtil.Format(dims)} needs {Length}");
        requiresGrad = false;
        Grad = null;
        GradFn = null;
    }

    public DType DType { get; private set; }
    /// <summary>Number of elements (PyTorch's numel).</summary>
    public int Length { get; private set; }
    public int Rank => shape.Length;
    public ReadOnlySpan<int> Shape => shape;
    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Size(int dim) => shape[ShapeUtil.Axis(dim, shape.Length, "size")];

    /// <summary>Whether gradients flow to this tensor. Set it on leaves (parameters, inputs).</summary>
    public bool RequiresGrad
    {
        get => requiresGrad;
        set
        {
            if (!value && GradFn is not null)
                throw new InvalidOperationException($"RequiresGrad: cannot turn off on a non-leaf tensor (produced by {GradFn.Name}); use Detach().");
            requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient of a leaf after <see cref="Backward"/>.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The graph node that produced this tensor, or null for a leaf.</summary>
    internal Node? GradFn { get; set; }

    public bool IsLeaf => GradFn is null;

    /// <summary>Name of the op that produced this tensor (null for leaves), as in PyTorch's grad_fn.</summary>
    public string? GradFnName => GradFn?.Name;

    // Callers dispatch on DType first, so the unchecked reinterpretation is safe.
    internal Span<T> Span<T>() where T : unmanaged => Unsafe.As<T[]>(data).AsSpan(0, Length);

    /// <summary>The elements, as float32 (no copy for a float32 tensor; throws for float64).</summary>
    public Span<float> AsFloatSpan() => data is float[] f ? f.AsSpan(0, Length)
        : throw new InvalidOperationException($"AsFloatSpan: tensor is {DType}; use AsDoubleSpan or To(DType.Float32)");

    public Span<double> AsDoubleSpan() => data is double[] d ? d.AsSpan(0, Length)
        : throw new InvalidOperationException($"AsDoubleSpan: tensor is {DType}; use AsFloatSpan or To(DType.Float64)");

    // ---- creation -------------------------------------------------------------------------------

    internal static Array Allocate(int length, DType dtype) => TensorPool.Allocate(length, dtype);

    public static Tensor Empty(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => TensorPool.NewTensor(shape, dtype, null);

    internal static Tensor EmptyLike(Tensor t) => TensorPool.NewTensor(t.shape, t.DType, null);

    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Empty(shape, dtype);

    public static Tensor ZerosLike(Tensor t) => EmptyLike(t);

    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Full(shape, 1.0, dtype);

    public static Tensor OnesLike(Tensor t) => Full(t.shape, 1.0, t.DType);

    public static Tensor Full(ReadOnlySpan<int> shape, double value, DType dtype = DType.Float32)
    {
        var t = Empty(shape, dtype);
        t.Fill(value);
        return t;
    }

    /// <summary>A 0-dimensional tensor holding one value.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full([], value, dtype);

    /// <summary>A tensor holding a copy of <paramref name="values"/> with the given shape (default: 1-D).</summary>
    public static Tensor From(ReadOnlySpan<float> values, ReadOnlySpan<int> shape = default)
    {
        var t = Empty(shape.IsEmpty ? [values.Length] : shape, DType.Float32);
        CheckCount(values.Length, t);
        values.CopyTo(t.Span<float>());
        return t;
    }

    /// <inheritdoc cref="From(ReadOnlySpan{float}, ReadOnlySpan{int})"/>
    public static Tensor From(ReadOnlySpan<double> values, ReadOnlySpan<int> shape = default)
    {
        var t = Empty(shape.IsEmpty ? [values.Length] : shape, DType.Float64);
        CheckCount(values.Length, t);
        values.CopyTo(t.Span<double>());
        return t;
    }

    public static Tensor From(float[,] values) => From(MemoryMarshal.CreateReadOnlySpan(ref values[0, 0], values.Length), [values.GetLength(0), values.GetLength(1)]);

    public static Tensor From(double[,] values) => From(MemoryMarshal.CreateReadOnlySpan(ref values[0, 0], values.Length), [values.GetLength(0), values.GetLength(1)]);

    static void CheckCount(int count, Tensor t)
    {
        if (count != t.Length)
            throw new ArgumentException($"from: {count} values do not fill shape {ShapeUtil.Format(t.shape)} ({t.Length} elements)");
    }

    /// <summary>Values start, start + step, … below end, as in numpy.arange.</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32)
    {
        if (step == 0 || double.IsNaN(step)) throw new ArgumentException("arange: step must be non-zero");
        int n = Math.Max(0, (int)Math.Ceiling((end - start) / step));
        var t = Empty([n], dtype);
        for (int i = 0; i < n; i++) t.SetFlat(i, start + i * step);
        return t;
    }

    /// <summary>Uniform samples in [low, high) drawn from <paramref name="generator"/>.</summary>
    public static Tensor Uniform(ReadOnlySpan<int> shape, double low, double high, Generator generator, DType dtype = DType.Float32)
    {
        var t = Empty(shape, dtype);
        for (int i = 0; i < t.Length; i++) t.SetFlat(i, low + (high - low) * generator.NextDouble());
        return t;
    }

    /// <summary>Normal samples N(mean, std²) drawn from <paramref name="generator"/>.</summary>
    public static Tensor Normal(ReadOnlySpan<int> shape, double mean, double std, Generator generator, DType dtype = DType.Float32)
    {
        var t = Empty(shape, dtype);
        for (int i = 0; i < t.Length; i++) t.SetFlat(i, mean + std * generator.NextNormal());
        return t;
    }

    // ---- element access -------------------------------------------------------------------------

    internal double GetFlat(int i) => data is float[] f ? f[i] : ((double[])data)[i];

    internal void SetFlat(int i, double v)
    {
        if (data is float[] f) f[i] = (float)v; else ((double[])data)[i] = v;
    }

    /// <summary>Element at the given indices (as double, whatever the dtype).</summary>
    [IndexerName("Element")]
    public double this[params int[] index]
    {
        get => GetFlat(FlatIndex(index));
        set => SetFlat(FlatIndex(index), value);
    }

    int FlatIndex(int[] index)
    {
        if (index.Length != shape.Length)
            throw new IndexOutOfRangeException($"index: {index.Length} indices for a tensor of shape {ShapeUtil.Format(shape)}");
        int flat = 0;
        for (int d = 0; d < index.Length; d++)
        {
            if ((uint)index[d] >= (uint)shape[d])
                throw new IndexOutOfRangeException($"index: {index[d]} is out of range for dimension {d} of shape {ShapeUtil.Format(shape)}");
            flat = flat * shape[d] + index[d];
        }
        return flat;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public double Item()
    {
        if (Length != 1) throw new InvalidOperationException($"item: tensor of shape {ShapeUtil.Format(shape)} has {Length} elements, not 1");
        return GetFlat(0);
    }

    public float[] ToFloatArray()
    {
        var r = new float[Length];
        if (data is float[] f) f.AsSpan(0, Length).CopyTo(r);
        else TensorPrimitives.ConvertTruncating<double, float>(Span<double>(), r);
        return r;
    }

    public double[] ToDoubleArray()
    {
        var r = new double[Length];
        if (data is double[] d) d.AsSpan(0, Length).CopyTo(r);
        else TensorPrimitives.ConvertChecked<float, double>(Span<float>(), r);
        return r;
    }

    /// <summary>Sets every element to <paramref name="value"/> in place (not recorded by autograd).</summary>
    public void Fill(double value)
    {
        if (data is float[] f) f.AsSpan(0, Length).Fill((float)value); else ((double[])data).AsSpan(0, Length).Fill(value);
    }

    /// <summary>Copies <paramref name="source"/>'s values into this tensor in place (same shape; not recorded).</summary>
    public void CopyFrom(Tensor source)
    {
        if (!ShapeUtil.Equal(shape, source.shape))
            throw new ArgumentException($"copy: shapes {ShapeUtil.Format(source.shape)} and {ShapeUtil.Format(shape)} differ");
        if (DType == source.DType)
        {
            if (DType == DType.Float32) source.Span<float>().CopyTo(Span<float>()); else source.Span<double>().CopyTo(Span<double>());
        }
        else if (DType == DType.Float32) TensorPrimitives.ConvertTruncating<double, float>(source.Span<double>(), Span<float>());
        else TensorPrimitives.ConvertChecked<float, double>(source.Span<float>(), Span<double>());
    }

    /// <summary>A new leaf sharing nothing with the graph: same values, no history.</summary>
    public Tensor Detach() => TensorPool.NewTensor(shape, DType, data);

    /// <summary>A copy with its own storage and no history.</summary>
    public Tensor Clone()
    {
        var t = EmptyLike(this);
        t.CopyFrom(this);
        return t;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("tensor(");
        if (Length <= 64)
        {
            sb.Append('[');
            for (int i = 0; i < Length; i++) { if (i > 0) sb.Append(", "); sb.Append(GetFlat(i).ToString("G6", System.Globalization.CultureInfo.InvariantCulture)); }
            sb.Append("], ");
        }
        sb.Append("shape=").Append(ShapeUtil.Format(shape)).Append(", dtype=").Append(DType);
        if (GradFn is not null) sb.Append(", grad_fn=").Append(GradFn.Name);
        else if (RequiresGrad) sb.Append(", requires_grad=True");
        return sb.Append(')').ToString();
    }
}
