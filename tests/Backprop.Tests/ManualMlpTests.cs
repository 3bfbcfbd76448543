using Backprop.Diagnostics;
using Backprop.Models;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// Linear → f → Linear → g with its hand-written backward: equal to the autograd engine's gradients to 1e-12 in
/// float64 on random shapes, equal to central differences (the gradient-check rows), and trainable in float32.
/// Each test named here checks a line of docs/derivations.md (Linear-f-Linear-g networks).
/// </summary>
public class ManualMlpTests
{
    static readonly ManualActivation[] All = [ManualActivation.Identity, ManualActivation.Relu, ManualActivation.Sigmoid];

    static Tensor Apply(ManualActivation a, Tensor z) => a switch
    {
        ManualActivation.Relu => z.Relu(),
        ManualActivation.Sigmoid => z.Sigmoid(),
        _ => z,
    };

    /// <summary>J built from the library's ops, so autograd derives every gradient the manual pass writes by hand.</summary>
    static Tensor AutogradLoss(ManualMlpTask task, ManualActivation f, ManualActivation g, Tensor x, Tensor y, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        var yHat = Apply(g, Apply(f, x.Linear(w1, b1)).Linear(w2, b2));
        int m = x.Size(0), n = y.Size(1);
        return task == ManualMlpTask.Regression
            ? yHat.Mse(y, Reduction.Sum) / m        // (1/m) Σᵢ ‖ŷᵢ − yᵢ‖²
            : yHat.Bce(y) * n;                      // Bce averages over m·n elements; × n = (1/m) Σᵢ Σₖ
    }

    /// <summary>Largest |manual − autograd| over J, ∂J/∂x and the four parameter gradients, on random shapes.</summary>
    static double MaxDifferenceFromAutograd(ManualMlpTask task, ManualActivation f, ManualActivation g, int trials, ulong seed)
    {
        var rng = new Generator(seed);
        double worst = 0;
        for (int t = 0; t < trials; t++)
        {
            int m = 1 + rng.NextInt(8), nIn = 1 + rng.NextInt(7), h = 1 + rng.NextInt(9), nOut = 1 + rng.NextInt(5);
            var net = new ManualMlp(nIn, h, nOut, f, g, rng, DType.Float64);
            var x = Tensor.Normal([m, nIn], 0, 1, rng, DType.Float64);
            var y = task == ManualMlpTask.Regression ? Tensor.Normal([m, nOut], 0, 1, rng, DType.Float64) : Tensor.Uniform([m, nOut], 0, 1, rng, DType.Float64);

            net.ZeroGrad();
            var yHat = net.Forward(x);
            var (loss, dJdYHat) = ManualMlp.Loss(task, yHat, y);
            var dx = net.Backward(dJdYHat);

            var xa = Helpers.Leaf(x.Detach().Clone());
            Tensor w1 = Helpers.Leaf(net.W1.Detach().Clone()), b1 = Helpers.Leaf(net.B1.Detach().Clone()), w2 = Helpers.Leaf(net.W2.Detach().Clone()), b2 = Helpers.Leaf(net.B2.Detach().Clone());
            var j = AutogradLoss(task, f, g, xa, y, w1, b1, w2, b2);
            j.Backward();

            worst = Math.Max(worst, Math.Abs(loss - j.Item()));
            foreach (var (manual, auto) in new[] { (dx, xa.Grad!), (net.W1.Grad!, w1.Grad!), (net.B1.Grad!, b1.Grad!), (net.W2.Grad!, w2.Grad!), (net.B2.Grad!, b2.Grad!) })
            {
                Assert.Equal(auto.Shape.ToArray(), manual.Shape.ToArray());
                var a = auto.ToDoubleArray(); var b = manual.ToDoubleArray();
                for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
            }
        }
        return worst;
    }

    public static TheoryData<ManualActivation, ManualActivation> EveryPair()
    {
        var d = new TheoryData<ManualActivation, ManualActivation>();
        foreach (var f in All) foreach (var g in All) d.Add(f, g);
        return d;
    }

    [Theory]
    [MemberData(nameof(EveryPair))]
    public void Squared_error_gradients_equal_autograd_to_1e12_for_every_f_and_g(ManualActivation f, ManualActivation g)
    {
        double worst = MaxDifferenceFromAutograd(ManualMlpTask.Regression, f, g, trials: 40, seed: 11 + (ulong)f * 3 + (ulong)g);
        Assert.True(worst <= 1e-12, $"f={f}, g={g}: max |manual − autograd| = {worst:E2}");
    }

    [Theory]
    [InlineData(ManualActivation.Identity)]
    [InlineData(ManualActivation.Relu)]
    [InlineData(ManualActivation.Sigmoid)]
    public void Bce_gradients_equal_autograd_to_1e12_for_every_f_with_sigmoid_output(ManualActivation f)
    {
        double worst = MaxDifferenceFromAutograd(ManualMlpTask.Classification, f, ManualActivation.Sigmoid, trials: 40, seed: 101 + (ulong)f);
        Assert.True(worst <= 1e-12, $"f={f}: max |manual − autograd| = {worst:E2}");
    }

