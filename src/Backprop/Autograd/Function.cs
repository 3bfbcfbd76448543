namespace Backprop;

/// <summary>
/// A differentiable operation, as torch.autograd.Function: the node of the recorded graph. Every op is one sealed
/// subclass — its attributes as fields, the tensors its backward reads saved with <see cref="SaveForBackward(Tensor[])"/>,
/// and <see cref="Backward"/> mapping the output's gradient to its inputs' gradients, with the derivative as a
/// one-line comment. Users write custom ops the same way and call <see cref="Apply"/>.
/// <para>
/// Saved tensors are version-checked (an in-place change after saving makes backward throw, naming the op) and are
/// released, with the inputs, when a backward pass without <c>retainGraph</c> goes through the node.
/// </para>
/// </summary>
public abstract class Function
{
    // Inputs inline (most ops have one to three; no array per node), beyond three in an array.
    Tensor? input0, input1, input2;
    Tensor[]? inputsMore;
    int inputCount;
    // Saved tensors and their versions when saved; the first two inline, as most ops save one or two (no arrays per op).
    Tensor? saved0, saved1;
    int version0, version1, savedCount;
    Tensor[]? savedRest;
    int[]? versionsRest;

    /// <summary>The op's name in the graph and in error messages (e.g. "matmul").</summary>
    public abstract string Name { get; }

    /// <summary>The op's named attributes (axis, transpose flags, p, …), for graph printers and exporters.</summary>
    public virtual IEnumerable<(string Name, object Value)> Attributes => [];

    /// <summary>The tensors this node was applied to (empty once the node is freed).</summary>
    public IReadOnlyList<Tensor> Inputs
    {
        get
        {
            var r = new Tensor[inputCount];
            for (int i = 0; i < r.Length; i++) r[i] = Input(i);
            return r;
        }
    }

    internal int InputCount => inputCount;

    internal Tensor Input(int i) => inputsMore is not null ? inputsMore[i] : i switch { 0 => input0!, 1 => input1!, _ => input2! };

    /// <summary>True once a backward pass released the node's saved tensors.</summary>
    public bool IsFreed { get; private set; }

    /// <summary>
    /// Custom ops: computes the output from the inputs. Runs with recording off, so it may use any op; tensors the
    /// backward needs go to <see cref="SaveForBackward(Tensor[])"/>.
    /// </summary>
    protected virtual Tensor Forward(Tensor[] inputs) =>
        throw new NotSupportedException($"{GetType().Name}: override Forward to use Apply");

    /// <summary>The gradient of the loss with respect to each input (null where an input needs none), given the output's.</summary>
    protected abstract Tensor?[] Backward(Tensor gradOutput);

    /// <summary>Runs <see cref="Forward"/> and records this node when any input requires a gradient (one instance per call).</summary>
    public Tensor Apply(params Tensor[] inputs)
    {
        if (inputCount != 0 || IsFreed) throw new InvalidOperationException($"{Name}: a Function instance is applied once; create a new one per call");
        Tensor y;
        using (Autograd.NoGrad()) y = Forward(inputs);
        if (Array.IndexOf(inputs, y) >= 0) y = y.Detach();   // never rewire an input's own history
        return Array.Exists(inputs, t => t.RequiresGrad) && Autograd.IsEnabled ? Attach(y, inputs) : y;
    }

    /// <summary>Keeps a tensor for <see cref="Backward"/>, noting its version.</summary>
    protected void SaveForBackward(Tensor a) { Clear(); Keep(0, a); savedCount = 1; }

    /// <summary>Keeps two tensors for <see cref="Backward"/>, noting their versions.</summary>
    protected void SaveForBackward(Tensor a, Tensor b) { Clear(); Keep(0, a); Keep(1, b); savedCount = 2; }

    /// <summary>Keeps tensors for <see cref="Backward"/>, noting their versions.</summary>
    protected void SaveForBackward(params Tensor[] tensors)
    {
        Clear();
        if (tensors.Length > 2) { savedRest = new Tensor[tensors.Length - 2]; versionsRest = new int[tensors.Length - 2]; }
        for (int i = 0; i < tensors.Length; i++) Keep(i, tensors[i]);
        savedCount = tensors.Length;
    }

    void Keep(int i, Tensor t)
    {
        switch (i)
        {
            case 0: saved0 = t; version0 = t.Version; break;
            case 1: saved1 = t; version1 = t.Version; break;
            default: savedRest![i - 2] = t; versionsRest![i - 2] = t.Version; break;
        }
    }

