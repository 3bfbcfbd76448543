namespace Backprop.Nn;

/// <summary>
/// Base of every layer and model, as torch.nn.Module: named parameters and buffers registered explicitly
/// (no reflection), submodules giving PyTorch-style dotted names (<c>0.weight</c>, <c>fc1.bias</c>),
/// train/eval mode and a state dict.
/// </summary>
public abstract class Module
{
    readonly List<(string Name, Tensor Tensor)> parameters = [];
    readonly List<(string Name, Tensor Tensor)> buffers = [];
    readonly List<(string Name, Module Module)> children = [];

    /// <summary>True in training mode (dropout active, batch-norm uses batch statistics).</summary>
    public bool Training { get; private set; } = true;

    public abstract Tensor Forward(Tensor input);

    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.RequiresGrad = true;
        parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>State that is saved but not trained (e.g. running statistics).</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        CheckName(name);
        buffers.Add((name, tensor));
        return tensor;
    }

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        children.Add((name, module));
        return module;
    }

    void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"{GetType().Name}: invalid name '{name}' (non-empty, no dots)");
        if (parameters.Exists(p => p.Name == name) || buffers.Exists(b => b.Name == name) || children.Exists(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name}: '{name}' is already registered");
    }

    public IEnumerable<(string Name, Module Module)> Children() => children;

    /// <summary>Parameters with dotted names, depth first in registration order.</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var (name, t) in parameters) yield return (prefix + name, t);
        foreach (var (name, m) in children)
            foreach (var p in m.NamedParameters(prefix + name + ".")) yield return p;
    }

    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, t) in buffers) yield return (prefix + name, t);
        foreach (var (name, m) in children)
            foreach (var b in m.NamedBuffers(prefix + name + ".")) yield return b;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Total number of trainable scalars.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Length);

    public Module Train(bool on = true)
    {
        Training = on;
        foreach (var (_, m) in children) m.Train(on);
        return this;
    }

    public Module Eval() => Train(false);

    static readonly AsyncLocal<bool> evalContext = new();

    /// <summary>
    /// Runs every module in eval mode within this logical flow (across await) until disposed, without changing any
    /// module's <see cref="Training"/> flag: how evaluation and inference run, so several threads can evaluate one
    /// model while it is set to train, and none of them touches another's view of it. Disposing twice is harmless.
    /// </summary>
    public static IDisposable EvalContext() => new EvalScope();

    /// <summary>Whether this module acts in training mode now: its flag, unless an <see cref="EvalContext"/> is active.</summary>
    protected bool IsTrainingNow => Training && !evalContext.Value;

    sealed class EvalScope : IDisposable
    {
        readonly bool previous = evalContext.Value;
        bool disposed;
        public EvalScope() => evalContext.Value = true;
        public void Dispose() { if (!disposed) { disposed = true; evalContext.Value = previous; } }
    }

    /// <summary>Sets every parameter's gradient to zero (keeping its buffer, so no allocation).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Grad?.ZeroLater();   // written by the next backward pass, or on first read
    }

    /// <summary>Parameters and buffers by dotted name, in registration order (maps one-to-one onto safetensors).</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (n, t) in NamedParameters()) d[n] = t;
        foreach (var (n, t) in NamedBuffers()) d[n] = t;
        return d;
    }

    /// <summary>Copies values into this module's tensors (converting dtype if needed); a PyTorch BatchNorm's num_batches_tracked is accepted.</summary>
    /// <param name="strict">When true, missing or unexpected names are errors.</param>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = StateDict();
        if (strict)
        {
            var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !own.ContainsKey(k) && !IsBatchCounter(k, own)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new ArgumentException($"load_state_dict: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}]");
        }
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out var source)) continue;
            if (!ShapeUtil.Equal(source.Shape, target.Shape))
                throw new ArgumentException($"load_state_dict: '{name}' has shape {ShapeUtil.Format(source.Shape)} in the state, {ShapeUtil.Format(target.Shape)} in the module");
            target.CopyFrom(source);
        }
    }

    // PyTorch's BatchNorm keeps num_batches_tracked, which only its momentum=None (cumulative average) mode reads;
    // Backprop's BatchNorm always uses a momentum, so a PyTorch state dict's counter is accepted and not stored.
    static bool IsBatchCounter(string key, Dictionary<string, Tensor> own) =>
        key.EndsWith("num_batches_tracked", StringComparison.Ordinal) && own.ContainsKey(key[..^"num_batches_tracked".Length] + "running_mean");

    public override string ToString() => Describe("");

    string Describe(string indent)
    {
        if (children.Count == 0) return ExtraRepr() is { Length: > 0 } e ? $"{GetType().Name}({e})" : $"{GetType().Name}()";
        var lines = children.Select(c => $"{indent}  ({c.Name}): {c.Module.Describe(indent + "  ")}");
        return $"{GetType().Name}(\n{string.Join("\n", lines)}\n{indent})";
    }

    /// <summary>The layer's settings for <see cref="ToString"/>, as PyTorch's extra_repr.</summary>
    protected virtual string ExtraRepr() => "";
}
