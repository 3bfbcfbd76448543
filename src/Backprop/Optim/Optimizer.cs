using System.Numerics;

namespace Backprop.Optim;

/// <summary>
/// Base of the optimizers, as torch.optim: holds the parameters, zeroes their gradients and steps them in place.
/// Per-parameter state (momentum buffers, moments) is exposed as a state dict so training can resume.
/// </summary>
public abstract class Optimizer
{
    protected Optimizer(IEnumerable<Tensor> parameters, double learningRate) : this([new ParameterGroup(parameters)], learningRate) { }

    /// <summary>Parameters in groups whose learning rate and weight decay are multiples of the optimizer's (see <see cref="ParameterGroup"/>).</summary>
    protected Optimizer(IEnumerable<ParameterGroup> groups, double learningRate)
    {
        var list = groups.ToArray();
        foreach (var g in list)
            if (!(g.LearningRateScale >= 0) || !(g.WeightDecayScale >= 0))
                throw new ArgumentOutOfRangeException(nameof(groups), $"{GetType().Name}: a parameter group's learning-rate scale ({g.LearningRateScale}) and weight-decay scale ({g.WeightDecayScale}) must be ≥ 0");
        var members = list.Select(g => g.Parameters.ToArray()).ToArray();
        Parameters = members.SelectMany(m => m).ToArray();
        lrScales = members.SelectMany((m, i) => m.Select(_ => list[i].LearningRateScale)).ToArray();
        decayScales = members.SelectMany((m, i) => m.Select(_ => list[i].WeightDecayScale)).ToArray();
        if (list.Length > 1 && Parameters.Distinct(ReferenceEqualityComparer.Instance).Count() != Parameters.Count)
            throw new ArgumentException($"{GetType().Name}: a parameter appears in more than one group");   // as torch.optim
        if (Parameters.Count == 0) throw new ArgumentException($"{GetType().Name}: no parameters to optimise");
        foreach (var p in Parameters)
        {
            // A frozen parameter (RequiresGrad off) is allowed, as in torch.optim: it has no gradient, so steps skip it.
            if (!p.IsLeaf) throw new ArgumentException($"{GetType().Name}: every parameter must be a leaf tensor (got one produced by {p.GradFn?.Name}); optimise its Detach() copy");
            if (!p.IsContiguous) throw new ArgumentException($"{GetType().Name}: parameter of shape {ShapeUtil.Format(p.Shape)} is a strided view; optimise a contiguous tensor (Contiguous().Detach())");
        }
        if (!(learningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be ≥ 0");
        LearningRate = learningRate;
        InitialLearningRate = learningRate;
    }

    public IReadOnlyList<Tensor> Parameters { get; }

    readonly double[] lrScales, decayScales;

    /// <summary>Parameter <paramref name="index"/>'s learning rate: the optimizer's times its group's scale.</summary>
    protected double LearningRateOf(int index) => LearningRate * lrScales[index];

    /// <summary>Parameter <paramref name="index"/>'s weight decay, given the optimizer's.</summary>
    protected double WeightDecayOf(int index, double weightDecay) => weightDecay * decayScales[index];

    /// <summary>Current learning rate (schedulers set it).</summary>
    public double LearningRate { get; set; }

    /// <summary>The learning rate the optimizer was created with (schedulers' base).</summary>
    public double InitialLearningRate { get; }

    /// <summary>Number of <see cref="Step"/> calls so far.</summary>
    public long Steps { get; protected set; }

    public void ZeroGrad()
    {
        for (int i = 0; i < Parameters.Count; i++) Parameters[i].Grad?.ZeroLater();   // written by the next backward pass, or on first read
    }

    /// <summary>Updates every parameter that has a gradient.</summary>
    public void Step()
    {
        Steps++;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (p.Grad is null) continue;
            var grad = p.Grad.Dense();
            if (p.DType == DType.Float32) Update<float>(i, p.Span<float>(), grad.Span<float>());
            else Update<double>(i, p.Span<double>(), grad.Span<double>());
            p.BumpVersion();   // an in-place update, as PyTorch counts it: a graph that saved p can no longer backward
        }
    }

    /// <summary>The update rule for parameter <paramref name="index"/>, in place, for either precision.</summary>
    protected abstract void Update<T>(int index, Span<T> param, Span<T> grad) where T : unmanaged, IFloatingPointIeee754<T>;

    Tensor?[]? scratch;

    /// <summary>∇ + λθ in a per-parameter scratch buffer, leaving the parameter's Grad untouched (as PyTorch).</summary>
    protected Span<T> GradWithDecay<T>(int index, Span<T> param, Span<T> grad, double weightDecay) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (weightDecay == 0) return grad;
        scratch ??= new Tensor?[Parameters.Count];
        var g = (scratch[index] ??= StateLike(index)).Span<T>();
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(param, T.CreateChecked(weightDecay), grad, g);
        return g;
    }

    /// <summary>A zero state tensor shaped like parameter <paramref name="index"/>.</summary>
    protected Tensor StateLike(int index) => Tensor.Zeros(Parameters[index].Shape, Parameters[index].DType);

    /// <summary>State by name (<c>{index}.{buffer}</c>, plus <c>step</c> and <c>lr</c>), to save and restore.</summary>
    public virtual Dictionary<string, Tensor> StateDict() => new()
    {
        ["step"] = Tensor.Scalar(Steps, DType.Float64),
        ["lr"] = Tensor.Scalar(LearningRate, DType.Float64),
    };

    public virtual void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        Steps = (long)Get(state, "step").Item();
        LearningRate = Get(state, "lr").Item();
    }

    protected static Tensor Get(IReadOnlyDictionary<string, Tensor> state, string key) =>
        state.TryGetValue(key, out var t) ? t : throw new ArgumentException($"optimizer state: '{key}' is missing");

    /// <summary>Saves per-parameter buffers under <c>{i}.{name}</c>.</summary>
    protected static void Put(Dictionary<string, Tensor> state, string name, Tensor?[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++) if (buffers[i] is Tensor b) state[$"{i}.{name}"] = b;
    }

    protected void Take(IReadOnlyDictionary<string, Tensor> state, string name, Tensor?[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++)
            if (state.TryGetValue($"{i}.{name}", out var t)) (buffers[i] ??= StateLike(i)).CopyFrom(t);
    }
}

/// <summary>
/// Parameters an optimizer treats alike, as a torch.optim param group; here the group's learning rate and weight decay are
/// multiples of the optimizer's, so one schedule drives every group (as LambdaLR does each group's own base rate). The
/// fast CIFAR-10 recipes train batch-norm biases at 64× the rate with 1/64 of the decay (the same shrink per step).
/// </summary>
public sealed record ParameterGroup(IEnumerable<Tensor> Parameters, double LearningRateScale = 1, double WeightDecayScale = 1);
