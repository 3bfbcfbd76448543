using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Results of docs/derivations.md that no other test states: checked exactly, not by finite differences.</summary>
public class DerivationTests
{
    [Fact]
    public void BatchNorm_input_gradient_is_the_chain_rule_through_mean_and_variance()
    {
        // The textbook expansion through ∂L/∂x̂, ∂L/∂σ² and ∂L/∂μ, against the op's compact form
        // ∂L/∂x = γ/√(σ²+ε) ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)).
        int m = 7;
        var x = Leaf(Tensor.Normal([m, 4], 0.5, 2, new Generator(1), DType.Float64));
        var gamma = Tensor.Uniform([4], 0.5, 1.5, new Generator(2), DType.Float64);
        var beta = Tensor.Normal([4], 0, 1, new Generator(3), DType.Float64);
        var g = Tensor.Normal([m, 4], 0, 1, new Generator(4), DType.Float64);
        x.BatchNorm(gamma, beta).Backward(g);

        using var _ = Autograd.NoGrad();
        const double eps = 1e-5;
        var mu = x.Mean(0, keepDim: true);
        var c = x - mu;
        var variance = (c * c).Mean(0, keepDim: true);
        var dxhat = g * gamma;                                                                   // ∂L/∂x̂ = g ⊙ γ
        var dvar = (dxhat * c).Sum(0, keepDim: true) * (variance + eps).Pow(-1.5) * -0.5;     // ∂L/∂σ² = Σᵢ ∂L/∂x̂ᵢ ⊙ (xᵢ − μ) · (−½)(σ² + ε)^(−3/2)
        var dmu = (dxhat / (variance + eps).Sqrt()).Sum(0, keepDim: true).Neg()               // ∂L/∂μ = −Σᵢ ∂L/∂x̂ᵢ / √(σ²+ε) + ∂L/∂σ² · (−2/m) Σᵢ (xᵢ − μ)
            + dvar * c.Sum(0, keepDim: true) * (-2.0 / m);
        var dx = dxhat / (variance + eps).Sqrt() + dvar * c * (2.0 / m) + dmu / m;            // ∂L/∂xᵢ = ∂L/∂x̂ᵢ/√(σ²+ε) + ∂L/∂σ² · 2(xᵢ − μ)/m + ∂L/∂μ / m
        AllClose(dx, x.Grad!, 1e-12, "∂L/∂x");
    }

    [Fact]
    public void BatchNorm_input_gradient_sums_to_zero_and_is_orthogonal_to_xhat_up_to_eps()
    {
        // Σᵢ ∂L/∂xᵢ = 0: BN's output ignores a shift of a feature's batch, so a bias in front of BN has zero gradient.
        // Σᵢ x̂ᵢ ⊙ ∂L/∂xᵢ = γ ε/(σ² + ε)^{3/2} ⊙ Σᵢ gᵢ ⊙ x̂ᵢ: zero but for ε, as BN ignores a scaling of the batch too.
        var x = Leaf(Tensor.Normal([9, 5], 1, 0.01, new Generator(5), DType.Float64));   // σ² near ε, so the ε term shows
        var gamma = Tensor.Uniform([5], 0.5, 1.5, new Generator(6), DType.Float64);
        var beta = Tensor.Normal([5], 0, 1, new Generator(7), DType.Float64);
        var g = Tensor.Normal([9, 5], 0, 1, new Generator(8), DType.Float64);
        x.BatchNorm(gamma, beta).Backward(g);

        using var _ = Autograd.NoGrad();
        const double eps = 1e-5;
        var c = x - x.Mean(0, keepDim: true);
        var variance = (c * c).Mean(0);
        var xhat = c / (variance + eps).Reshape(1, 5).Sqrt();
        AllClose(Tensor.Zeros([5], DType.Float64), x.Grad!.Sum(0), 1e-10, "Σᵢ ∂L/∂xᵢ");   // round-off of nine terms of size γ/σ ≈ 100
        var expected = gamma * eps / (variance + eps).Pow(1.5) * (g * xhat).Sum(0);
        Assert.Contains(expected.ToDoubleArray(), v => Math.Abs(v) > 1e-2);
        AllClose(expected, (x.Grad! * xhat).Sum(0), 1e-9, "Σᵢ x̂ᵢ ⊙ ∂L/∂xᵢ");
    }

    [Fact]
    public void Half_squared_error_gradient_is_the_error_over_m()
    {
        var yHat = Leaf(Tensor.Normal([6, 3], 0, 1, new Generator(9), DType.Float64));
        var y = Tensor.Normal([6, 3], 0, 1, new Generator(10), DType.Float64);
        yHat.HalfSquaredError(y).Backward();
        AllClose((yHat.Detach() - y) / 6, yHat.Grad!, 1e-15, "∂L/∂ŷ");
    }

    [Fact]
    public void Softmax_cross_entropy_with_probability_targets_gives_prediction_minus_target_over_m()
    {
        var z = Leaf(Tensor.Normal([5, 4], 0, 2, new Generator(11), DType.Float64));
        var y = Tensor.Normal([5, 4], 0, 1, new Generator(12), DType.Float64).Softmax();   // rows sum to 1
        z.CrossEntropy(y).Backward();
        AllClose((z.Detach().Softmax() - y) / 5, z.Grad!, 1e-15, "∂L/∂z");
    }
}
