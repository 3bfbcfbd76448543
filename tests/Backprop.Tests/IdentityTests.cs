using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Analytic identities from the derivations, checked exactly (not by finite differences).</summary>
public class IdentityTests
{
    static readonly Generator Gen = new(42);

    [Fact]
    public void BatchNorm_gamma_gradient_is_xhat_and_beta_gradient_is_one()
    {
        var x = Tensor.Normal([6, 3], 1, 2, new Generator(1), DType.Float64);
        var gamma = Leaf(Tensor.Uniform([3], 0.5, 1.5, new Generator(2), DType.Float64));
        var beta = Leaf(Tensor.Normal([3], 0, 1, new Generator(3), DType.Float64));
        var y = x.BatchNorm(gamma, beta);
        y.Sum().Backward();   // upstream all ones: ∂Σy/∂γ = Σᵢ x̂ᵢ, ∂Σy/∂β = m

        var mu = x.Mean(0, keepDim: true);
        var xhat = (x - mu) / ((x - mu).Pow(2).Mean(0, keepDim: true) + 1e-5).Sqrt();
        AllClose(xhat.Sum(0), gamma.Grad!, 1e-12, "dγ");
        AllClose(Tensor.Full([3], 6, DType.Float64), beta.Grad!, 1e-12, "dβ");

        // per sample: ∂y_ij/∂γ_j = x̂_ij — pick one row with a one-hot upstream gradient
        gamma.Grad = null;
        var v = Tensor.Zeros([6, 3], DType.Float64); v[4, 1] = 1;
        x.BatchNorm(gamma, beta).Backward(v);
        Close(xhat[4, 1], gamma.Grad![1], 1e-12, "∂y/∂γ");
    }

    [Fact]
    public void Softmax_jacobian_is_diag_s_minus_s_sT()
    {
        var x = Leaf(Tensor.Normal([1, 5], 0, 1, Gen, DType.Float64));
        var s = x.Softmax().Detach();
        for (int i = 0; i < 5; i++)
        {
            x.Grad = null;
            var e = Tensor.Zeros([1, 5], DType.Float64); e[0, i] = 1;
            x.Softmax().Backward(e);   // row i of the Jacobian
            for (int j = 0; j < 5; j++)
                Close((i == j ? s[0, i] : 0) - s[0, i] * s[0, j], x.Grad![0, j], 1e-15, $"J[{i},{j}]");
        }
    }

    [Fact]
    public void Dropout_gradient_is_the_mask()
    {
        var x = Leaf(Tensor.Normal([4, 7], 0, 1, Gen, DType.Float64));
        var mask = Ops.DropoutMask([4, 7], 0.4, new Generator(9), DType.Float64);
        var v = Tensor.Normal([4, 7], 0, 1, Gen, DType.Float64);
        x.Dropout(mask).Backward(v);
        AllClose(v * mask, x.Grad!, 0, "dx");
        foreach (var m in mask.ToDoubleArray()) Assert.True(m == 0 || Math.Abs(m - 1 / 0.6) < 1e-15);
    }

    [Fact]
    public void Dropout_module_is_identity_in_eval_and_unbiased_in_training()
    {
        var drop = new Nn.Dropout(0.25, new Generator(5));
        var x = Tensor.Ones([200, 100], DType.Float64);
        Close(1.0, drop.Forward(x).Mean().Item(), 0.02, "E[y]");
        drop.Eval();
        Assert.Same(x, drop.Forward(x));
    }

    [Fact]
    public void Softmax_cross_entropy_gradient_is_prediction_minus_onehot_over_m()
    {
        var z = Leaf(Tensor.Normal([5, 4], 0, 3, Gen, DType.Float64));
        int[] t = [0, 3, 1, 1, 2];
        z.CrossEntropy(t).Backward();
        var expected = z.Softmax().Detach();
        for (int i = 0; i < 5; i++) expected[i, t[i]] -= 1;
        AllClose(expected / 5, z.Grad!, 1e-15, "dz");
    }

    [Fact]
    public void A_tensor_used_twice_receives_both_gradients()
    {
        // y = a·x + b·x²: dy/dx = a + 2bx from two consumers of x
        var x = Leaf(Tensor.From([1.5, -2.0]));
        var y = (x * 3.0 + x * x * 0.5).Sum();
        y.Backward();
        AllClose(Tensor.From([3 + 1.5, 3 - 2.0]), x.Grad!, 1e-15);

        // the multi-task pattern: one branch feeds its own loss and the other branch
        var h = Leaf(Tensor.Normal([3, 2], 0, 1, Gen, DType.Float64));
        var ya = h * 2.0;
        var loss = ya.Sum() + (ya + h).Pow(2).Sum();
        loss.Backward();
        AllClose(2.0 + 2 * (3.0 * h.Detach()) * 3.0, h.Grad!, 1e-12);
    }

    [Fact]
    public void Cross_entropy_is_stable_for_huge_logits()
    {
        var z = Leaf(Tensor.From(new float[,] { { 1e4f, -1e4f, 0 }, { -1e4f, 1e4f, 1e4f } }));
        var loss = z.CrossEntropy([0, 0]);
        Close((0 + 2e4 + Math.Log(2)) / 2, loss.Item(), 1e-2);
        loss.Backward();
        Assert.All(z.Grad!.ToDoubleArray(), g => Assert.True(double.IsFinite(g)));
    }

    [Fact]
    public void Gradients_accumulate_on_leaves_until_zeroed()
    {
        var w = Leaf(Tensor.From([2.0, 3.0]));
        (w * w).Sum().Backward();
        (w * w).Sum().Backward();
        AllClose(Tensor.From([8.0, 12.0]), w.Grad!, 0);
        w.Grad!.Fill(0);
        (w * 5.0).Sum().Backward();
        AllClose(Tensor.From([5.0, 5.0]), w.Grad!, 0);
    }
}
