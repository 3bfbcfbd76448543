using System.Numerics;

namespace Backprop.Optim;

/// <summary>
/// Adam (Kingma &amp; Ba) as torch.optim.Adam: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², with bias corrections
/// m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ); θ ← θ − η m̂/(√v̂ + ε). Weight decay adds λθ to g (L2); with
/// <c>decoupled</c> (AdamW) it shrinks θ ← θ(1 − ηλ) instead. With <c>amsgrad</c> the denominator uses the largest v
/// seen so far, v_max ← max(v_max, v), so a falling second moment never enlarges the step (Reddi et al.).
/// </summary>
public class Adam : Optimizer
{
    readonly Tensor?[] expAvg, expAvgSq, maxExpAvgSq;

    public Adam(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0, bool amsgrad = false) : this(parameters, learningRate, beta1, beta2, eps, weightDecay, decoupled: false, amsgrad) { }

    protected Adam(IEnumerable<Tensor> parameters, double learningRate, double beta1, double beta2, double eps, double weightDecay, bool decoupled, bool amsgrad)
        : base(parameters, learningRate)
    {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), $"Adam: betas must be in [0, 1), got ({beta1}, {beta2})");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Adam: weight decay must be ≥ 0");
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay; Decoupled = decoupled; Amsgrad = amsgrad;
        expAvg = new Tensor?[Parameters.Count];
        expAvgSq = new Tensor?[Parameters.Count];
        maxExpAvgSq = new Tensor?[Parameters.Count];
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    public bool Decoupled { get; }
    public bool Amsgrad { get; }

    protected override void Update<T>(int index, Span<T> param, Span<T> grad)
    {
        var m = (expAvg[index] ??= StateLike(index)).Span<T>();
        var v = (expAvgSq[index] ??= StateLike(index)).Span<T>();
        var vMax = Amsgrad ? (maxExpAvgSq[index] ??= StateLike(index)).Span<T>() : default;
        double c1 = 1 - Math.Pow(Beta1, Steps), c2 = 1 - Math.Pow(Beta2, Steps);
        // The same algebra as PyTorch's implementation, in one pass: weight decay as L2 (g + λθ) or decoupled (θ(1 − ηλ));
        // m ← β₁m + (1 − β₁)g ; v ← β₂v + (1 − β₂)g² ; v_max ← max(v_max, v) on the raw (not bias-corrected) v ;
        // θ ← θ − (η/c₁) · m / (√v/√c₂ + ε)
        bool decoupled = Decoupled && WeightDecay != 0;
        Kernels.Fused.AdamStep(param, grad, m, v, vMax, Amsgrad,
            l2: decoupled ? T.Zero : T.CreateChecked(WeightDecay), decay: decoupled ? T.CreateChecked(1 - LearningRate * WeightDecay) : T.One,
            T.CreateChecked(Beta1), T.CreateChecked(Beta2), T.CreateChecked(LearningRate / c1), T.CreateChecked(1 / Math.Sqrt(c2)), T.CreateChecked(Eps));
    }

    public override Dictionary<string, Tensor> StateDict()
    {
        var s = base.StateDict();
        Put(s, "exp_avg", expAvg);
        Put(s, "exp_avg_sq", expAvgSq);
        Put(s, "max_exp_avg_sq", maxExpAvgSq);
        return s;
    }

    public override void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        base.LoadStateDict(state);
        Take(state, "exp_avg", expAvg);
        Take(state, "exp_avg_sq", expAvgSq);
        Take(state, "max_exp_avg_sq", maxExpAvgSq);
    }
}

/// <summary>AdamW: Adam with decoupled weight decay θ ← θ(1 − ηλ) (Loshchilov &amp; Hutter), default λ = 0.01.</summary>
public sealed class AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
    double eps = 1e-8, double weightDecay = 0.01, bool amsgrad = false) : Adam(parameters, learningRate, beta1, beta2, eps, weightDecay, decoupled: true, amsgrad);
