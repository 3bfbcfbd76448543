using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>One configuration of the classic exercise's two-layer net and its SGD loop.</summary>
internal sealed record TwoLayerConfig(int Hidden, double Std, double LearningRate, double LearningRateDecay, double Reg, int Iterations, int BatchSize)
{
    /// <summary>The exercise's set-up: hidden 50, std 1e-4, 1,000 iterations, batch 200, lr 1e-4, decay 0.95, λ = 0.25 (≈ 29% validation).</summary>
    public static readonly TwoLayerConfig Classic = new(50, 1e-4, 1e-4, 0.95, 0.25, 1000, 200);

    /// <summary>The winner of the search recorded in docs/cifar10.md.</summary>
    public static readonly TwoLayerConfig Tuned = new(500, 1e-4, 1e-3, 0.95, 0.05, 5000, 200);

    public string Text => string.Create(CultureInfo.InvariantCulture,
        $"hidden {Hidden}, std {Std}, lr {LearningRate}, decay {LearningRateDecay}, λ {Reg}, {Iterations} iterations, batch {BatchSize}");

    public void WriteJson(Utf8JsonWriter w, DType dtype, string preset)
    {
        w.WriteStartObject();
        w.WriteString("model", "two-layer (manual backward)");
        w.WriteNumber("hidden", Hidden);
        w.WriteNumber("std", Std);
        w.WriteNumber("lr", LearningRate);
        w.WriteNumber("lr_decay", LearningRateDecay);
        w.WriteNumber("reg", Reg);
        w.WriteNumber("iterations", Iterations);
        w.WriteNumber("batch_size", BatchSize);
        w.WriteString("sampling", "numpy choice with replacement");
        w.WriteString("split", "train 0..48999, validation 49000..49999, test 0..999");
        w.WriteString("normalize", "mean-image (raw 0-255)");
        w.WriteString("dtype", dtype == DType.Float32 ? "float32" : "float64");
        w.WriteString("preset", preset);
        w.WriteEndObject();
    }
}

/// <summary>
/// <c>backprop cifar10-two-layer</c>: the classic exercise's two-layer net (hand-written backward, numpy's random
/// stream) on CIFAR-10 with its 49,000 / 1,000 / 1,000 split, a tuned preset, and a small grid search.
/// </summary>
internal static class Cifar10TwoLayerCommand
{
    public const int TrainCount = 49_000, ValCount = 1_000, TestCount = 1_000;

    static readonly Option<string?> Data = new("--data") { Description = "CIFAR-10 archive or folder [default: ../shared/datasets/cifar10 or the cache]" };
    static readonly Option<string?> Out = new("--out") { Description = "Run folder [default: runs/cifar10-two-layer-<timestamp>]" };
    static readonly Option<bool> Tuned = new("--tuned") { Description = "Start from the tuned configuration (hidden 500, lr 1e-3, λ 0.05, 5,000 iterations; see docs/cifar10.md) instead of the exercise's" };
    static readonly Option<bool> Search = new("--search") { Description = "Grid search: every combination of the comma-separated values of --hidden, --lr, --reg, --iters and --lr-decay, scored on validation" };
    static readonly Option<string?> Hidden = new("--hidden") { Description = "Hidden units [default: 50; tuned 500]" };
    static readonly Option<string?> Lr = new("--lr") { Description = "Learning rate [default: 1e-4; tuned 1e-3]" };
    static readonly Option<string?> Decay = new("--lr-decay") { Description = "Learning-rate factor per epoch [default: 0.95]" };
    static readonly Option<string?> Reg = new("--reg") { Description = "L2 strength λ in λ(‖W1‖² + ‖W2‖²) [default: 0.25; tuned 0.05]" };
    static readonly Option<string?> Iters = new("--iters") { Description = "SGD iterations [default: 1000; tuned 5000]" };
    static readonly Option<int?> BatchSize = new("--batch-size") { Description = "Minibatch size, drawn with replacement [default: 200]" };
    static readonly Option<double?> Std = new("--std") { Description = "Initial weight standard deviation [default: 1e-4]" };
    static readonly Option<uint?> Seed = new("--seed") { Description = "numpy seed for the weights and minibatches [default: 0]" };
    static readonly Option<string?> DTypeOpt = new("--dtype") { Description = "float32 | float64 [default: float32]" };
    static readonly Option<int?> Threads = new("--threads") { Description = "Threads for the kernels [default: all cores]" };

    public static Command Create()
    {
        var cmd = new Command("cifar10-two-layer", "The classic two-layer net (manual backward) on CIFAR-10: 49,000 train / 1,000 validation / 1,000 test, mean image subtracted")
        {
            Data, Out, RunFolder.OverwriteOption, Tuned, Search, Hidden, Lr, Decay, Reg, Iters, BatchSize, Std, Seed, DTypeOpt, Threads,
        };
        cmd.SetAction(r => Run(r, Environment.GetCommandLineArgs()));
        return cmd;
    }

