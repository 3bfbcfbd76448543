namespace Backprop;

/// <summary>
/// One recorded op: its inputs and how to map the output's gradient to the inputs' gradients. Most ops use a
/// closure (<see cref="Closure"/>); hot ops use a static function with state saved in the node's fields
/// (<see cref="Function"/>), which a <see cref="TensorPool"/> recycles so steady-state steps allocate nothing.
/// A gradient may come back in the broadcast (output) shape; the engine reduces it to the input's shape in
/// one place (<see cref="Autograd.SumTo"/>). A null gradient means "none", or "already added to the leaf's Grad".
/// </summary>
internal sealed class Node
{
    public Node(string name, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        Name = name; Inputs = inputs; Closure = backward; Grads = [];
    }

    public Node(string name, int inputs)
    {
        Name = name; Inputs = new Tensor[inputs]; Grads = new Tensor?[inputs];
    }

    public string Name { get; private set; }
    public Tensor[] Inputs { get; }
    public Func<Tensor, Tensor?[]>? Closure { get; }

    /// <summary>Static backward: reads the saved state, writes <see cref="Grads"/>.</summary>
    public Action<Node, Tensor>? Function { get; set; }
    public Tensor?[] Grads { get; }
    public Tensor? Saved0, Saved1;
    public int[]? SavedInts;

    public void Reset(string name)
    {
        Name = name; Function = null; Saved0 = Saved1 = null; SavedInts = null;
        Array.Clear(Inputs); Array.Clear(Grads);
    }

    public Tensor?[] Backward(Tensor g)
    {
        if (Closure is not null) return Closure(g);
        Array.Clear(Grads);
        Function!(this, g);
        return Grads;
    }
}

/// <summary>Graph recording (define-by-run), the no-grad scope, and the reverse pass.</summary>
public static class Autograd
{
    [ThreadStatic] static int noGradDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope: ops then record nothing.</summary>
    public static bool IsEnabled => noGradDepth == 0;

    /// <summary>Disables graph recording until the returned scope is disposed (<c>using var _ = Autograd.NoGrad();</c>).</summary>
    public static NoGradScope NoGrad()
    {
        noGradDepth++;
        return new NoGradScope(true);
    }

    public readonly struct NoGradScope : IDisposable
    {
        readonly bool active;
        internal NoGradScope(bool active) => this.active = active;
        public void Dispose() { if (active) noGradDepth--; }
    }

    static bool ShouldRecord(Tensor a) => noGradDepth == 0 && a.RequiresGrad;

    // ---- recording helpers used by ops ----------------------------------------------------------

    internal static Tensor Record(this Tensor output, string name, Tensor input, Func<Tensor, Tensor> backward)
    {
        if (!ShouldRecord(input)) return output;
        output.GradFn = new Node(name, [input], g => [backward(g)]);
        output.RequiresGrad = true;
        return output;
    }

    internal static Tensor Record(this Tensor output, string name, Tensor a, Tensor b, Func<Tensor, (Tensor?, Tensor?)> backward)
    {
        if (noGradDepth != 0 || !(a.RequiresGrad || b.RequiresGrad)) return output;
        output.GradFn = new Node(name, [a, b], g => { var (ga, gb) = backward(g); return [ga, gb]; });
        output.RequiresGrad = true;
        return output;
    }

