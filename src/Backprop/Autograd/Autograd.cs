namespace Backprop;

/// <summary>Graph recording (define-by-run), the no-grad scope, and the reverse pass.</summary>
public static partial class Autograd
{
    // Flows with the logical call (across await), unlike a thread-static: a scope opened before an await still
    // holds after it, and the thread that started the method is not left in no-grad mode.
    static readonly AsyncLocal<bool> disabled = new();

    /// <summary>False inside a <see cref="NoGrad"/> scope: ops then record nothing.</summary>
    public static bool IsEnabled => !disabled.Value;

    /// <summary>Disables graph recording until the returned scope is disposed (<c>using var _ = Autograd.NoGrad();</c>).</summary>
    public static NoGradScope NoGrad() => new(enabled: false);

    /// <summary>Re-enables recording inside a no-grad region (PyTorch's enable_grad).</summary>
    public static NoGradScope EnableGrad() => new(enabled: true);

    /// <summary>Restores the previous recording state when disposed; disposing twice is harmless.</summary>
    public sealed class NoGradScope : IDisposable
    {
        readonly bool previous;
        bool disposed;
        internal NoGradScope(bool enabled)
        {
            previous = disabled.Value;
            disabled.Value = !enabled;
        }

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            disabled.Value = previous;
        }
    }

    // ---- recording ----------------------------------------------------------------------------

    /// <summary>Whether an op with these inputs records a node (so it can skip building its backward state).</summary>
    internal static bool Recording(Tensor a) => a.RequiresGrad && IsEnabled;
    internal static bool Recording(Tensor a, Tensor b) => (a.RequiresGrad || b.RequiresGrad) && IsEnabled;
    internal static bool Recording(Tensor a, Tensor b, Tensor? c) => (a.RequiresGrad || b.RequiresGrad || c is { RequiresGrad: true }) && IsEnabled;

    // ---- the reverse pass -----------------------------------------------------------------------

    internal static void Backward(Tensor root, Tensor? gradient, bool retainGraph)
    {
        var seed = Seed(root, gradient, "backward");
        var roots = oneRoot ??= new Tensor[1];
        var seeds = oneSeed ??= new Tensor[1];
        oneRoot = oneSeed = null;   // a nested pass (from a custom backward) takes fresh arrays
        roots[0] = root; seeds[0] = seed;
        try { Run(roots, seeds, retainGraph, capture: null); }
        finally
        {
            roots[0] = seeds[0] = null!;
            oneRoot = roots; oneSeed = seeds;
        }
    }

    /// <summary>
    /// Gradients of <paramref name="outputs"/> (weighted by <paramref name="gradOutputs"/>, default 1 for one-element
    /// outputs) with respect to <paramref name="inputs"/>, returned instead of accumulated: no tensor's
    /// <see cref="Tensor.Grad"/> is touched (PyTorch's torch.autograd.grad). An input the outputs do not depend on
    /// is an error, or gets null with <paramref name="allowUnused"/>.
    /// </summary>
    public static Tensor?[] Grad(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor>? gradOutputs = null,
        bool retainGraph = false, bool allowUnused = false)
    {
        if (outputs.Count == 0) throw new ArgumentException("grad: no outputs");
        if (gradOutputs is not null && gradOutputs.Count != outputs.Count)
            throw new ArgumentException($"grad: {gradOutputs.Count} gradients for {outputs.Count} outputs");
        foreach (var t in inputs)
            if (!t.RequiresGrad) throw new ArgumentException($"grad: input of shape {ShapeUtil.Format(t.shape)} does not require grad");
        var seeds = new Tensor[outputs.Count];
        for (int i = 0; i < outputs.Count; i++) seeds[i] = Seed(outputs[i], gradOutputs?[i], "grad");
        var capture = new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        foreach (var t in inputs) capture[t] = null;
        Run([.. outputs], seeds, retainGraph, capture);
        var result = new Tensor?[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            result[i] = capture[inputs[i]];
            if (result[i] is null && !allowUnused)
                throw new InvalidOperationException($"grad: input {i} (shape {ShapeUtil.Format(inputs[i].shape)}) is not used by the outputs; pass allowUnused: true to get null");
        }
        return result;
    }

    static Tensor Seed(Tensor root, Tensor? gradient, string op)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"{op}: the tensor does not require grad and has no graph (was it computed under NoGrad, or from inputs without RequiresGrad?)");
        if (gradient is null)
        {
            if (root.Length != 1)
                throw new InvalidOperationException($"{op}: an implicit gradient needs a one-element output, got shape {ShapeUtil.Format(root.shape)}; pass the upstream gradient");
            return Tensor.OnesLike(root);
        }
        if (!ShapeUtil.Equal(gradient.shape, root.shape) || gradient.DType != root.DType)
            throw new ArgumentException($"{op}: gradient of shape {ShapeUtil.Format(gradient.shape)} {gradient.DType} does not match output {ShapeUtil.Format(root.shape)} {root.DType}");
        return gradient;
    }

    [ThreadStatic] static Tensor[]? oneRoot, oneSeed;

    // Set while a pass runs on this thread: where gradients are captured instead of accumulated (Grad), or null.
    [ThreadStatic] static Dictionary<Tensor, Tensor?>? capturing;

    // The reverse pass's working sets, reused by the next pass on this thread (a nested pass, from inside a backward,
    // takes fresh ones), so a steady-state step does not allocate them again.
    [ThreadStatic] static WorkingSets? idle;

    sealed class WorkingSets
    {
        public readonly List<Tensor> Order = [];
        public readonly HashSet<Tensor> Visited = new(ReferenceEqualityComparer.Instance);
        public readonly Stack<(Tensor, int)> Stack = new();
        public readonly Dictionary<Tensor, Tensor> Pending = new(ReferenceEqualityComparer.Instance);
        public void Clear() { Order.Clear(); Visited.Clear(); Stack.Clear(); Pending.Clear(); }
    }

    static void Run(Tensor[] roots, Tensor[] seeds, bool retainGraph, Dictionary<Tensor, Tensor?>? capture)
    {
        var sets = idle ?? new WorkingSets();
        idle = null;
        try { Run(roots, seeds, retainGraph, capture, sets); }
        finally
        {
            sets.Clear();   // drop references so finished graphs can be collected
            idle = sets;
        }
    }

    static void Run(Tensor[] roots, Tensor[] seeds, bool retainGraph, Dictionary<Tensor, Tensor?>? capture, WorkingSets sets)
    {
        var order = TopologicalOrder(roots, sets);
        var pending = sets.Pending;
        for (int i = 0; i < roots.Length; i++)
            pending[roots[i]] = pending.TryGetValue(roots[i], out var e) ? e.Add(seeds[i]) : seeds[i];
        var outer = capturing;
        capturing = capture;
        using var _ = NoGrad();   // an async-local, so it also reaches work a custom backward starts on other threads
        try
        {
            foreach (var t in order)
            {
                if (!pending.Remove(t, out var g)) continue;
                if (capture is not null && capture.ContainsKey(t)) capture[t] = g.Copy();   // g may alias a seed or another gradient
                var node = t.GradFn;
                if (node is null)
                {
                    if (capture is null) AccumulateLeaf(t, g);
                    continue;
                }
                var grads = node.RunBackward(g);
                int count = Math.Min(node.InputCount, grads.Length);
                for (int i = 0; i < count; i++)
                {
                    var input = node.Input(i);
                    var gi = grads[i];
                    if (gi is null || !input.RequiresGrad) continue;
                    gi = SumTo(gi, input.shape, node.Name);
                    pending[input] = pending.TryGetValue(input, out var existing) ? existing.Add(gi) : gi;
                }
                if (!retainGraph) node.Free();
            }
        }
        finally
        {
            capturing = outer;
        }
    }

    /// <summary>
    /// The gradient buffer of a leaf that requires grad (created as zeros if absent), so an op's backward can add its
    /// contribution in place (e.g. a GEMM with accumulate) and return null for that input, saving a temporary.
    /// Equivalent to returning the contribution: leaf gradients are sums either way. Null (return the gradient)
    /// while <see cref="Grad"/> runs, which must leave every Grad untouched.
    /// </summary>
    internal static Tensor? LeafGradBuffer(Tensor t)
    {
        if (!t.RequiresGrad || t.GradFn is not null || capturing is not null) return null;
        return OwnGrad(t);
    }

    // The leaf's Grad, replaced by a pending zero when absent or unfit to accumulate into (another shape, dtype, a view).
    static Tensor OwnGrad(Tensor leaf)
    {
        if (leaf.Grad is null || !ShapeUtil.Equal(leaf.Grad.shape, leaf.shape) || leaf.Grad.DType != leaf.DType || !leaf.Grad.IsContiguous)
            leaf.Grad = Tensor.ZerosLater(leaf.shape, leaf.DType);
        return leaf.Grad;
    }

    static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        // The incoming gradient may alias another tensor (add passes g through), so the leaf keeps its own buffer. A new
        // one is a pending zero, so the gradient is copied into it in one pass (a zeroing pass and an add were three).
        var grad = OwnGrad(leaf);
        if (!grad.TakePendingZero(g)) Backends.Backend.Current.Axpy(1, g, grad);
        else   // zeroed by ZeroGrad, or new: g is the sum
            try { Backends.Backend.Current.Copy(g, grad); }
            catch { grad.ZeroLater(); throw; }
    }

    /// <summary>Tensors reachable from the roots through recorded ops, each before its inputs.</summary>
    static List<Tensor> TopologicalOrder(Tensor[] roots, WorkingSets sets)
    {
        var post = sets.Order;
        var visited = sets.Visited;
        var stack = sets.Stack;
        foreach (var root in roots)
        {
            if (!visited.Add(root)) continue;
            stack.Push((root, 0));
            while (stack.Count > 0)
            {
                var (t, next) = stack.Pop();
                var node = t.GradFn;
                if (node is not null && next < node.InputCount)
                {
                    stack.Push((t, next + 1));
                    var child = node.Input(next);
                    if (child.RequiresGrad && visited.Add(child)) stack.Push((child, 0));
                    continue;
                }
                post.Add(t);
            }
        }
        post.Reverse();
        return post;
    }

    /// <summary>
    /// Sums a gradient over the axes along which <paramref name="shape"/> was broadcast, so every operand
    /// receives a gradient of its own shape. The one place broadcasting is undone.
    /// </summary>
    internal static Tensor SumTo(Tensor g, int[] shape, string op)
    {
        if (ShapeUtil.Equal(g.shape, shape)) return g;
        int lead = g.Rank - shape.Length;
        if (lead < 0) throw new InvalidOperationException($"{op} backward: gradient shape {ShapeUtil.Format(g.shape)} has lower rank than input {ShapeUtil.Format(shape)}");
        var r = g;
        for (int axis = g.Rank - 1; axis >= 0; axis--)
        {
            int target = axis < lead ? 1 : shape[axis - lead];
            if (r.shape[axis] == target) continue;
            if (target != 1) throw new InvalidOperationException($"{op} backward: gradient shape {ShapeUtil.Format(g.shape)} does not broadcast from {ShapeUtil.Format(shape)}");
            r = Ops.SumAlong(r, axis, keepDim: true);
        }
        return r.ViewOf(shape);
    }
}

public sealed partial class Tensor
{
    /// <summary>
    /// Reverse-mode differentiation from this tensor: accumulates ∂this/∂leaf (weighted by
    /// <paramref name="gradient"/>, default 1 for a one-element tensor) into every leaf's <see cref="Grad"/>.
    /// The graph is freed afterwards unless <paramref name="retainGraph"/> is set, as in PyTorch.
    /// </summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) => Autograd.Backward(this, gradient, retainGraph);

    /// <summary>The same elements under a new shape of equal count, sharing memory when the layout allows (not recorded).</summary>
    internal Tensor ViewOf(ReadOnlySpan<int> newShape)
    {
        var s = newShape.ToArray();
        var src = Dense();
        return new Tensor(src.storage, s, ShapeUtil.ContiguousStrides(s), src.offset);
    }
}
