namespace Backprop;

/// <summary>
/// Recycles tensor storage across training steps, so a steady-state step allocates (almost) nothing on the
/// managed heap and large activations never churn the large-object heap. Inside <see cref="Enter"/>, every new
/// tensor's storage is rented from the pool; when the scope ends, all of it returns for the next step.
/// Tensors created inside a scope must not be used after it ends — the <see cref="Training.Trainer"/> opens one
/// per step and reads only the loss and predictions inside it. Parameters, gradients and optimizer state are
/// allocated outside the pool (<see cref="Tensor.Persistent"/>), so they survive.
/// </summary>
public sealed class TensorPool
{
    [ThreadStatic] static TensorPool? active;

    readonly Dictionary<(DType, int), Stack<Array>> free = [];
    readonly List<Array> rented = [];
    readonly Stack<Tensor>[] freeTensors = [.. Enumerable.Range(0, 9).Select(_ => new Stack<Tensor>())];   // by rank
    readonly List<Tensor> rentedTensors = [];
    readonly Dictionary<int, Stack<int[]>> freeInts = [];
    readonly List<int[]> rentedInts = [];
    readonly Stack<Node>[] freeNodes = [new(), new(), new(), new()];   // by input count
    readonly List<Node> rentedNodes = [];

    /// <summary>Whether storage requests on this thread are being served by a pool.</summary>
    public static bool IsActive => active is not null;

    /// <summary>Serves this thread's tensor allocations from the pool until the scope is disposed.</summary>
    public Scope Enter()
    {
        if (active is not null) throw new InvalidOperationException("TensorPool: a pool scope is already active on this thread");
        active = this;
        return new Scope(this);
    }

    public readonly struct Scope : IDisposable
    {
        readonly TensorPool pool;
        internal Scope(TensorPool pool) => this.pool = pool;
        public void Dispose() => pool.Release();
    }

    /// <summary>Zeroed storage of exactly <paramref name="length"/> elements, from the active pool if any.</summary>
    internal static Array Allocate(int length, DType dtype)
    {
        var pool = active;
        if (pool is null || length == 0) return dtype == DType.Float32 ? new float[length] : new double[length];
        Array a;
        if (pool.free.TryGetValue((dtype, length), out var stack) && stack.Count > 0)
        {
            a = stack.Pop();
            Array.Clear(a);
        }
        else a = dtype == DType.Float32 ? new float[length] : new double[length];
        pool.rented.Add(a);
        return a;
    }

    /// <summary>
    /// A tensor of the given shape: over <paramref name="storage"/> when given (a view), else over new zeroed storage.
    /// Inside a scope both the object and its storage are recycled from earlier steps.
    /// </summary>
    internal static Tensor NewTensor(ReadOnlySpan<int> shape, DType dtype, Array? storage)
    {
        var pool = active;
        storage ??= Allocate(ShapeUtil.Count(shape, "tensor"), dtype);
        if (pool is null || shape.Length >= pool.freeTensors.Length) return new Tensor(storage, shape.ToArray());
        if (!pool.freeTensors[shape.Length].TryPop(out var t)) t = new Tensor(storage, shape.ToArray());
        else
        {
            shape.CopyTo(t.shape);   // a recycled tensor of this rank brings a shape array of the right length
            t.Reset(storage, t.shape);
        }
        pool.rentedTensors.Add(t);
        return t;
    }

    /// <summary>An int array of exactly <paramref name="length"/> (e.g. a batch's labels), recycled inside a scope.</summary>
    public static int[] RentInts(int length)
    {
        var pool = active;
        if (pool is null) return new int[length];
        if (!pool.freeInts.TryGetValue(length, out var stack) || !stack.TryPop(out var a)) a = new int[length];
        pool.rentedInts.Add(a);
        return a;
    }

    /// <summary>A graph node for an op with a static backward, recycled inside a scope.</summary>
    internal static Node NewNode(string name, int inputs)
    {
        var pool = active;
        if (pool is null || inputs >= pool.freeNodes.Length) return new Node(name, inputs);
        if (!pool.freeNodes[inputs].TryPop(out var n)) n = new Node(name, inputs);
        else n.Reset(name);
        pool.rentedNodes.Add(n);
        return n;
    }

    void Release()
    {
        active = null;
        foreach (var t in rentedTensors) freeTensors[t.Rank].Push(t);
        rentedTensors.Clear();
        foreach (var a in rentedInts)
        {
            if (!freeInts.TryGetValue(a.Length, out var stack)) freeInts[a.Length] = stack = new Stack<int[]>();
            stack.Push(a);
        }
        rentedInts.Clear();
        foreach (var n in rentedNodes) freeNodes[n.Inputs.Length].Push(n);
        rentedNodes.Clear();
        foreach (var a in rented)
        {
            var key = (a is float[] ? DType.Float32 : DType.Float64, a.Length);
            if (!free.TryGetValue(key, out var stack)) free[key] = stack = new Stack<Array>();
            stack.Push(a);
        }
        rented.Clear();
    }
}

public sealed partial class Tensor
{
    /// <summary>Zeros shaped like <paramref name="t"/> that outlive any pool scope (gradients, optimizer state).</summary>
    internal static Tensor Persistent(Tensor t) => new(t.DType == DType.Float32 ? new float[t.Length] : new double[t.Length], (int[])t.shape.Clone());
}