    /// <summary>Whether an op with these inputs records a node (so it can skip building its backward state).</summary>
    internal static bool Recording(Tensor a) => noGradDepth == 0 && a.RequiresGrad;
    internal static bool Recording(Tensor a, Tensor b) => noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad);
    internal static bool Recording(Tensor a, Tensor b, Tensor? c) => noGradDepth == 0 && (a.RequiresGrad || b.RequiresGrad || c is { RequiresGrad: true });

    /// <summary>Records an op with a static backward; the caller fills the node's saved state. Call only when <see cref="Recording(Tensor)"/>.</summary>
    internal static Node RecordStatic(Tensor output, string name, Action<Node, Tensor> backward, Tensor a, Tensor? b = null, Tensor? c = null)
    {
        int n = c is not null ? 3 : b is not null ? 2 : 1;
        var node = TensorPool.NewNode(name, n);
        node.Inputs[0] = a;
        if (b is not null) node.Inputs[1] = b;
        if (c is not null) node.Inputs[2] = c;
        node.Function = backward;
        output.GradFn = node;
        output.RequiresGrad = true;
        return node;
    }

    internal static Tensor Record(this Tensor output, string name, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        if (noGradDepth != 0 || !Array.Exists(inputs, t => t.RequiresGrad)) return output;
        output.GradFn = new Node(name, inputs, backward);
        output.RequiresGrad = true;
        return output;
    }

    // ---- the reverse pass -----------------------------------------------------------------------

    internal static void Backward(Tensor root, Tensor? gradient)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("backward: the tensor does not require grad and has no graph (was it computed under NoGrad, or from inputs without RequiresGrad?)");
        if (gradient is null)
        {
            if (root.Length != 1)
                throw new InvalidOperationException($"backward: an implicit gradient needs a one-element output, got shape {ShapeUtil.Format(root.shape)}; pass the upstream gradient");
            gradient = Tensor.OnesLike(root);
        }
        else if (!ShapeUtil.Equal(gradient.shape, root.shape) || gradient.DType != root.DType)
            throw new ArgumentException($"backward: gradient of shape {ShapeUtil.Format(gradient.shape)} {gradient.DType} does not match output {ShapeUtil.Format(root.shape)} {root.DType}");

        var order = TopologicalOrder(root);
        var pending = pendingCache ??= new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        pending.Clear();
        pending[root] = gradient;
        using var _ = NoGrad();
        try
        {
            Reverse(order, pending);
        }
        finally
        {
            order.Clear();
            pending.Clear();
        }
    }

    static void Reverse(List<Tensor> order, Dictionary<Tensor, Tensor> pending)
    {
        foreach (var t in order)
        {
            if (!pending.Remove(t, out var g)) continue;
            if (t.GradFn is null)
            {
                AccumulateLeaf(t, g);
                continue;
            }
            var node = t.GradFn;
            var grads = node.Backward(g);
            for (int i = 0; i < node.Inputs.Length; i++)
            {
                var input = node.Inputs[i];
                var gi = grads[i];
                if (gi is null || !input.RequiresGrad) continue;
                gi = SumTo(gi, input.shape, node.Name);
                pending[input] = pending.TryGetValue(input, out var existing) ? existing.Add(gi) : gi;
            }
        }
    }

    /// <summary>
    /// The gradient buffer of a leaf that requires grad (created as zeros if absent), so an op's backward can add its
    /// contribution in place (e.g. a GEMM with accumulate) and return null for that input, saving a temporary.
    /// Equivalent to returning the contribution: leaf gradients are sums either way.
    /// </summary>
    internal static Tensor? LeafGradBuffer(Tensor t)
    {
        if (!t.RequiresGrad || t.GradFn is not null) return null;
        if (t.Grad is null || !ShapeUtil.Equal(t.Grad.shape, t.shape) || t.Grad.DType != t.DType) t.Grad = Tensor.Persistent(t);
        return t.Grad;
    }

    static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        // The incoming gradient may alias another tensor (add passes g through), so the leaf keeps its own buffer.
        if (leaf.Grad is null || !ShapeUtil.Equal(leaf.Grad.shape, leaf.shape) || leaf.Grad.DType != leaf.DType) leaf.Grad = Tensor.Persistent(leaf);
        Kernels.Elementwise.AddInPlace(leaf.Grad, g);
    }

    // The reverse pass's working sets, kept per thread so a steady-state step allocates none of them.
    [ThreadStatic] static Dictionary<Tensor, Tensor>? pendingCache;
    [ThreadStatic] static List<Tensor>? orderCache;
    [ThreadStatic] static HashSet<Tensor>? visitedCache;
    [ThreadStatic] static Stack<(Tensor, int)>? stackCache;

    /// <summary>Tensors reachable from <paramref name="root"/> through recorded ops, each before its inputs.</summary>
    static List<Tensor> TopologicalOrder(Tensor root)
    {
        var post = orderCache ??= [];
        var visited = visitedCache ??= new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = stackCache ??= new Stack<(Tensor, int)>();
        post.Clear(); visited.Clear(); stack.Clear();
        visited.Add(root);
        stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn?.Inputs;
            if (inputs is not null && next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.RequiresGrad && visited.Add(child)) stack.Push((child, 0));
                continue;
            }
            post.Add(t);
        }
        post.Reverse();
        visited.Clear();   // drop references so finished graphs can be collected
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
            r = Kernels.Reduce.Sum(r, axis, keepDim: true);
        }
        return r.ReshapeStorage(shape);
    }
}

public sealed partial class Tensor
{
    /// <summary>
    /// Reverse-mode differentiation from this tensor: accumulates ∂this/∂leaf (weighted by
    /// <paramref name="gradient"/>, default 1 for a one-element tensor) into every leaf's <see cref="Grad"/>.
    /// </summary>
    public void Backward(Tensor? gradient = null) => Autograd.Backward(this, gradient);

    /// <summary>Same storage under a new shape of equal element count (no copy, not recorded).</summary>
    internal Tensor ReshapeStorage(ReadOnlySpan<int> newShape) => TensorPool.NewTensor(newShape, DType, data);
}