    static int Run(ParseResult r, string[] commandLine)
    {
        using var scope = r.GetValue(Threads) is int threads ? Parallelism.Use(threads > 0 ? threads : throw new ArgumentException($"--threads: {threads} must be positive")) : null;
        var dtype = (r.GetValue(DTypeOpt) ?? "float32") switch
        {
            "float32" => DType.Float32,
            "float64" => DType.Float64,
            var d => throw new ArgumentException($"--dtype: '{d}' is not float32 or float64"),
        };
        bool tuned = r.GetValue(Tuned), search = r.GetValue(Search);
        var b = tuned ? TwoLayerConfig.Tuned : TwoLayerConfig.Classic;
        var hidden = List(r.GetValue(Hidden), b.Hidden, "--hidden", v => v >= 1 && v == Math.Floor(v)).Select(v => (int)v).ToArray();
        var lrs = List(r.GetValue(Lr), b.LearningRate, "--lr", v => v > 0);
        var decays = List(r.GetValue(Decay), b.LearningRateDecay, "--lr-decay", v => v > 0);
        var regs = List(r.GetValue(Reg), b.Reg, "--reg", v => v >= 0);
        var iters = List(r.GetValue(Iters), b.Iterations, "--iters", v => v >= 1 && v == Math.Floor(v)).Select(v => (int)v).ToArray();
        int batch = r.GetValue(BatchSize) ?? b.BatchSize;
        double std = r.GetValue(Std) ?? b.Std;
        if (batch <= 0) throw new ArgumentException($"--batch-size: {batch} must be positive");
        if (!(std > 0)) throw new ArgumentException($"--std: {std} must be positive");
        var configs = (from h in hidden from lr in lrs from d in decays from l in regs from n in iters select new TwoLayerConfig(h, std, lr, d, l, n, batch)).ToArray();
        if (configs.Length > 1 && !search) throw new ArgumentException("several values given: add --search to try every combination");
        uint seed = r.GetValue(Seed) ?? 0;
        string preset = search ? "search" : tuned ? "tuned" : "classic";
        var data = Load(r.GetValue(Data), dtype);   // before the run folder: a missing or corrupt dataset leaves no empty folder
        string run = RunFolder.Prepare(r.GetValue(Out) ?? Path.Combine("runs", $"cifar10-two-layer-{preset}-{DateTime.Now:yyyyMMdd-HHmmss}"), r.GetValue(RunFolder.OverwriteOption));
        return search ? RunSearch(configs, data, dtype, seed, run, commandLine) : RunOne(configs[0], data, dtype, seed, preset, run, commandLine);
    }

