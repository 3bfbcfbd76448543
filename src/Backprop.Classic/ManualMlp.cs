using Backprop.Nn;

namespace Backprop.Models;

/// <summary>The pointwise functions f and g of <see cref="ManualMlp"/>.</summary>
public enum ManualActivation { Identity, Relu, Sigmoid }

/// <summary>The two tasks of <see cref="ManualMlp"/>, each a loss with its derivative ∂J/∂ŷ.</summary>
public enum ManualMlpTask
{
    /// <summary>f = ReLU, g = identity; J = (1/m) Σᵢ ‖ŷᵢ − yᵢ‖² (squared norm per sample, mean over the m samples).</summary>
    Regression,
    /// <summary>f = σ, g = σ; J = −(1/m) Σᵢ Σₖ [yᵢₖ log ŷᵢₖ + (1 − yᵢₖ) log(1 − ŷᵢₖ)] (summed over outputs, mean over samples).</summary>
    Classification,
}

/// <summary>
/// Linear → f → Linear → g written out by hand, as a textbook <c>mlp.py</c>: <see cref="Forward"/> caches
/// z1, a1, z2, ŷ; <see cref="Backward(Tensor)"/> takes ∂J/∂ŷ and accumulates ∂J/∂W1, ∂J/∂b1, ∂J/∂W2, ∂J/∂b2 into the
/// parameters' <c>Grad</c> (so any optimizer can step them). No autograd: every matrix product is a kernel call
/// under <see cref="Autograd.NoGrad"/>. Weights are stored (out, in) as in PyTorch; rows of x are samples.
/// Both averages are over the m samples of the batch, not over all m·n_out elements: PyTorch's MSELoss and
/// BCELoss with reduction 'mean' equal J / n_out (the same when n_out = 1). Derivations: docs/derivations.md (Linear-f-Linear-g networks).
/// </summary>
public sealed class ManualMlp : Module
{
    /// <summary>What <see cref="Forward"/> saves for the backward pass.</summary>
    public sealed record Cache(Tensor X, Tensor Z1, Tensor A1, Tensor Z2, Tensor YHat);

    /// <summary>∂J/∂x and ∂J/∂θ for one backward pass.</summary>
    public sealed record Gradients(Tensor DX, Tensor DW1, Tensor Db1, Tensor DW2, Tensor Db2);

    Cache? cache;

    /// <summary>W1 (hidden, in), b1, W2 (out, hidden), b2 initialised as <see cref="Linear"/> does (uniform ±1/√fan_in).</summary>
    public ManualMlp(int inFeatures, int hidden, int outFeatures, ManualActivation f, ManualActivation g, Generator generator, DType dtype = DType.Float32)
    {
        F = f; G = g;
        var l1 = new Linear(inFeatures, hidden, generator, dtype: dtype);
        var l2 = new Linear(hidden, outFeatures, generator, dtype: dtype);
        W1 = RegisterParameter("W1", l1.Weight.Detach());
        B1 = RegisterParameter("b1", l1.Bias!.Detach());
        W2 = RegisterParameter("W2", l2.Weight.Detach());
        B2 = RegisterParameter("b2", l2.Bias!.Detach());
    }

    /// <summary>The textbook pairing for a task: regression ReLU/identity, classification σ/σ.</summary>
    public static ManualMlp For(ManualMlpTask task, int inFeatures, int hidden, int outFeatures, Generator generator, DType dtype = DType.Float32) => task switch
    {
        ManualMlpTask.Regression => new ManualMlp(inFeatures, hidden, outFeatures, ManualActivation.Relu, ManualActivation.Identity, generator, dtype),
        ManualMlpTask.Classification => new ManualMlp(inFeatures, hidden, outFeatures, ManualActivation.Sigmoid, ManualActivation.Sigmoid, generator, dtype),
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
    };

    public ManualActivation F { get; }
    public ManualActivation G { get; }
    public Tensor W1 { get; }
    public Tensor B1 { get; }
    public Tensor W2 { get; }
    public Tensor B2 { get; }

