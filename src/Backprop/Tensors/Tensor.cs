using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Backprop;

/// <summary>Element type of a tensor. Float32 is the default; Float64 is what gradient checks run in.</summary>
public enum DType { Float32, Float64 }

/// <summary>
/// An N-dimensional array (float32 or float64): a <see cref="Storage"/> seen through a layout — shape, strides
/// (in elements, 0 along expanded dimensions) and an offset — as in PyTorch, so transpose, slicing, expand and
/// reshape are views that share memory. It records the operations producing it when gradients are required.
/// Arithmetic lives in <see cref="Ops"/>; this file is layout, creation and inspection.
/// </summary>
public sealed partial class Tensor
{
    internal readonly Storage storage;
    internal readonly int[] shape;
    int[]? stridesOrNull;   // null for a tensor created contiguous: computed on first use (most never need it)
    internal readonly int offset;
    bool requiresGrad;

    internal int[] strides => stridesOrNull ??= ShapeUtil.ContiguousStrides(shape);

    internal Tensor(Storage storage, int[] shape, int[] strides, int offset)
    {
        this.storage = storage; this.shape = shape; stridesOrNull = strides; this.offset = offset;
        Length = ShapeUtil.Count(shape, "tensor");
        IsContiguous = ShapeUtil.IsContiguous(shape, strides);
    }

    /// <summary>A new contiguous tensor over the start of <paramref name="storage"/> (the common case, kept cheap).</summary>
    Tensor(Storage storage, int[] shape, int length)
    {
        this.storage = storage; this.shape = shape; Length = length; IsContiguous = true;
    }

    /// <summary>A contiguous tensor over <paramref name="data"/> (float[] or double[]), which it takes ownership of.</summary>
    internal Tensor(Array data, int[] shape) : this(new Storage(data), shape, ShapeUtil.Count(shape, "tensor"))
    {
        if (data.Length < Length)
            throw new ArgumentException($"tensor: storage holds {data.Length} elements, shape {ShapeUtil.Format(shape)} needs {Length}");
    }

    public DType DType => storage.DType;
    /// <summary>Number of elements (PyTorch's numel).</summary>
    public int Length { get; }
    public int Rank => shape.Length;
    public ReadOnlySpan<int> Shape => shape;
    /// <summary>Step in storage elements per index of each dimension (PyTorch's stride()).</summary>
    public ReadOnlySpan<int> Strides => strides;
    /// <summary>Index of the first element in the storage (PyTorch's storage_offset()).</summary>
    public int StorageOffset => offset;
    /// <summary>Whether the elements lie in row-major order without gaps, so kernels can read them as one span.</summary>
    public bool IsContiguous { get; }
    /// <summary>Count of in-place modifications of this tensor's storage (PyTorch's <c>_version</c>, shared by views).</summary>
    public int Version => storage.Version;
    /// <summary>Whether both tensors are views of the same memory.</summary>
    public bool SharesStorageWith(Tensor other) => ReferenceEquals(storage, other.storage);

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

    /// <summary>The graph node that produced this tensor, or null for a leaf (PyTorch's grad_fn).</summary>
    public Function? GradFn { get; internal set; }

    public bool IsLeaf => GradFn is null;

    /// <summary>Name of the op that produced this tensor (null for leaves), as in PyTorch's grad_fn.</summary>
    public string? GradFnName => GradFn?.Name;

    internal void BumpVersion() => Interlocked.Increment(ref storage.Version);

    /// <summary>
    /// Fill(0), deferred when this tensor is its whole storage: the zeros are written when the memory is next used,
    /// unless a kernel that overwrites every element takes them on first (<see cref="TakePendingZero"/>).
    /// </summary>
    internal void ZeroLater()
    {
        // A span a user holds (AsFloatSpan) reads the memory without asking: such storage is zeroed at once.
        if (!CoversStorage || storage.Exposed) { Fill(0); return; }
        storage.ZeroLater();
        BumpVersion();
    }

    /// <summary>
    /// True when this tensor's elements are a pending zero and the kernel's inputs <paramref name="a"/>, <paramref name="b"/> do not share its memory; the
    /// caller must then write every element, and on failure call <see cref="ZeroLater"/> again.
    /// </summary>
    internal bool TakePendingZero(Tensor a, Tensor? b = null) =>
        CoversStorage && !SharesStorageWith(a) && (b is null || !SharesStorageWith(b)) && storage.TakePendingZero();

