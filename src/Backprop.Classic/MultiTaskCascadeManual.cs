
namespace Backprop.Models;

/// <summary>Loss, both heads, and ∂L/∂ for every parameter (by state-dict name) and for the input x.</summary>
public sealed record MultiTaskGradients(double Loss, MultiTaskOutput Output, IReadOnlyDictionary<string, Tensor> Parameters, Tensor Input);

/// <summary>
/// The multi-task cascade network (<see cref="MultiTaskCascade"/>) with feed-forward and back-propagation written
/// out by hand, vectorised over the batch: rows are samples, θ is stored (out, in) as in Linear, so a layer is
/// z = x θᵀ + b and its residual δ = ∂L/∂z gives ∂L/∂θ = δᵀx, ∂L/∂b = Σᵢ δᵢ, ∂L/∂x = δ θ (θᵀδ per column sample).
/// Parameters use the module's state-dict names (fc1a.weight = θ1a, bn1b.weight = γ, …), so <see cref="From"/>
/// shares one set of tensors between the two implementations. The derivation is in docs/derivations.md.
/// </summary>
public sealed class MultiTaskCascadeManual
{
    public static readonly string[] ParameterNames =
        ["fc1a.weight", "fc1a.bias", "fc2a.weight", "fc2a.bias", "fc1b.weight", "fc1b.bias", "bn1b.weight", "bn1b.bias", "fc2b.weight", "fc2b.bias"];

    readonly IReadOnlyDictionary<string, Tensor> state;

    /// <param name="state">The ten parameters by name; <c>bn1b.running_mean</c>/<c>bn1b.running_var</c> if eval mode is wanted.</param>
    public MultiTaskCascadeManual(IReadOnlyDictionary<string, Tensor> state, bool batchNormBeforeRelu = false, bool cascade = true,
        double eps = 1e-5, double momentum = 0.1)
    {
        foreach (var name in ParameterNames)
            if (!state.ContainsKey(name)) throw new ArgumentException($"multitask (manual): parameter '{name}' is missing");
        var dtype = state["fc1a.weight"].DType;
        foreach (var name in ParameterNames)
            if (state[name].DType != dtype) throw new ArgumentException($"multitask (manual): '{name}' is {state[name].DType}, not {dtype} like fc1a.weight");
        int nYa = state["fc2a.weight"].Size(0), n1b = state["fc1b.weight"].Size(0);
        if (cascade && nYa != n1b) throw new ArgumentException($"multitask (manual): ⊕ needs Task A's {nYa} outputs to equal FC1B's {n1b} units");
        this.state = state;
        BatchNormBeforeRelu = batchNormBeforeRelu; Cascade = cascade; Eps = eps; Momentum = momentum;
    }

    /// <summary>The hand-written twin of <paramref name="model"/>, sharing its parameters and running statistics.</summary>
    public static MultiTaskCascadeManual From(MultiTaskCascade model) =>
        new(model.StateDict(), model.BatchNormBeforeRelu, model.Cascade, model.Bn1b.Eps, model.Bn1b.Momentum);

    public bool BatchNormBeforeRelu { get; }
    public bool Cascade { get; }
    public double Eps { get; }
    public double Momentum { get; }

    Tensor P(string name) => state[name];

    /// <summary>Every forward value the backward pass reads.</summary>
    sealed record Cache(Tensor X, Tensor Z1a, Tensor? Mask, Tensor D1a, Tensor YaHat, Tensor Z1b, Tensor BnIn, Tensor Xhat, Tensor InvStd,
        Tensor BnOut, Tensor S, Tensor Z2b);

    /// <summary>
    /// Feed-forward. Training: DP1A multiplies by <paramref name="dropoutMask"/> (none = no dropout) and BN1B uses
    /// batch statistics, moving the running ones if present; eval: no dropout, running statistics.
    /// </summary>
    public MultiTaskOutput Forward(Tensor x, Tensor? dropoutMask = null, bool training = true)
    {
        var c = Feed(x, dropoutMask, training);
        return new MultiTaskOutput(c.YaHat, c.Z2b);
    }

