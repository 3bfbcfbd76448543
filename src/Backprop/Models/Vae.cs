using Backprop.Nn;

namespace Backprop.Models;

/// <summary>
/// The terms of a VAE's loss on one batch, each averaged over the batch (nats per sample): the returned
/// <see cref="Loss"/> (= reconstruction + KL, the negative ELBO) carries the graph; the parts are plain numbers.
/// </summary>
public sealed record VaeLoss(Tensor Loss, double Reconstruction, double Kl)
{
    public double NegativeElbo => Reconstruction + Kl;
}

/// <summary>
/// A variational autoencoder with Bernoulli pixels (Kingma &amp; Welling), as PyTorch's examples/vae:
/// encoder x → ReLU(fc1) → (μ, log σ²) by fc21 and fc22; decoder z → ReLU(fc3) → fc4 → logits of p(x|z).
/// Reparameterisation z = μ + σ ⊙ ε with ε ~ N(0, I) drawn from a <see cref="Generator"/> or passed in
/// (a gradient check holds it fixed). Loss per sample = Σ_pixels BCE(x, σ(logits)) + KL(q(z|x) ‖ N(0, I)),
/// averaged over the batch. The reconstruction term is computed from the logits (BceWithLogits), never from
/// σ(logits): in float32 σ saturates at exactly 0 or 1 and log(0) would cost −∞ (or a clamp's bias).
/// </summary>
public sealed class Vae : Module
{
    public Vae(int inputs, int hidden, int latent, Generator generator, DType dtype = DType.Float32)
    {
        if (inputs <= 0 || hidden <= 0 || latent <= 0) throw new ArgumentException($"Vae: sizes must be positive, got ({inputs}, {hidden}, {latent})");
        Inputs = inputs; Hidden = hidden; Latent = latent;
        Fc1 = RegisterModule("fc1", new Linear(inputs, hidden, generator, dtype: dtype));
        Fc21 = RegisterModule("fc21", new Linear(hidden, latent, generator, dtype: dtype));
        Fc22 = RegisterModule("fc22", new Linear(hidden, latent, generator, dtype: dtype));
        Fc3 = RegisterModule("fc3", new Linear(latent, hidden, generator, dtype: dtype));
        Fc4 = RegisterModule("fc4", new Linear(hidden, inputs, generator, dtype: dtype));
    }

    public int Inputs { get; }
    public int Hidden { get; }
    public int Latent { get; }
    public Linear Fc1 { get; }
    public Linear Fc21 { get; }
    public Linear Fc22 { get; }
    public Linear Fc3 { get; }
    public Linear Fc4 { get; }
    public DType DType => Fc1.Weight.DType;

    /// <summary>The parameters of q(z|x) = N(μ, diag σ²): μ and log σ², each (m, latent).</summary>
    public (Tensor Mu, Tensor LogVar) Encode(Tensor x)
    {
        var h = Fc1.Forward(x).Relu();
        return (Fc21.Forward(h), Fc22.Forward(h));
    }

    /// <summary>z = μ + σ ⊙ ε with σ = exp(½ log σ²): a differentiable function of μ and log σ² for fixed ε.</summary>
    public static Tensor Reparameterize(Tensor mu, Tensor logVar, Tensor eps) => mu + (logVar * 0.5).Exp() * eps;

    /// <summary>Logits of the Bernoulli means of p(x|z), (m, inputs).</summary>
    public Tensor DecodeLogits(Tensor z) => Fc4.Forward(Fc3.Forward(z).Relu());

    /// <summary>Decoder means σ(logits) in [0, 1].</summary>
    public Tensor Decode(Tensor z) => DecodeLogits(z).Sigmoid();

    /// <summary>Deterministic reconstruction: the decoder means at z = μ(x).</summary>
    public override Tensor Forward(Tensor input) => Decode(Encode(input).Mu);

    /// <summary>Standard-normal noise for a batch of <paramref name="rows"/>, in the model's dtype.</summary>
    public Tensor SampleNoise(int rows, Generator generator) => Tensor.Normal([rows, Latent], 0, 1, generator, DType);

    /// <summary>The loss with ε drawn from <paramref name="generator"/>.</summary>
    public VaeLoss Loss(Tensor x, Generator generator) => Loss(x, SampleNoise(x.Size(0), generator));

    /// <summary>The batch-averaged negative ELBO for inputs x in [0, 1] and the given noise ε (m, latent).</summary>
    public VaeLoss Loss(Tensor x, Tensor eps)
    {
        if (x.Rank != 2 || x.Size(1) != Inputs) throw new ArgumentException($"Vae: input {ShapeUtil.Format(x.Shape)} is not (m, {Inputs})");
        if (eps.Rank != 2 || eps.Size(0) != x.Size(0) || eps.Size(1) != Latent)
            throw new ArgumentException($"Vae: noise {ShapeUtil.Format(eps.Shape)} is not ({x.Size(0)}, {Latent})");
        int m = x.Size(0);
        var (mu, logVar) = Encode(x);
        var logits = DecodeLogits(Reparameterize(mu, logVar, eps));
        var reconstruction = logits.BceWithLogits(x) * Inputs;   // mean over m·784 pixels × 784 = (1/m) Σᵢ Σ_pixels BCE
        var kl = KlDivergence(mu, logVar) / m;
        var loss = reconstruction + kl;
        return new VaeLoss(loss, reconstruction.Item(), kl.Item());
    }

    /// <summary>
    /// KL(N(μ, diag σ²) ‖ N(0, I)) summed over the rows and latent dimensions: −½ Σ (1 + log σ² − μ² − σ²).
    /// A composition of ops, so autograd derives ∂/∂μ = μ and ∂/∂log σ² = ½(σ² − 1).
    /// </summary>
    public static Tensor KlDivergence(Tensor mu, Tensor logVar) => ((1.0 + logVar - mu * mu - logVar.Exp()).Sum()) * -0.5;
}
