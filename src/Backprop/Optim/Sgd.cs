using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Optim;

/// <summary>
/// Stochastic gradient descent as torch.optim.SGD: g ← ∇ + λθ; with momentum μ, b ← μb + (1 − dampening)g
/// (b = g on the first step) and g ← b, or g ← g + μb for Nesterov; θ ← θ − η g.
/// </summary>
public sealed class Sgd : Optimizer
{
    readonly Tensor?[] momentumBuffers;

    public Sgd(IEnumerable<Tensor> parameters, double learningRate, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false) : this([new ParameterGroup(parameters)], learningRate, momentum, dampening, weightDecay, nesterov) { }

    /// <summary>SGD over parameter groups, each at its multiple of <paramref name="learningRate"/> and <paramref name="weightDecay"/>.</summary>
    public Sgd(IEnumerable<ParameterGroup> groups, double learningRate, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false) : base(groups, learningRate)
    {
        if (momentum < 0) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "SGD: momentum must be ≥ 0");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "SGD: weight decay must be ≥ 0");
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("SGD: Nesterov momentum needs momentum > 0 and zero dampening");
        Momentum = momentum; Dampening = dampening; WeightDecay = weightDecay; Nesterov = nesterov;
        momentumBuffers = new Tensor?[Parameters.Count];
    }

    public double Momentum { get; }
    public double Dampening { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }

    protected override void Update<T>(int index, Span<T> param, Span<T> grad)
    {
        T lr = T.CreateChecked(LearningRateOf(index));
        Span<T> d = GradWithDecay(index, param, grad, WeightDecayOf(index, WeightDecay));
        if (Momentum != 0)
        {
            T mu = T.CreateChecked(Momentum);
            bool first = momentumBuffers[index] is null;
            var buf = (momentumBuffers[index] ??= StateLike(index)).Span<T>();
            if (!first && !Nesterov)
            {
                Kernels.Fused.MomentumStep(param, buf, d, mu, T.CreateChecked(1 - Dampening), lr);   // the common case, in one pass
                return;
            }
            if (first) d.CopyTo(buf);
            else
            {
                TensorPrimitives.Multiply(buf, mu, buf);
                TensorPrimitives.MultiplyAdd(d, T.CreateChecked(1 - Dampening), buf, buf);
            }
            if (Nesterov)
            {
                // θ ← θ − η(d + μb), as two axpys so no scratch buffer is needed
                TensorPrimitives.MultiplyAdd(d, -lr, param, param);
                TensorPrimitives.MultiplyAdd(buf, -lr * mu, param, param);
                return;
            }
            d = buf;
        }
        TensorPrimitives.MultiplyAdd(d, -lr, param, param);
    }

    public override Dictionary<string, Tensor> StateDict()
    {
        var s = base.StateDict();
        Put(s, "momentum_buffer", momentumBuffers);
        return s;
    }

    public override void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        base.LoadStateDict(state);
        Take(state, "momentum_buffer", momentumBuffers);
    }
}
