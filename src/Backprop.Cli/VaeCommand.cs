using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Backprop.Data;
using Backprop.Models;
using Backprop.Optim;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop vae</c>: trains a variational autoencoder on MNIST with Adam, reports the test-set negative ELBO each
/// epoch and writes samples, reconstructions, (for a 2-d latent) the learned manifold, curves and a summary.
/// </summary>
internal static class VaeCommand
{
    static readonly Option<int> Epochs = new("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 10 };
    static readonly Option<int> Latent = new("--latent") { Description = "Latent dimensions (2 also draws manifold.png)", DefaultValueFactory = _ => 20 };
    static readonly Option<int> Hidden = new("--hidden") { Description = "Hidden units of the encoder and of the decoder", DefaultValueFactory = _ => 400 };
    static readonly Option<double> Lr = new("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => 1e-3 };
    static readonly Option<int> BatchSize = new("--batch-size") { Description = "Minibatch size", DefaultValueFactory = _ => 128 };
    static readonly Option<ulong> Seed = new("--seed") { Description = "Seed for initialisation, shuffling and noise", DefaultValueFactory = _ => 0UL };
    static readonly Option<string?> Data = new("--data") { Description = "MNIST-format folder [default: data/mnist in the repo, else the cache]" };
    static readonly Option<string?> Out = new("--out") { Description = "Run folder [default: runs/mnist-vae-<timestamp>]" };

    const int Side = 28, Pixels = Side * Side;

    public static Command Create()
    {
        var cmd = new Command("vae", "Train a variational autoencoder on MNIST; report the test negative ELBO and draw samples and reconstructions")
        {
            Epochs, Latent, Hidden, Lr, BatchSize, Seed, Data, Out, RunFolder.OverwriteOption, Checkpoint.EveryOption, Checkpoint.ResumeOption, Checkpoint.StopAfterOption,
        };
        cmd.SetAction(r =>
        {
            var (every, resume, stop) = Checkpoint.Options(r);
            return Run(new Settings(Validate.Positive(r.GetValue(Epochs), "--epochs"), Validate.Positive(r.GetValue(Latent), "--latent"),
                Validate.Positive(r.GetValue(Hidden), "--hidden"), r.GetValue(Lr) is > 0 and var lr && double.IsFinite(lr) ? lr : throw new ArgumentException($"--lr: {r.GetValue(Lr)} must be positive"),
                Validate.Positive(r.GetValue(BatchSize), "--batch-size"), r.GetValue(Seed), r.GetValue(Data)), resume ?? r.GetValue(Out), r.GetValue(RunFolder.OverwriteOption),
                every, resume is not null, stop);
        });
        return cmd;
    }


    internal sealed record Settings(int Epochs, int Latent, int Hidden, double LearningRate, int BatchSize, ulong Seed, string? Data);

    /// <summary>One epoch's figures, nats per image.</summary>
    internal sealed record VaeEpoch(int Epoch, double TrainNegElbo, double TrainReconstruction, double TrainKl,
        double TestNegElbo, double TestReconstruction, double TestKl, double Seconds, double SamplesPerSecond);

    static int Run(Settings s, string? outDir, bool overwrite, int checkpointEvery = 1, bool resume = false, int stopAfter = int.MaxValue)
    {
        var total = Stopwatch.StartNew();
        var data = new DatasetStore().Mnist(s.Data);
        if (data.Train.Features != Pixels) throw new ArgumentException($"vae: expects 28×28 single-channel images, got {data.Train.Channels}×{data.Train.Height}×{data.Train.Width}");
        var prep = Preprocessor.Fit(data.Train, Normalization.Scale);   // pixels in [0, 1]: Bernoulli means
        var trainX = prep.Apply(data.Train);
        var testX = prep.Apply(data.Test);
        string run = outDir ?? Path.Combine("runs", $"mnist-vae-{DateTime.Now:yyyyMMdd-HHmmss}");
        if (!resume) RunFolder.Prepare(run, overwrite);

        var vae = new Vae(Pixels, s.Hidden, s.Latent, new Generator(s.Seed));
        var optimizer = new Adam(vae.Parameters(), s.LearningRate);
        var shuffling = new Generator(s.Seed + 1);
        var loader = new DataLoader(trainX, data.Train.LabelsAsInts(), s.BatchSize, shuffle: true, generator: shuffling);
        var noise = new Generator(s.Seed + 2);
        using var session = new Checkpoint.Session(run, "vae", vae, optimizer, (s with { Data = null }).ToString(), [shuffling, noise], checkpointEvery, stopAfter, s.Epochs)
            { ModelMetadata = ModelMetadata(vae) };
        var trainer = CreateTrainer(vae, optimizer, noise);

        ConsoleOutput.Line($"mnist: {data.Train.Count} train / {data.Test.Count} test images, pixels scaled to [0, 1]");
        ConsoleOutput.Line($"model: vae {Pixels}-{s.Hidden}-({s.Latent}+{s.Latent}) / {s.Latent}-{s.Hidden}-{Pixels} relu, {vae.ParameterCount():N0} parameters; adam lr {s.LearningRate}, batch {s.BatchSize}, {s.Epochs} epochs, seed {s.Seed}");
        ConsoleOutput.Line($"run folder: {run}");
        ConsoleOutput.Line("loss = −ELBO per image in nats (reconstruction BCE summed over pixels + KL); test: one ε per image, fixed seed");
        ConsoleOutput.Line($"{"epoch",5} {"train −ELBO",11} {"test −ELBO",10} {"test rec",9} {"test KL",8} {"seconds",8} {"samples/s",10}");

        var history = new List<VaeEpoch>();
        var csv = new StringWriter(CultureInfo.InvariantCulture);
        int done = 0;
        if (resume)
        {
            (done, string metrics) = session.Resume(schedule: null);
            csv.Write(metrics);
            history.AddRange(ParseHistory(metrics));
        }
        else csv.WriteLine("epoch,train_neg_elbo,train_reconstruction,train_kl,test_neg_elbo,test_reconstruction,test_kl,seconds,samples_per_second");
        for (int epoch = done + 1; epoch <= s.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            var (rec, kl, completed) = ConsoleOutput.WithProgress($"epoch {epoch}/{s.Epochs}", report => TrainEpoch(trainer, loader, epoch, report, session.Interrupted));
            if (!completed) return session.WriteModelOnInterrupt($"in epoch {epoch}");
            double seconds = clock.Elapsed.TotalSeconds;
            var (testRec, testKl) = Evaluate(vae, testX, new Generator(s.Seed + 3));
            var e = new VaeEpoch(epoch, rec + kl, rec, kl, testRec + testKl, testRec, testKl, seconds, loader.Samples / seconds);
            history.Add(e);
            ConsoleOutput.Line($"{epoch,5} {ConsoleOutput.F(e.TrainNegElbo, "0.00"),11} {ConsoleOutput.F(e.TestNegElbo, "0.00"),10} {ConsoleOutput.F(testRec, "0.00"),9} {ConsoleOutput.F(testKl, "0.00"),8} {ConsoleOutput.F(seconds, "0.0"),8} {e.SamplesPerSecond,10:N0}");
            csv.WriteLine(string.Join(",", epoch.ToString(CultureInfo.InvariantCulture), Validate.RoundTrip(e.TrainNegElbo), Validate.RoundTrip(rec), Validate.RoundTrip(kl), Validate.RoundTrip(e.TestNegElbo), Validate.RoundTrip(testRec), Validate.RoundTrip(testKl),
                seconds.ToString("F3", CultureInfo.InvariantCulture), e.SamplesPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
            Serialization.AtomicFile.WriteAllText(Path.Combine(run, "metrics.csv"), csv.ToString());
            if (session.AfterEpoch(epoch, csv.ToString())) return 0;
        }

        var last = history[^1];
        ConsoleOutput.Line($"test negative ELBO: {ConsoleOutput.F(last.TestNegElbo, "0.00")} nats per image ({data.Test.Count} images)");
        WriteImages(run, vae, testX, s);
        Plots.Curves(Path.Combine(run, "loss.png"), $"mnist vae (latent {s.Latent}): negative ELBO", "nats per image",
            [("train (running, during the epoch)", history.Select(h => h.TrainNegElbo).ToArray()), ("test", history.Select(h => h.TestNegElbo).ToArray())]);
        SafeTensors.Save(Path.Combine(run, "model.safetensors"), vae.StateDict(), ModelMetadata(vae));
        RunFolder.WriteSummary(Path.Combine(run, "summary.json"), "mnist", "vae", w =>
        {
            w.WriteStartObject();
            w.WriteNumber("latent", s.Latent);
            w.WriteNumber("hidden", s.Hidden);
            w.WriteString("activation", "relu");
            w.WriteString("optimizer", "adam");
            w.WriteNumber("lr", s.LearningRate);
            w.WriteNumber("batch_size", s.BatchSize);
            w.WriteEndObject();
        }, s.Seed, history.Count, trainAccuracy: null, valAccuracy: null, testAccuracy: null, last.TrainNegElbo, total.Elapsed.TotalSeconds, w =>
        {
            w.WriteNumber("test_neg_elbo", last.TestNegElbo);
            w.WriteNumber("test_reconstruction", last.TestReconstruction);
            w.WriteNumber("test_kl", last.TestKl);
        });
        string manifold = s.Latent == 2 ? ", manifold.png" : "";
        ConsoleOutput.Line($"wrote {run}: metrics.csv, summary.json, loss.png, samples.png, samples-noise.png, reconstructions.png{manifold}, model.safetensors");
        return 0;
    }

    /// <summary>The Trainer for the VAE: the step's loss is the negative ELBO, with its two terms as metrics (nats per image).</summary>
    internal static Trainer<(Tensor X, int[] Y)> CreateTrainer(Vae vae, Optimizer optimizer, Generator noise) =>
        new(vae, optimizer, b =>
        {
            var l = vae.Loss(b.X, noise);
            int m = b.X.Size(0);
            return new StepResult(l.Loss, m).With("reconstruction", l.Reconstruction * m).With("kl", l.Kl * m);
        }) { ProgressInterval = 20 };

    /// <summary>One pass over the loader through the Trainer; returns the mean reconstruction and KL terms per image, and whether it ran to the end.</summary>
    internal static (double Reconstruction, double Kl, bool Completed) TrainEpoch(Trainer<(Tensor X, int[] Y)> trainer, DataLoader loader, int epoch,
        Action<int, int, string>? report = null, CancellationToken cancellation = default)
    {
        if (report is not null)
            trainer.StepProgress = new SyncProgress<StepProgress>(p => report(p.Step, p.Steps, $"−ELBO {ConsoleOutput.F(p.RunningLoss, "0.00")}  {p.SamplesPerSecond:N0} samples/s"));
        var m = trainer.RunEpoch(epoch, loader, null, cancellation);
        return (m.Metrics.GetValueOrDefault("reconstruction", double.NaN), m.Metrics.GetValueOrDefault("kl", double.NaN), m.Completed);
    }

    static List<VaeEpoch> ParseHistory(string csv)
    {
        var history = new List<VaeEpoch>();
        foreach (var line in csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1))
        {
            var f = line.Split(',');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            history.Add(new VaeEpoch(int.Parse(f[0], CultureInfo.InvariantCulture), D(1), D(2), D(3), D(4), D(5), D(6), D(7), D(8)));
        }
        return history;
    }

    /// <summary>The negative ELBO's terms on <paramref name="x"/>, one ε per image from <paramref name="noise"/> (nats per image).</summary>
    internal static (double Reconstruction, double Kl) Evaluate(Vae vae, Tensor x, Generator noise, int batchSize = 1000)
    {
        var m = Evaluation.Run(vae, new DataLoader(x, new int[x.Size(0)], batchSize), b =>
        {
            var l = vae.Loss(b.X, noise);
            int n = b.X.Size(0);
            return (n, [("reconstruction", l.Reconstruction * n), ("kl", l.Kl * n)]);
        });
        return (m["reconstruction"], m["kl"]);
    }

    static Dictionary<string, string> ModelMetadata(Vae vae) => new()
        { ["format"] = "pt", [ModelFile.VaeKey] = $"{{\"inputs\":{vae.Inputs},\"hidden\":{vae.Hidden},\"latent\":{vae.Latent}}}" };

    static void WriteImages(string run, Vae vae, Tensor testX, Settings s)
    {
        using var _ = Autograd.NoGrad();
        var g = new Generator(s.Seed + 4);
        // Decoder means for z ~ N(0, I), and one Bernoulli draw per pixel from the same means.
        var means = vae.Decode(vae.SampleNoise(64, g)).ToFloatArray();
        var draws = Array.ConvertAll(means, p => g.NextDouble() < p ? 1f : 0f);
        Plots.ImageGrid(Path.Combine(run, "samples.png"), means, 64, 8, Side, Side);
        Plots.ImageGrid(Path.Combine(run, "samples-noise.png"), draws, 64, 8, Side, Side);

        // Two bands of 16: test inputs on one row, their reconstructions (decoder means at z = μ) below.
        const int cols = 16, bands = 2;
        var inputs = testX.SliceRows(0, cols * bands).ToFloatArray();
        var recon = vae.Forward(testX.SliceRows(0, cols * bands)).ToFloatArray();
        var tiles = new float[2 * cols * bands * Pixels];
        for (int b = 0; b < bands; b++)
        {
            inputs.AsSpan(b * cols * Pixels, cols * Pixels).CopyTo(tiles.AsSpan(2 * b * cols * Pixels));
            recon.AsSpan(b * cols * Pixels, cols * Pixels).CopyTo(tiles.AsSpan((2 * b + 1) * cols * Pixels));
        }
        Plots.ImageGrid(Path.Combine(run, "reconstructions.png"), tiles, 2 * cols * bands, cols, Side, Side);

        if (s.Latent == 2)
        {
            // The decoder over a 20×20 grid of z at the normal's quantiles (Kingma & Welling's figure 4): equal
            // probability mass between neighbours. z₁ grows to the right, z₂ upwards.
            const int k = 20;
            var z = Tensor.Empty([k * k, 2]);
            for (int r = 0; r < k; r++)
                for (int c = 0; c < k; c++)
                {
                    z[r * k + c, 0] = NormalQuantile((c + 0.5) / k);
                    z[r * k + c, 1] = NormalQuantile(1 - (r + 0.5) / k);
                }
            Plots.ImageGrid(Path.Combine(run, "manifold.png"), vae.Decode(z).ToFloatArray(), k * k, k, Side, Side);
        }
    }

    /// <summary>Φ⁻¹(p) for 0 &lt; p &lt; 1 (Acklam's rational approximation, relative error below 1.2e-9).</summary>
    internal static double NormalQuantile(double p)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "normal quantile: p must be in (0, 1)");
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low || p > 1 - low)
        {
            double q = Math.Sqrt(-2 * Math.Log(p < low ? p : 1 - p));
            double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
            return p < low ? x : -x;
        }
        double u = p - 0.5, t = u * u;
        return (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * u / (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1);
    }

}