    Cache Feed(Tensor x, Tensor? mask, bool training)
    {
        if (x.Rank != 2 || x.Size(1) != P("fc1a.weight").Size(1) || x.DType != P("fc1a.weight").DType)
            throw new ArgumentException($"multitask (manual): input {Fmt(x.Shape)} {x.DType} does not match fc1a.weight {Fmt(P("fc1a.weight").Shape)} {P("fc1a.weight").DType}");
        using var _ = Autograd.NoGrad();
        var z1a = x.Linear(P("fc1a.weight"), P("fc1a.bias"));                     // z1a = x θ1aᵀ + b1a
        var a1a = z1a.Relu();                                                      // a1a = max(0, z1a)
        var d1a = mask is null ? a1a : a1a * mask;                                 // d1a = a1a ⊙ M,  Mⱼ = 0 or 1/(1 − p)
        var yaHat = d1a.Linear(P("fc2a.weight"), P("fc2a.bias"));                  // ŷa = d1a θ2aᵀ + b2a
        var z1b = x.Linear(P("fc1b.weight"), P("fc1b.bias"));                      // z1b = x θ1bᵀ + b1b
        var bnIn = BatchNormBeforeRelu ? z1b : z1b.Relu();                         // BN1B reads a1b = max(0, z1b), or z1b itself
        var (xhat, invStd) = Normalise(bnIn, training);                            // x̂ = (u − μ)/√(σ² + ε), μ, σ² over the batch
        var bnOut = xhat * P("bn1b.weight") + P("bn1b.bias");                     // BN1B(u) = γ ⊙ x̂ + β
        var h1b = BatchNormBeforeRelu ? bnOut.Relu() : bnOut;                      // h1b = BN1B(a1b), or max(0, BN1B(z1b))
        var s = Cascade ? h1b + yaHat : h1b;                                       // s = h1b ⊕ ŷa
        var z2b = s.Linear(P("fc2b.weight"), P("fc2b.bias"));                      // z2b = s θ2bᵀ + b2b;  ŷb = softmax(z2b)
        return new Cache(x, z1a, mask, d1a, yaHat, z1b, bnIn, xhat, invStd, bnOut, s, z2b);
    }

    (Tensor Xhat, Tensor InvStd) Normalise(Tensor u, bool training)
    {
        int m = u.Size(0), n = u.Size(1);
        state.TryGetValue("bn1b.running_mean", out var runningMean);
        state.TryGetValue("bn1b.running_var", out var runningVar);
        if (!training)
        {
            if (runningMean is null || runningVar is null) throw new InvalidOperationException("multitask (manual): eval mode needs bn1b.running_mean and bn1b.running_var");
            var inv = 1.0 / (runningVar + Eps).Sqrt();
            return ((u - runningMean) * inv, inv.Reshape(1, n));
        }
        if (m < 2) throw new ArgumentException($"multitask (manual): batch norm in training needs more than one sample, got {m}");
        var mu = u.Mean(0, keepDim: true);                                         // μ = (1/m) Σᵢ uᵢ
        var centered = u - mu;
        var variance = (centered * centered).Mean(0, keepDim: true);              // σ² = (1/m) Σᵢ (uᵢ − μ)²  (biased)
        var invStd = 1.0 / (variance + Eps).Sqrt();
        if (runningMean is not null) runningMean.CopyFrom(runningMean * (1 - Momentum) + mu.Reshape(n) * Momentum);
        if (runningVar is not null) runningVar.CopyFrom(runningVar * (1 - Momentum) + variance.Reshape(n) * (Momentum * m / (m - 1)));
        return (centered * invStd, invStd);
    }

