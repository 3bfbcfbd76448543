namespace Backprop;

/// <summary>
/// One recorded op: its inputs and a closure that maps the output's gradient to the inputs' gradients.
/// The closure may return a gradient in the broadcast (output) shape; the engine reduces it to the input's
/// shape in one place (<see cref="Autograd.SumTo"/>).
/// </summary>
internal sealed class Node(string name, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
{
    public string Name { get; } = name;
    public Tensor[] Inputs { get; } = inputs;
    public Func<Tensor, Tensor?[]> Backward { get; } = backward;
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
        var pending = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance) { [root] = gradient };
        using var _ = NoGrad();
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

    /// <summary>Tensors reachable from <paramref name="root"/> through recorded ops, each before its inputs.</summary>
    static List<Tensor> TopologicalOrder(Tensor root)
    {
        var post = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance) { root };
        var stack = new Stack<(Tensor T, int Next)>();
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
    internal Tensor ReshapeStorage(int[] newShape) => new(data, newShape);
}
