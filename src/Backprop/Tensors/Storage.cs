namespace Backprop;

/// <summary>
/// The memory behind one or more tensors: a float[] or double[] that views (transpose, slice, expand, detach)
/// share. Plain managed memory: it lives exactly as long as some tensor references it, so a tensor a user holds
/// never changes behind their back. <see cref="Version"/> counts in-place writes, so autograd can tell when a
/// tensor saved for backward was modified after it was saved (PyTorch's version counter, shared by views).
/// </summary>
internal sealed class Storage
{
    public Storage(Array data)
    {
        Data = data;
        DType = data switch
        {
            float[] => DType.Float32,
            double[] => DType.Float64,
            _ => throw new ArgumentException($"tensor storage must be float[] or double[], not {data.GetType().Name}"),
        };
    }

    public static Storage Allocate(int length, DType dtype) => new(dtype == DType.Float32 ? new float[length] : new double[length]);

    /// <summary>Storage whose contents are whatever the heap held (for outputs a kernel overwrites in full).</summary>
    public static Storage AllocateUninitialized(int length, DType dtype) => new(dtype == DType.Float32
        ? GC.AllocateUninitializedArray<float>(length) : GC.AllocateUninitializedArray<double>(length));

    public Array Data { get; }
    public DType DType { get; }
    public int Version;
}