    /// <summary>ŷ for inputs (m, in); caches the intermediate values for <see cref="Backward(Tensor)"/>. Records no graph.</summary>
    public override Tensor Forward(Tensor input)
    {
        cache = Run(input);
        return cache.YHat;
    }

    /// <summary>
    /// Back-propagates ∂J/∂ŷ through the last <see cref="Forward"/>: adds each parameter's gradient to its Grad
    /// (micrograd's +=, so call ZeroGrad between steps) and returns ∂J/∂x.
    /// </summary>
    public Tensor Backward(Tensor dJdYHat)
    {
        var c = cache ?? throw new InvalidOperationException("ManualMlp.Backward: call Forward first");
        var d = Backward(c, dJdYHat);
        foreach (var (p, gp) in new[] { (W1, d.DW1), (B1, d.Db1), (W2, d.DW2), (B2, d.Db2) })
            p.Backward(gp);   // a leaf's backward: the engine adds gp into p.Grad
        return d.DX;
    }

    Cache Run(Tensor x)
    {
        if (x.Rank != 2 || x.Size(1) != W1.Size(1) || x.DType != W1.DType)
            throw new ArgumentException($"ManualMlp: input {Fmt(x.Shape)} {x.DType} does not match W1 {Fmt(W1.Shape)} {W1.DType}");
        using var _ = Autograd.NoGrad();
        var z1 = x.Linear(W1, B1);          // z1 = x W1ᵀ + b1
        var a1 = Apply(F, z1);              // a1 = f(z1)
        var z2 = a1.Linear(W2, B2);         // z2 = a1 W2ᵀ + b2
        var yHat = Apply(G, z2);            // ŷ = g(z2)
        return new Cache(x, z1, a1, z2, yHat);
    }

    /// <summary>The backward pass as a pure function of a cache and ∂J/∂ŷ (rows are samples).</summary>
    public Gradients Backward(Cache c, Tensor dJdYHat)
    {
        if (!dJdYHat.Shape.SequenceEqual(c.YHat.Shape) || dJdYHat.DType != c.YHat.DType)
            throw new ArgumentException($"ManualMlp.Backward: ∂J/∂ŷ {Fmt(dJdYHat.Shape)} does not match ŷ {Fmt(c.YHat.Shape)}");
        using var _ = Autograd.NoGrad();
        var dz2 = Derivative(G, dJdYHat, c.Z2, c.YHat);     // ∂J/∂z2 = ∂J/∂ŷ ⊙ g′(z2)
        var dW2 = dz2.MatMul(c.A1, transposeA: true);       // ∂J/∂W2 = (∂J/∂z2)ᵀ a1
        var db2 = dz2.Sum(0);                               // ∂J/∂b2 = Σᵢ (∂J/∂z2)ᵢ
        var da1 = dz2.MatMul(W2);                           // ∂J/∂a1 = (∂J/∂z2) W2
        var dz1 = Derivative(F, da1, c.Z1, c.A1);           // ∂J/∂z1 = ∂J/∂a1 ⊙ f′(z1)
        var dW1 = dz1.MatMul(c.X, transposeA: true);        // ∂J/∂W1 = (∂J/∂z1)ᵀ x
        var db1 = dz1.Sum(0);                               // ∂J/∂b1 = Σᵢ (∂J/∂z1)ᵢ
        var dx = dz1.MatMul(W1);                            // ∂J/∂x = (∂J/∂z1) W1
        return new Gradients(dx, dW1, db1, dW2, db2);
    }

    /// <summary>J and ∂J/∂ŷ for <paramref name="task"/>, in ŷ's dtype.</summary>
    public static (double Loss, Tensor DJdYHat) Loss(ManualMlpTask task, Tensor yHat, Tensor y)
    {
        var (terms, dJdYHat) = LossTerms(task, yHat, y);
        using var _ = Autograd.NoGrad();
        return (terms.Sum().Item(), dJdYHat);
    }