    bool CoversStorage => IsContiguous && offset == 0 && Length == storage.Length;

    /// <summary>
    /// The elements as one span, for kernels. Contiguous tensors only (an internal error otherwise: kernels read
    /// inputs through <see cref="Dense"/>, and write only into tensors they created).
    /// </summary>
    internal Span<T> Span<T>() where T : unmanaged
    {
        if (!IsContiguous) throw new InvalidOperationException($"internal error: a kernel was handed a strided tensor {ShapeUtil.Format(shape)} with strides {ShapeUtil.Format(strides)}");
        return Unsafe.As<T[]>(storage.Data).AsSpan(offset, Length);
    }

    /// <summary>This tensor if contiguous, else a contiguous copy of it (not recorded): what a kernel reads.</summary>
    internal Tensor Dense()
    {
        if (IsContiguous) return this;
        var t = Uninitialized(shape, DType);
        Backends.Backend.Current.Copy(this, t);
        return t;
    }

    /// <summary>The elements, as float32 (no copy; contiguous float32 tensors only).</summary>
    public Span<float> AsFloatSpan() => DType == DType.Float32 ? CheckedSpan<float>("AsFloatSpan")
        : throw new InvalidOperationException($"AsFloatSpan: tensor is {DType}; use AsDoubleSpan or To(DType.Float32)");

    public Span<double> AsDoubleSpan() => DType == DType.Float64 ? CheckedSpan<double>("AsDoubleSpan")
        : throw new InvalidOperationException($"AsDoubleSpan: tensor is {DType}; use AsFloatSpan or To(DType.Float64)");

    Span<T> CheckedSpan<T>(string op) where T : unmanaged => IsContiguous ? ExposedSpan<T>()
        : throw new InvalidOperationException($"{op}: tensor of shape {ShapeUtil.Format(shape)} is a strided view (strides {ShapeUtil.Format(strides)}); call Contiguous() first");

    Span<T> ExposedSpan<T>() where T : unmanaged
    {
        storage.Exposed = true;
        return Span<T>();
    }

    // ---- creation -------------------------------------------------------------------------------

    public static Tensor Empty(ReadOnlySpan<int> shape, DType dtype = DType.Float32)
    {
        var s = shape.ToArray();
        int n = ShapeUtil.Count(s, "tensor");
        return new Tensor(Storage.Allocate(n, dtype), s, n);
    }

    /// <summary>
    /// A contiguous tensor whose elements are not zeroed, for an op output that a kernel writes in full (the zeroing
    /// would be a wasted pass over memory). Never handed out before every element is written.
    /// </summary>
    /// <remarks>Shape arrays are never written after a tensor is made, so <paramref name="shape"/> is shared, not copied.</remarks>
    internal static Tensor Uninitialized(int[] shape, DType dtype)
    {
        int n = ShapeUtil.Count(shape, "tensor");
        return new Tensor(Storage.AllocateUninitialized(n, dtype), shape, n);
    }

    internal static Tensor EmptyLike(Tensor t) => Empty(t.shape, t.DType);

    /// <summary>
    /// Zeros as far as anyone can tell, written only when the memory is first read — or never, when a kernel that
    /// overwrites every element takes them on (<see cref="TakePendingZero"/>): a fresh gradient buffer.
    /// </summary>
    internal static Tensor ZerosLater(int[] shape, DType dtype)
    {
        var t = Uninitialized(shape, dtype);
        t.ZeroLater();
        return t;
    }

    /// <summary>A zeroed contiguous tensor that shares <paramref name="shape"/> (an array no one writes: another tensor's).</summary>
    internal static Tensor ZerosShared(int[] shape, DType dtype)
    {
        int n = ShapeUtil.Count(shape, "tensor");
        return new Tensor(Storage.Allocate(n, dtype), shape, n);
    }

    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Empty(shape, dtype);

    public static Tensor ZerosLike(Tensor t) => EmptyLike(t);

    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Full(shape, 1.0, dtype);

    public static Tensor OnesLike(Tensor t)
    {
        var r = ZerosShared(t.shape, t.DType);
        r.Fill(1.0);
        return r;
    }

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