    /// <summary>
    /// Feed-forward in training mode and back-propagation of L = (1/m) Σᵢ [½‖ŷaᵢ − yaᵢ‖² − Σⱼ ybᵢʲ log ŷbᵢʲ]
    /// (rows of <paramref name="yb"/> one-hot or probabilities summing to 1).
    /// </summary>
    public MultiTaskGradients Gradients(Tensor x, Tensor ya, Tensor yb, Tensor? dropoutMask = null)
    {
        var c = Feed(x, dropoutMask, training: true);
        using var _ = Autograd.NoGrad();
        int m = x.Size(0);
        if (!ya.Shape.SequenceEqual(c.YaHat.Shape) || !yb.Shape.SequenceEqual(c.Z2b.Shape))
            throw new ArgumentException($"multitask (manual): targets ya {Fmt(ya.Shape)}, yb {Fmt(yb.Shape)} do not match outputs {Fmt(c.YaHat.Shape)}, {Fmt(c.Z2b.Shape)}");

        var ea = c.YaHat - ya;
        var logYb = c.Z2b.LogSoftmax();                                            // log ŷb, max-shifted (no overflow)
        double loss = LossValue(ea, logYb, yb, m);

        Tensor theta1a = P("fc1a.weight"), theta2a = P("fc2a.weight"), theta1b = P("fc1b.weight"), theta2b = P("fc2b.weight"), gamma = P("bn1b.weight");
        var d2b = (logYb.Exp() - yb) / m;                                                 // δ2b = (ŷb − yb)/m             (FC2B: softmax + cross-entropy)
        var dTheta2b = d2b.MatMul(c.S, transposeA: true);                                 // ∂L/∂θ2b = δ2bᵀ s
        var db2b = d2b.Sum(0);                                                            // ∂L/∂b2b = Σᵢ δ2bᵢ
        var dS = d2b.MatMul(theta2b);                                                     // δ⊕ = δ2b θ2b                  (θ2bᵀδ2b per sample; ⊕ copies it to both addends)
        var dBnOut = BatchNormBeforeRelu ? dS * c.BnOut.Gt(0) : dS;   // BN output residual: δ⊕, or δ⊕ ⊙ [BN1B(z1b) > 0]
        var dGamma = (dBnOut * c.Xhat).Sum(0);                                            // ∂L/∂γ = Σᵢ δᵢ ⊙ x̂ᵢ
        var dBeta = dBnOut.Sum(0);                                                        // ∂L/∂β = Σᵢ δᵢ
        var dBnIn = (dBnOut - dBnOut.Mean(0, keepDim: true)                               // δu = γ/√(σ²+ε) ⊙ (δ − mean(δ) − x̂ ⊙ mean(δ ⊙ x̂))   (BN1B, full)
            - c.Xhat * (dBnOut * c.Xhat).Mean(0, keepDim: true)) * (gamma * c.InvStd);
        var d1b = BatchNormBeforeRelu ? dBnIn : dBnIn * c.Z1b.Gt(0);  // δ1b = δu ⊙ [z1b > 0], or δu
        var dTheta1b = d1b.MatMul(x, transposeA: true);                                   // ∂L/∂θ1b = δ1bᵀ x
        var db1b = d1b.Sum(0);                                                            // ∂L/∂b1b = Σᵢ δ1bᵢ  (= 0 when BN1B precedes the ReLU)
        var d2a = Cascade ? ea / m + dS : ea / m;                                         // δ2a = (ŷa − ya)/m + δ⊕         (FC2A: its own error plus θ2bᵀδ2b)
        var dTheta2a = d2a.MatMul(c.D1a, transposeA: true);                               // ∂L/∂θ2a = δ2aᵀ d1a
        var db2a = d2a.Sum(0);                                                            // ∂L/∂b2a = Σᵢ δ2aᵢ
        var dD1a = d2a.MatMul(theta2a);                                                   // ∂L/∂d1a = δ2a θ2a
        var dA1a = c.Mask is null ? dD1a : dD1a * c.Mask;                                 // δdp = ∂L/∂d1a ⊙ M              (DP1A)
        var d1a = dA1a * c.Z1a.Gt(0);                                 // δ1a = δdp ⊙ [z1a > 0]
        var dTheta1a = d1a.MatMul(x, transposeA: true);                                   // ∂L/∂θ1a = δ1aᵀ x
        var db1a = d1a.Sum(0);                                                            // ∂L/∂b1a = Σᵢ δ1aᵢ
        var dx = d1a.MatMul(theta1a) + d1b.MatMul(theta1b);                               // ∂L/∂x = δ1a θ1a + δ1b θ1b

        var grads = new Dictionary<string, Tensor>
        {
            ["fc1a.weight"] = dTheta1a, ["fc1a.bias"] = db1a, ["fc2a.weight"] = dTheta2a, ["fc2a.bias"] = db2a,
            ["fc1b.weight"] = dTheta1b, ["fc1b.bias"] = db1b, ["bn1b.weight"] = dGamma, ["bn1b.bias"] = dBeta,
            ["fc2b.weight"] = dTheta2b, ["fc2b.bias"] = db2b,
        };
        return new MultiTaskGradients(loss, new MultiTaskOutput(c.YaHat, c.Z2b), grads, dx);
    }