    /// <summary>
    /// The loss's terms ℓᵢₖ (m, n_out), J = Σᵢₖ ℓᵢₖ with the 1/m inside each term, and ∂J/∂ŷ. ℓᵢₖ depends on ŷᵢₖ
    /// alone, so ∂J/∂ŷᵢₖ = ∂ℓᵢₖ/∂ŷᵢₖ.
    /// </summary>
    public static (Tensor Terms, Tensor DJdYHat) LossTerms(ManualMlpTask task, Tensor yHat, Tensor y)
    {
        if (!yHat.Shape.SequenceEqual(y.Shape) || yHat.DType != y.DType || yHat.Rank != 2)
            throw new ArgumentException($"ManualMlp loss: ŷ {Fmt(yHat.Shape)} {yHat.DType} and y {Fmt(y.Shape)} {y.DType} must be the same 2-D shape and dtype");
        using var _ = Autograd.NoGrad();
        int m = yHat.Size(0);
        if (task == ManualMlpTask.Regression)
        {
            var diff = yHat - y;
            return (diff * diff / m, diff * (2.0 / m));                                          // ∂J/∂ŷ = 2(ŷ − y)/m
        }
        // Logs clamped at −100 as PyTorch's BCELoss, so a saturated ŷ of exactly 0 or 1 gives a finite loss.
        var logP = yHat.Log().Clamp(-100, double.MaxValue);
        var log1P = (1.0 - yHat).Log().Clamp(-100, double.MaxValue);
        var terms = (y * logP + (1.0 - y) * log1P) * (-1.0 / m);
        var dJ = (yHat - y) / (yHat * (1.0 - yHat)).Clamp(1e-12, double.MaxValue) / m;          // ∂J/∂ŷ = (ŷ − y) / (ŷ(1 − ŷ)) / m
        return (terms, dJ);
    }

    /// <summary>
    /// The loss terms ℓ (m, n_out) of <see cref="LossTerms"/> as a tensor whose recorded backward is this class's
    /// hand-written one, not autograd's: for an upstream V, ∂(Σ V ⊙ ℓ)/∂θ = Backward(V ⊙ ∂J/∂ŷ). Lets
    /// <see cref="GradCheck"/> measure the manual backward (J itself is the case V = 1).
    /// </summary>
    public Tensor LossTermsWithManualBackward(ManualMlpTask task, Tensor x, Tensor y)
    {
        var c = Run(x);
        var (terms, dJdYHat) = LossTerms(task, c.YHat, y);
        return new ManualLoss(this, c, terms, dJdYHat).Apply(x, W1, B1, W2, B2);
    }

    // A custom op whose backward is the hand-written one (torch.autograd.Function style, public API only).
    sealed class ManualLoss(ManualMlp net, Cache cache, Tensor terms, Tensor dJdYHat) : Function
    {
        public override string Name => "manual_mlp_loss";
        protected override Tensor Forward(Tensor[] inputs) => terms;
        protected override Tensor?[] Backward(Tensor v)
        {
            var d = net.Backward(cache, v * dJdYHat);
            return [d.DX, d.DW1, d.Db1, d.DW2, d.Db2];
        }
    }

    static string Fmt(ReadOnlySpan<int> shape) => "(" + string.Join(",", shape.ToArray()) + ")";

    static Tensor Apply(ManualActivation a, Tensor z) => a switch
    {
        ManualActivation.Identity => z,
        ManualActivation.Relu => z.Relu(),
        ManualActivation.Sigmoid => z.Sigmoid(),
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    // upstream ⊙ h′(z), with h′ from the saved output where that is exact: σ′ = σ(1 − σ); ReLU′ = [z > 0] (0 at the kink).
    static Tensor Derivative(ManualActivation a, Tensor upstream, Tensor z, Tensor h) => a switch
    {
        ManualActivation.Identity => upstream,
        ManualActivation.Relu => upstream * z.Gt(0),
        ManualActivation.Sigmoid => upstream * (h * (1.0 - h)),
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    protected override string ExtraRepr() =>
        $"in={W1.Size(1)}, hidden={W1.Size(0)}, out={W2.Size(0)}, f={F.ToString().ToLowerInvariant()}, g={G.ToString().ToLowerInvariant()}";
}