    /// <summary>Storage index of the element at row-major position <paramref name="i"/>.</summary>
    internal int StorageIndex(int i)
    {
        if (IsContiguous) return offset + i;
        int at = offset;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            int n = shape[d];
            at += i % n * strides[d];
            i /= n;
        }
        return at;
    }

    internal double GetFlat(int i)
    {
        int at = StorageIndex(i);
        return storage.Data is float[] f ? f[at] : ((double[])storage.Data)[at];
    }

    /// <summary>Writes one element (internal: building new tensors; public writes go through the indexer, which counts a version).</summary>
    internal void SetFlat(int i, double v)
    {
        int at = StorageIndex(i);
        if (storage.Data is float[] f) f[at] = (float)v; else ((double[])storage.Data)[at] = v;
    }

    /// <summary>Element at the given indices (as double, whatever the dtype).</summary>
    [IndexerName("Element")]
    public double this[params int[] index]
    {
        get { int at = StorageAt(index); return storage.Data is float[] f ? f[at] : ((double[])storage.Data)[at]; }
        set
        {
            int at = StorageAt(index);
            if (storage.Data is float[] f) f[at] = (float)value; else ((double[])storage.Data)[at] = value;
            BumpVersion();
        }
    }

    int StorageAt(int[] index)
    {
        if (index.Length != shape.Length)
            throw new IndexOutOfRangeException($"index: {index.Length} indices for a tensor of shape {ShapeUtil.Format(shape)}");
        int at = offset;
        for (int d = 0; d < index.Length; d++)
        {
            int i = index[d] < 0 ? index[d] + shape[d] : index[d];
            if ((uint)i >= (uint)shape[d])
                throw new IndexOutOfRangeException($"index: {index[d]} is out of range for dimension {d} of shape {ShapeUtil.Format(shape)}");
            at += i * strides[d];
        }
        return at;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public double Item()
    {
        if (Length != 1) throw new InvalidOperationException($"item: tensor of shape {ShapeUtil.Format(shape)} has {Length} elements, not 1");
        return GetFlat(0);
    }

    public float[] ToFloatArray()
    {
        var d = Dense();
        var r = new float[Length];
        if (DType == DType.Float32) d.Span<float>().CopyTo(r);
        else TensorPrimitives.ConvertTruncating<double, float>(d.Span<double>(), r);
        return r;
    }

    public double[] ToDoubleArray()
    {
        var d = Dense();
        var r = new double[Length];
        if (DType == DType.Float64) d.Span<double>().CopyTo(r);
        else TensorPrimitives.ConvertChecked<float, double>(d.Span<float>(), r);
        return r;
    }

    /// <summary>Sets every element to <paramref name="value"/> in place (not recorded by autograd; through views too).</summary>
    public void Fill(double value)
    {
        if (IsContiguous)
        {
            if (DType == DType.Float32) Span<float>().Fill((float)value); else Span<double>().Fill(value);
        }
        else Backends.Backend.Current.Copy(Full([], value, DType).Expand(shape), this);
        BumpVersion();
    }

    /// <summary>Copies <paramref name="source"/>'s values into this tensor in place (same shape; not recorded; through views too).</summary>
    public void CopyFrom(Tensor source)
    {
        if (!ShapeUtil.Equal(shape, source.shape))
            throw new ArgumentException($"copy: shapes {ShapeUtil.Format(source.shape)} and {ShapeUtil.Format(shape)} differ");
        if (DType != source.DType)
        {
            var converted = Empty(source.shape, DType);
            var s = source.Dense();
            if (DType == DType.Float32) TensorPrimitives.ConvertTruncating<double, float>(s.Span<double>(), converted.Span<float>());
            else TensorPrimitives.ConvertChecked<float, double>(s.Span<float>(), converted.Span<double>());
            source = converted;
        }
        else if (SharesStorageWith(source)) source = source.CloneStorage();   // the two may overlap: copy out first
        Backends.Backend.Current.Copy(source, this);
        BumpVersion();
    }

    /// <summary>A contiguous copy with its own storage (not recorded).</summary>
    internal Tensor Copy() => CloneStorage();

    Tensor CloneStorage()
    {
        var t = Uninitialized(shape, DType);
        Backends.Backend.Current.Copy(this, t);
        return t;
    }

    /// <summary>A tensor sharing this one's memory with no history (PyTorch's detach): not a copy.</summary>
    public Tensor Detach() => new(storage, shape, strides, offset);

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
