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
        this.data = data;
        DType = data switch
        {
            float[] => DType.Float32,
            double[] => DType.Float64,
            _ => throw new ArgumentException($"tensor storage must be float[] or double[], not {data.GetType().Name}"),
        };
    }

    public static Storage Allocate(int length, DType dtype)
    {
        Array? recycled = dtype == DType.Float32 ? LargeArrays.Rent<float>(length) : LargeArrays.Rent<double>(length);
        if (recycled is null) return new(dtype == DType.Float32 ? new float[length] : new double[length]);
        Array.Clear(recycled);
        return new(recycled);
    }

    /// <summary>Storage whose contents are whatever the heap held (for outputs a kernel overwrites in full).</summary>
    public static Storage AllocateUninitialized(int length, DType dtype) => new(dtype == DType.Float32
        ? LargeArrays.Rent<float>(length) ?? GC.AllocateUninitializedArray<float>(length)
        : LargeArrays.Rent<double>(length) ?? GC.AllocateUninitializedArray<double>(length));

    readonly Array data;
    volatile bool zeroPending;

    /// <summary>The elements (a pending <see cref="ZeroLater"/> is written out first, so every reader sees zeros).</summary>
    public Array Data
    {
        get
        {
            if (zeroPending) WritePendingZero();
            return data;
        }
    }

    public DType DType { get; }
    public int Version;

    /// <summary>Elements in the storage (without writing a pending zero).</summary>
    public int Length => data.Length;

    // ZeroGrad marks a gradient zero instead of writing it: the next backward pass then overwrites it (a product's
    // first term written, not added to zeros), which saves the zeroing pass and a read of the old values on every step.
    // Any other access writes the zeros first, so no reader can tell the difference.

    /// <summary>Set once a span of the memory has been handed to user code: its zeros are then written at once.</summary>
    public bool Exposed;

    /// <summary>Makes every element zero, written only when the memory is next read or partly written.</summary>
    public void ZeroLater() => zeroPending = true;

    /// <summary>True when the elements are a pending zero, which the caller takes on: it must write every element.</summary>
    public bool TakePendingZero()
    {
        if (!zeroPending) return false;
        lock (this)
        {
            bool pending = zeroPending;
            zeroPending = false;
            return pending;
        }
    }

    void WritePendingZero()
    {
        lock (this)   // once, and no thread reads the memory before it is cleared
        {
            if (!zeroPending) return;
            Array.Clear(data);
            zeroPending = false;
        }
    }
}
