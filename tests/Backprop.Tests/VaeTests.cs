using System.Text.Json;
using Backprop.Cli;
using Backprop.Data;
using Backprop.Diagnostics;
using Backprop.Models;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>The variational autoencoder: its KL term in closed form, its gradients, its noise, and a short training run.</summary>
public class VaeTests
{
    [Fact]
    public void Kl_term_equals_the_closed_form_for_hand_picked_values()
    {
        // KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − ln σ²) per dimension.
        //   μ = 0, ln σ² = 0: 0.   μ = 1, ln σ² = 0: ½.   μ = 0, ln σ² = ln 4: ½(4 − 1 − ln 4) = 1.5 − ln 2.
        //   μ = −2, ln σ² = −1: ½(4 + e⁻¹ − 1 + 1) = 2 + ½e⁻¹.
        var mu = Helpers.D(new double[,] { { 0, 1 }, { 0, -2 } });
        var logVar = Helpers.D(new double[,] { { 0, 0 }, { Math.Log(4), -1 } });
        double expected = 0 + 0.5 + (1.5 - Math.Log(2)) + (2 + 0.5 * Math.Exp(-1));
        Helpers.Close(expected, Vae.KlDivergence(mu, logVar).Item(), 1e-15, "KL");
    }

    [Fact]
    public void Kl_gradient_is_mu_and_half_of_sigma_squared_minus_one()
    {
        // ∂KL/∂μ = μ, ∂KL/∂ln σ² = ½(σ² − 1): zero at the prior, so the KL pulls q towards N(0, I).
        var g = new Generator(3);
        var mu = Helpers.Leaf(Tensor.Normal([3, 4], 0, 1, g, DType.Float64));
        var logVar = Helpers.Leaf(Tensor.Normal([3, 4], 0, 1, g, DType.Float64));
        Vae.KlDivergence(mu, logVar).Backward();
        using var _ = Autograd.NoGrad();
        Helpers.AllClose(mu, mu.Grad!, 1e-15, "∂KL/∂μ");
        Helpers.AllClose((logVar.Exp() - 1.0) * 0.5, logVar.Grad!, 1e-15, "∂KL/∂ln σ²");
    }

    [Fact]
    public void Loss_is_summed_bce_plus_kl_averaged_over_the_batch()
    {
        var g = new Generator(8);
        var vae = new Vae(6, 5, 3, g, DType.Float64);
        var x = Tensor.Uniform([4, 6], 0, 1, g, DType.Float64);
        var eps = Tensor.Normal([4, 3], 0, 1, g, DType.Float64);
        var l = vae.Loss(x, eps);
        using var _ = Autograd.NoGrad();
        var (mu, logVar) = vae.Encode(x);
        var p = vae.Decode(Vae.Reparameterize(mu, logVar, eps));
        // Σ_pixels −[x ln p + (1 − x) ln(1 − p)], then Σ over the batch, / m
        double bce = -(x * p.Log() + (1.0 - x) * (1.0 - p).Log()).Sum().Item() / 4;
        double kl = -0.5 * (1.0 + logVar - mu * mu - logVar.Exp()).Sum().Item() / 4;
        Helpers.Close(bce, l.Reconstruction, 1e-12, "reconstruction");
        Helpers.Close(kl, l.Kl, 1e-12, "KL");
        Helpers.Close(bce + kl, l.Loss.Item(), 1e-12, "loss");
    }