    static double[] List(string? text, double fallback, string option, Func<double, bool> valid)
    {
        if (text is null) return [fallback];
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"{option}: give a value");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && valid(v) ? v
            : throw new ArgumentException($"{option}: '{p}' is not a valid value")).ToArray();
    }

    internal sealed record Split(Tensor TrainX, int[] TrainY, Tensor ValX, int[] ValY, Tensor TestX, int[] TestY, IReadOnlyList<string> ClassNames, int Channels, int Height, int Width,
        Preprocessor Preprocessor);

    /// <summary>The exercise's split and preprocessing: raw 0–255 pixels minus the training mean image.</summary>
    internal static Split Load(string? dataDir, DType dtype)
    {
        var clock = Stopwatch.StartNew();
        var raw = new DatasetStore().Cifar10(dataDir);
        double readSeconds = clock.Elapsed.TotalSeconds;
        var (train, val, test) = DatasetSplits.Take(raw, TrainCount, ValCount, TestCount);
        var prep = Preprocessor.Fit(train, Normalization.MeanImage, scale01: false);
        var split = new Split(prep.Apply(train, dtype), train.LabelsAsInts(), prep.Apply(val, dtype), val.LabelsAsInts(), prep.Apply(test, dtype), test.LabelsAsInts(),
            raw.Train.ClassNames, train.Channels, train.Height, train.Width, prep);
        ConsoleOutput.Line($"cifar10: {TrainCount} train / {ValCount} validation / {TestCount} test, {train.Features} features, mean image subtracted " +
            $"(read {ConsoleOutput.F(readSeconds, "0.0")} s, prepared {ConsoleOutput.F(clock.Elapsed.TotalSeconds - readSeconds, "0.0")} s)");
        return split;
    }

    static (TwoLayerNet Net, TwoLayerNetHistory History, double Seconds) Train(TwoLayerConfig c, Split d, DType dtype, uint seed, bool verbose)
    {
        var rng = new NumpyRandom(seed);
        var net = new TwoLayerNet(d.TrainX.Size(1), c.Hidden, d.ClassNames.Count, rng, c.Std, dtype);
        var clock = Stopwatch.StartNew();
        var progress = verbose ? new SyncProgress<TwoLayerNetProgress>(p =>
            ConsoleOutput.Line($"iteration {p.Iteration} / {p.NumIters}: loss {ConsoleOutput.F(p.Loss, "0.000000")}  ({ConsoleOutput.F(clock.Elapsed.TotalSeconds, "0.0")} s)")) : null;
        var history = net.Train(d.TrainX, d.TrainY, d.ValX, d.ValY, rng, c.LearningRate, c.LearningRateDecay, c.Reg, c.Iterations, c.BatchSize, progress);
        return (net, history, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The fraction of rows of <paramref name="x"/> the net classifies correctly (the one evaluation routine, in batches of 1,000).</summary>
    internal static double Accuracy(TwoLayerNet net, Tensor x, int[] y, int[,]? confusion = null)
    {
        var (accuracy, c) = Trainer.Evaluate(net, new DataLoader(x, y, 1000), confusion?.GetLength(0) ?? net.Params["W2"].Size(1));
        if (confusion is not null) Array.Copy(c, confusion, c.Length);
        return accuracy;
    }

    static int RunOne(TwoLayerConfig c, Split d, DType dtype, uint seed, string preset, string run, string[] commandLine)
    {
        var total = Stopwatch.StartNew();
        ConsoleOutput.Line($"model: two-layer net {d.TrainX.Size(1)}-{c.Hidden}-{d.ClassNames.Count} (manual backward), {ParamCount(c, d):N0} parameters; {c.Text}, {dtype.ToString().ToLowerInvariant()}, numpy seed {seed}");
        ConsoleOutput.Line($"run folder: {run}");
        var (net, history, seconds) = Train(c, d, dtype, seed, verbose: true);
        double perThousand = seconds / c.Iterations * 1000;
        ConsoleOutput.Line($"trained in {ConsoleOutput.F(seconds, "0.0")} s ({ConsoleOutput.F(perThousand, "0.0")} s per 1,000 iterations of batch {c.BatchSize})");

        double trainAcc = Accuracy(net, d.TrainX, d.TrainY), valAcc = Accuracy(net, d.ValX, d.ValY);
        var confusion = new int[d.ClassNames.Count, d.ClassNames.Count];
        double testAcc = Accuracy(net, d.TestX, d.TestY, confusion);
        ConsoleOutput.Line($"train accuracy {Pct(trainAcc)} ({TrainCount} images), validation accuracy {Pct(valAcc)} ({ValCount}), test accuracy {Pct(testAcc)} ({TestCount})");
        ConsoleOutput.PrintConfusion(confusion, d.ClassNames);

        Write(run, c, d, dtype, seed, preset, net, history, trainAcc, valAcc, testAcc, confusion, seconds, total.Elapsed.TotalSeconds, commandLine);
        ConsoleOutput.Line($"wrote {run}: metrics.csv, summary.json, loss.png, accuracy.png, weights.png, confusion.png, model.safetensors, command.txt");
        return 0;
    }

    static long ParamCount(TwoLayerConfig c, Split d) => (long)d.TrainX.Size(1) * c.Hidden + c.Hidden + (long)c.Hidden * d.ClassNames.Count + d.ClassNames.Count;

    static string Pct(double v) => ConsoleOutput.F(v * 100, "0.00") + "%";


    static void Write(string run, TwoLayerConfig c, Split d, DType dtype, uint seed, string preset, TwoLayerNet net, TwoLayerNetHistory h,
        double trainAcc, double valAcc, double testAcc, int[,] confusion, double trainSeconds, double seconds, string[] commandLine)
    {
        // The exercise's epoch test is a float remainder: an epoch boundary is any `it` with it % (N / batch) == 0;
        // the accuracies are recorded and lr decays right after that iteration's step.
        double perEpoch = Math.Max((double)TrainCount / c.BatchSize, 1);
        var csv = new StringWriter(CultureInfo.InvariantCulture);
        csv.WriteLine("iteration,epoch,lr,loss,train_batch_accuracy,val_accuracy");
        double lr = c.LearningRate;
        for (int it = 0, k = 0; it < h.Loss.Count; it++)
        {
            bool boundary = it % perEpoch == 0;
            csv.WriteLine(string.Join(",", it.ToString(CultureInfo.InvariantCulture), ((int)(it / perEpoch)).ToString(CultureInfo.InvariantCulture), Validate.RoundTrip(lr), Validate.RoundTrip(h.Loss[it]),
                boundary ? Validate.RoundTrip(h.TrainAccuracy[k]) : "", boundary ? Validate.RoundTrip(h.ValAccuracy[k]) : ""));
            if (boundary) { k++; lr *= c.LearningRateDecay; }
        }
        Serialization.AtomicFile.WriteAllText(Path.Combine(run, "metrics.csv"), csv.ToString());

        int wholeEpochs = (int)((long)c.Iterations * c.BatchSize / TrainCount);
        RunFolder.WriteSummary(Path.Combine(run, "summary.json"), "cifar10", "two-layer", w => c.WriteJson(w, dtype, preset), seed, wholeEpochs,
            trainAcc, valAcc, testAcc, h.Loss[^1], seconds, w =>
            {
                w.WriteNumber("iterations", c.Iterations);
                w.WriteNumber("train_seconds", Math.Round(trainSeconds, 3));
                w.WriteNumber("seconds_per_1000_iterations", Math.Round(trainSeconds / c.Iterations * 1000, 3));
            });

        var iterations = Enumerable.Range(0, h.Loss.Count).Select(i => (double)i).ToArray();
        Plots.Curves(Path.Combine(run, "loss.png"), $"cifar10 two-layer ({preset}): training loss", "loss (cross-entropy + L2)", [("minibatch loss", h.Loss.ToArray())], iterations);
        Plots.Curves(Path.Combine(run, "accuracy.png"), $"cifar10 two-layer ({preset}): accuracy", "accuracy",
            [("train (minibatch)", h.TrainAccuracy.ToArray()), ("validation", h.ValAccuracy.ToArray())]);
        // W1 is (D, H); the grid wants each hidden unit's C×H×W weights contiguous, i.e. W1ᵀ.
        var w1 = net.Params["W1"];
        Plots.WeightGrid(Path.Combine(run, "weights.png"), w1.T().To(DType.Float32).ToFloatArray(), w1.Size(1), d.Channels, d.Height, d.Width);
        Plots.Confusion(Path.Combine(run, "confusion.png"), confusion, d.ClassNames);
        var ms = new MemoryStream();
        using (var jw = new Utf8JsonWriter(ms)) c.WriteJson(jw, dtype, preset);
        SafeTensors.Save(Path.Combine(run, "model.safetensors"), net.Params,
            new Dictionary<string, string>
            {
                ["format"] = "pt", [ModelFile.TwoLayerKey] = System.Text.Encoding.UTF8.GetString(ms.ToArray()), [RunFolder.PreprocessingKey] = d.Preprocessor.ToJson(),
                [RunFolder.ClassesKey] = JsonSerializer.Serialize(d.ClassNames.ToArray(), ClassNamesContext.Default.StringArray),
            });
        RunFolder.WriteCommand(run, commandLine);
    }

    /// <summary>Trains every configuration from the same seed and ranks them by validation accuracy; the test set is not touched.</summary>
    static int RunSearch(TwoLayerConfig[] configs, Split d, DType dtype, uint seed, string run, string[] commandLine)
    {
        ConsoleOutput.Line($"search: {configs.Length} configurations, numpy seed {seed}, {dtype.ToString().ToLowerInvariant()}; scored on the {ValCount} validation images");
        var csv = new StringWriter(CultureInfo.InvariantCulture);
        csv.WriteLine("hidden,lr,lr_decay,reg,iterations,batch_size,std,final_loss,train_accuracy,val_accuracy,seconds");
        var results = new List<(TwoLayerConfig Config, double Val)>();
        foreach (var c in configs)
        {
            var (net, history, seconds) = Train(c, d, dtype, seed, verbose: false);
            double trainAcc = Accuracy(net, d.TrainX, d.TrainY), valAcc = Accuracy(net, d.ValX, d.ValY);
            results.Add((c, valAcc));
            ConsoleOutput.Line($"{c.Text}: loss {ConsoleOutput.F(history.Loss[^1])}, train {Pct(trainAcc)}, validation {Pct(valAcc)} ({ConsoleOutput.F(seconds, "0")} s)");
            csv.WriteLine(string.Join(",", c.Hidden, Validate.RoundTrip(c.LearningRate), Validate.RoundTrip(c.LearningRateDecay), Validate.RoundTrip(c.Reg), c.Iterations, c.BatchSize, Validate.RoundTrip(c.Std),
                Validate.RoundTrip(history.Loss[^1]), Validate.RoundTrip(trainAcc), Validate.RoundTrip(valAcc), seconds.ToString("F1", CultureInfo.InvariantCulture)));
            Serialization.AtomicFile.WriteAllText(Path.Combine(run, "search.csv"), csv.ToString());
        }
        var best = results.MaxBy(x => x.Val);
        ConsoleOutput.Line($"best: {best.Config.Text}: validation {Pct(best.Val)}");
        RunFolder.WriteCommand(run, commandLine);
        ConsoleOutput.Line($"wrote {run}: search.csv, command.txt");
        return 0;
    }
}