    // L = (1/m) Σᵢ [½‖ŷaᵢ − yaᵢ‖² − Σⱼ ybᵢʲ log ŷbᵢʲ]
    static double LossValue(Tensor errorA, Tensor logYb, Tensor yb, int m) =>
        (0.5 * (errorA * errorA).Sum().Item() - (yb * logYb).Sum().Item()) / m;

    /// <summary>
    /// One training step's forward and backward: adds every parameter's gradient into its <see cref="Tensor.Grad"/>
    /// (as <c>loss.Backward()</c> would), so an optimizer can step. Returns the loss and both heads.
    /// </summary>
    public (double Loss, MultiTaskOutput Output) Backward(Tensor x, Tensor ya, Tensor yb, Tensor? dropoutMask = null)
    {
        var r = Gradients(x, ya, yb, dropoutMask);
        foreach (var (name, g) in r.Parameters)
            if (P(name).RequiresGrad) P(name).Backward(g);   // a leaf's backward: the engine adds g into its Grad
        return (r.Loss, r.Output);
    }

    /// <summary>
    /// The loss as one autograd node whose backward is this class's hand-written back-propagation (as a
    /// torch.autograd.Function), so the gradient-check table can compare it with central differences.
    /// </summary>
    public Tensor Loss(Tensor x, Tensor ya, Tensor yb, Tensor? dropoutMask = null) => LossAndOutputs(x, ya, yb, dropoutMask).Loss;

    /// <summary><see cref="Loss"/> and both heads' outputs of the same forward pass (training mode).</summary>
    public (Tensor Loss, MultiTaskOutput Output) LossAndOutputs(Tensor x, Tensor ya, Tensor yb, Tensor? dropoutMask = null)
    {
        Tensor[] inputs = [x, .. ParameterNames.Select(P)];
        if (!Autograd.IsEnabled || !Array.Exists(inputs, t => t.RequiresGrad))
        {
            var (yaHat, z2b) = Forward(x, dropoutMask);
            using var _ = Autograd.NoGrad();
            return (Tensor.Scalar(LossValue(yaHat - ya, z2b.LogSoftmax(), yb, x.Size(0)), x.DType), new MultiTaskOutput(yaHat, z2b));
        }
        var r = Gradients(x, ya, yb, dropoutMask);
        Tensor?[] grads = [r.Input, .. ParameterNames.Select(n => r.Parameters[n])];
        return (new ManualLoss(r.Loss, grads).Apply(inputs), r.Output);
    }

    // A custom op whose backward is the hand-written one (torch.autograd.Function style, public API only).
    sealed class ManualLoss(double loss, Tensor?[] grads) : Function
    {
        public override string Name => "multitask_manual";
        protected override Tensor Forward(Tensor[] inputs) => Tensor.Scalar(loss, inputs[0].DType);
        protected override Tensor?[] Backward(Tensor g) => [.. grads.Select(t => t?.Mul(g))];
    }

    static string Fmt(ReadOnlySpan<int> shape) => "(" + string.Join(",", shape.ToArray()) + ")";
}