    [Fact]
    public void Saturated_decoder_gives_a_finite_float32_loss_and_gradient()
    {
        // Logits of ±60 make σ exactly 0 or 1 in float32; computed from logits the loss stays finite and exact.
        var vae = new Vae(4, 3, 2, new Generator(1));
        vae.Fc4.Bias!.CopyFrom(Tensor.From([60f, -60f, 60f, -60f]));
        vae.Fc4.Weight.Fill(0);
        var x = Tensor.From([0f, 1f, 1f, 0f, 0f, 1f, 1f, 0f], [2, 4]);
        var l = vae.Loss(x, Tensor.Zeros([2, 2]));
        Assert.True(double.IsFinite(l.Reconstruction));
        Helpers.Close(120, l.Reconstruction, 1e-3, "two wrong saturated pixels per image cost 60 nats each");
        l.Loss.Backward();
        Assert.All(vae.Fc4.Bias.Grad!.ToFloatArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Gradient_check_row_passes_with_the_noise_held_fixed()
    {
        foreach (var e in GradCheckSuite.Run(Helpers.AllCases.Single(c => c.Name == "vae")))
            Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"vae: '{e.Tensor}' max relative error {e.MaxRelError:E2}");
    }

    [Fact]
    public void Reparameterization_is_mu_plus_sigma_times_eps()
    {
        var mu = Tensor.From([1.0, -2.0]);
        var logVar = Tensor.From([Math.Log(9), 0.0]);
        var z = Vae.Reparameterize(mu, logVar, Tensor.From([0.5, -1.0]));
        Helpers.AllClose(Tensor.From([1 + 3 * 0.5, -2 - 1.0]), z, 1e-15, "z");
    }

    [Fact]
    public void Normal_quantile_matches_known_values()
    {
        Helpers.Close(0, VaeCommand.NormalQuantile(0.5), 1e-12);
        Helpers.Close(1.959963984540054, VaeCommand.NormalQuantile(0.975), 1e-8);
        Helpers.Close(-2.326347874040841, VaeCommand.NormalQuantile(0.01), 1e-8);
    }

    [Fact]
    public void A_few_hundred_steps_on_mnist_lower_the_test_negative_elbo()
    {
        var data = new DatasetStore().Mnist(null);
        var prep = Preprocessor.Fit(data.Train, Normalization.Scale);
        var train = data.Train.Subset(0, 6400);
        var trainX = prep.Apply(train);
        var testX = prep.Apply(data.Test.Subset(0, 1000));
        var vae = new Vae(784, 64, 8, new Generator(0));
        var optimizer = new Adam(vae.Parameters(), 1e-3);
        var loader = new DataLoader(trainX, train.LabelsAsInts(), 64, shuffle: true, generator: new Generator(1));
        var noise = new Generator(2);

        var (rec0, kl0) = VaeCommand.Evaluate(vae, testX, new Generator(3));
        var (trainRec, trainKl, _) = VaeCommand.TrainEpoch(VaeCommand.CreateTrainer(vae, optimizer, noise), loader, 1);
        var (rec1, kl1) = VaeCommand.Evaluate(vae, testX, new Generator(3));
        // An untrained decoder predicts ≈ ½ everywhere: ≈ 784 ln 2 ≈ 543 nats. 100 steps reach well under 250.
        Assert.InRange(rec0 + kl0, 500, 600);
        Assert.True(rec1 + kl1 < 250, $"test −ELBO {rec0 + kl0:F1} → {rec1 + kl1:F1}");
        Assert.True(trainRec + trainKl < rec0 + kl0);
        Assert.True(kl1 > 0);
    }
}

/// <summary><c>backprop vae</c> end to end: a short run writes every file, including the 2-d manifold.</summary>
[Collection("console")]
public sealed class VaeCommandTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-vae-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void One_epoch_with_a_2d_latent_writes_the_run_folder()
    {
        string run = Path.Combine(dir, "run");
        var (code, output, err) = Helpers.RunCli("vae", "--epochs", "1", "--latent", "2", "--hidden", "64", "--batch-size", "256", "--out", run);
        Assert.True(code == 0, err);
        foreach (var f in new[] { "metrics.csv", "summary.json", "loss.png", "samples.png", "samples-noise.png", "reconstructions.png", "manifold.png", "model.safetensors" })
            Assert.True(new FileInfo(Path.Combine(run, f)).Length > 0, $"{f} is missing or empty");
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        double elbo = summary.RootElement.GetProperty("test_neg_elbo").GetDouble();
        Assert.InRange(elbo, 120, 250);   // one epoch of a 64-unit, 2-d VAE
        Assert.Contains("test negative ELBO", output);
    }
}