    void Clear() { saved0 = saved1 = null; savedRest = null; versionsRest = null; savedCount = 0; }

    /// <summary>The i-th tensor given to <see cref="SaveForBackward(Tensor)"/>.</summary>
    protected Tensor Saved(int i) => (uint)i < (uint)savedCount
        ? i == 0 ? saved0! : i == 1 ? saved1! : savedRest![i - 2]
        : throw new InvalidOperationException($"{Name}: saved tensor {i} is not available (was it saved, or was the graph freed?)");

    /// <summary>Whether input <paramref name="i"/> takes a gradient (skip computing the others).</summary>
    protected bool NeedsInputGrad(int i) => i < inputCount && Input(i).RequiresGrad;

    /// <summary>
    /// Where the engine accumulates input <paramref name="i"/>'s gradient when that input is a leaf (its Grad, created
    /// as zeros if needed), so a backward can add its contribution in place — e.g. a GEMM with accumulate — and
    /// return null for that input. Null when the gradient must be returned (a non-leaf input, or Autograd.Grad).
    /// </summary>
    protected Tensor? AccumulationBuffer(int i) => i < inputCount ? Autograd.LeafGradBuffer(Input(i)) : null;

    /// <summary>Makes this node the producer of <paramref name="output"/>. For built-in ops, which compute first and record only when needed.</summary>
    internal Tensor Attach(Tensor output, Tensor a) { input0 = a; inputCount = 1; return Attached(output); }

    internal Tensor Attach(Tensor output, Tensor a, Tensor b) { input0 = a; input1 = b; inputCount = 2; return Attached(output); }

    internal Tensor Attach(Tensor output, Tensor a, Tensor b, Tensor c) { input0 = a; input1 = b; input2 = c; inputCount = 3; return Attached(output); }

    internal Tensor Attach(Tensor output, params Tensor[] inputs) => inputs.Length switch
    {
        1 => Attach(output, inputs[0]),
        2 => Attach(output, inputs[0], inputs[1]),
        3 => Attach(output, inputs[0], inputs[1], inputs[2]),
        _ => AttachAll(output, inputs),
    };

    Tensor AttachAll(Tensor output, Tensor[] inputs) { inputsMore = inputs; inputCount = inputs.Length; return Attached(output); }

    Tensor Attached(Tensor output)
    {
        output.GradFn = this;
        output.RequiresGrad = true;
        if (Autograd.IsAnomalyDetectionEnabled)
        {
            RecordedIn = Autograd.ModulePath;
            Autograd.CheckFinite(output, "the output", this, Inputs);
        }
        return output;
    }

    /// <summary>In anomaly mode, the module path this node was recorded in.</summary>
    public string? RecordedIn { get; private set; }

    internal Tensor?[] RunBackward(Tensor g)
    {
        if (IsFreed)
            throw new InvalidOperationException($"backward: trying to backward through the graph a second time ('{Name}' was freed by an earlier Backward); " +
                "pass retainGraph: true to the first Backward if you need to go through the graph again");
        for (int i = 0; i < savedCount; i++)
        {
            var t = Saved(i);
            int at = i == 0 ? version0 : i == 1 ? version1 : versionsRest![i - 2];
            if (t.Version != at)
                throw new InvalidOperationException($"backward: a tensor needed for the gradient of '{Name}' (shape {ShapeUtil.Format(t.shape)}) " +
                    $"was modified by an in-place operation: it is at version {t.Version}, it was saved at version {at}");
        }
        var grads = Backward(g);
        if (Autograd.IsAnomalyDetectionEnabled)
            for (int i = 0; i < grads.Length; i++)
                if (grads[i] is { } gi) Autograd.CheckFinite(gi, $"the gradient for input {i}", this, Inputs);
        return grads;
    }

    /// <summary>Drops the saved tensors and inputs (keeping the name, for the error of a second pass).</summary>
    internal void Free()
    {
        IsFreed = true;
        Clear(); input0 = input1 = input2 = null; inputsMore = null; inputCount = 0;
        Release();
    }

    /// <summary>Ops holding tensors in fields other than the saved ones drop them here.</summary>
    protected virtual void Release() { }

    public override string ToString() => Attributes.Any()
        ? $"{Name}({string.Join(", ", Attributes.Select(a => $"{a.Name}={a.Value}"))})"
        : Name;
}