    [Theory]
    [InlineData("mlp_manual_regression")]
    [InlineData("mlp_manual_classification")]
    public void Manual_backward_matches_central_differences(string row)
    {
        foreach (var e in GradCheckSuite.Run(Helpers.AllCases.Single(c => c.Name == row)))
            Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"{row}: '{e.Tensor}' max relative error {e.MaxRelError:E2}");
    }

    [Fact]
    public void The_gradient_check_rows_see_only_the_hand_written_backward()
    {
        // The forward runs under NoGrad, so the only recorded node is the manual one: central differences in the rows
        // are compared with Backward(V ⊙ ∂J/∂ŷ), not with anything autograd derived.
        var g = new Generator(5);
        var net = ManualMlp.For(ManualMlpTask.Regression, 3, 4, 2, g, DType.Float64);
        var x = GradCheckSuite.Normal(g, 5, 3);
        var terms = net.LossTermsWithManualBackward(ManualMlpTask.Regression, x, Tensor.Normal([5, 2], 0, 1, g, DType.Float64));
        Assert.Equal("manual_mlp_loss", terms.GradFnName);
        Assert.Equal([5, 2], terms.Shape.ToArray());
        terms.Sum().Backward();
        Assert.NotNull(net.W1.Grad);
        Assert.NotNull(x.Grad);
    }

    [Fact]
    public void Regression_loss_is_the_per_sample_squared_norm_averaged_over_the_batch()
    {
        // ŷ − y = [[1, 2], [0, 3]]: ‖·‖² = 5 and 9, J = (5 + 9)/2 = 7, ∂J/∂ŷ = 2(ŷ − y)/m = ŷ − y.
        var yHat = Helpers.D(new double[,] { { 1, 2 }, { 0, 3 } });
        var y = Tensor.Zeros([2, 2], DType.Float64);
        var (loss, d) = ManualMlp.Loss(ManualMlpTask.Regression, yHat, y);
        Assert.Equal(7.0, loss);
        Helpers.AllClose(yHat, d, 0);
    }

    [Fact]
    public void Sigmoid_bce_output_residual_is_yhat_minus_y_over_m()
    {
        // docs/derivations.md (Linear-f-Linear-g networks): with g = σ and BCE, ∂J/∂z2 = (ŷ − y)/m — the σ′ cancels the BCE's denominator.
        var g = new Generator(9);
        var net = ManualMlp.For(ManualMlpTask.Classification, 4, 3, 2, g, DType.Float64);
        var x = Tensor.Normal([5, 4], 0, 1, g, DType.Float64);
        var y = Tensor.Uniform([5, 2], 0, 1, g, DType.Float64);
        net.ZeroGrad();
        var yHat = net.Forward(x);
        net.Backward(ManualMlp.Loss(ManualMlpTask.Classification, yHat, y).DJdYHat);
        using var _ = Autograd.NoGrad();
        Helpers.AllClose((yHat - y).Sum(0) / 5.0, net.B2.Grad!, 1e-14, "∂J/∂b2 = Σᵢ (ŷᵢ − yᵢ)/m");
    }

    [Fact]
    public void Backward_accumulates_until_zero_grad()
    {
        var g = new Generator(2);
        var net = ManualMlp.For(ManualMlpTask.Regression, 3, 4, 2, g, DType.Float64);
        var x = Tensor.Normal([4, 3], 0, 1, g, DType.Float64);
        var y = Tensor.Normal([4, 2], 0, 1, g, DType.Float64);
        var d = ManualMlp.Loss(ManualMlpTask.Regression, net.Forward(x), y).DJdYHat;
        net.Backward(d);
        var once = net.W1.Grad!.Clone();
        net.Backward(d);
        using var _ = Autograd.NoGrad();
        Helpers.AllClose(once * 2.0, net.W1.Grad!, 1e-15);
        net.ZeroGrad();
        Assert.All(net.W1.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    [Theory]
    [InlineData(ManualMlpTask.Regression)]
    [InlineData(ManualMlpTask.Classification)]
    public void Float32_agrees_with_float64_and_trains(ManualMlpTask task)
    {
        var g = new Generator(4);
        var net64 = ManualMlp.For(task, 6, 16, 3, g, DType.Float64);
        var net32 = ManualMlp.For(task, 6, 16, 3, new Generator(0), DType.Float32);
        net32.LoadStateDict(net64.StateDict());
        var x = Tensor.Normal([32, 6], 0, 1, g, DType.Float64);
        Tensor y;
        using (Autograd.NoGrad())
        {
            // A target the network can learn: a fixed random linear map of x (squashed to (0, 1) for BCE).
            var map = Tensor.Normal([3, 6], 0, 0.5, g, DType.Float64);
            y = x.Linear(map);
            if (task == ManualMlpTask.Classification) y = y.Sigmoid();
        }
        var x32 = x.To(DType.Float32); var y32 = y.To(DType.Float32);

        var (l64, d64) = ManualMlp.Loss(task, net64.Forward(x), y);
        var (l32, d32) = ManualMlp.Loss(task, net32.Forward(x32), y32);
        Helpers.Close(l64, l32, 1e-5, "loss");
        net64.Backward(d64); net32.Backward(d32);
        Assert.Equal(DType.Float32, net32.W1.Grad!.DType);
        Helpers.AllClose(net64.W1.Grad!, net32.W1.Grad!, 1e-5, "dW1");

        var opt = new Adam(net32.Parameters(), 1e-2);
        double first = l32, last = 0;
        for (int step = 0; step < 300; step++)
        {
            opt.ZeroGrad();
            var (l, d) = ManualMlp.Loss(task, net32.Forward(x32), y32);
            net32.Backward(d);
            opt.Step();
            last = l;
        }
        Assert.True(last < 0.5 * first || (task == ManualMlpTask.Classification && last < first - 0.05), $"{task}: loss {first} → {last}");
    }
}
