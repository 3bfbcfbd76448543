using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;
using Backprop.Optim;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop multitask</c>: the multi-task cascade network on MNIST. Task A regresses the one-hot digit (½‖ŷa − ya‖²),
/// Task B classifies it (softmax cross-entropy) and, through ⊕, reads Task A's estimate; <c>--no-cascade</c> cuts that link.
/// </summary>
internal static class MultiTaskCommand
{
    static readonly Option<string?> Data = new("--data") { Description = "MNIST folder (four IDX files) [default: data/mnist in the repo]" };
    static readonly Option<int?> Hidden = new("--hidden-a") { Description = "Width of Task A's hidden layer FC1A (Task B's FC1B has one unit per class, n_1b = n_ya = 10, for ⊕) [default: 100]" };
    static readonly Option<double?> Dropout = new("--dropout") { Description = "DP1A's drop probability p [default: 0.2]" };
    static readonly Option<bool> BnBeforeRelu = new("--bn-before-relu") { Description = "Task B: FC1B → BN1B → ReLU instead of FC1B → ReLU → BN1B" };
    static readonly Option<bool> NoCascade = new("--no-cascade") { Description = "Drop the ⊕ link: Task B no longer adds Task A's output" };
    static readonly Option<bool> Manual = new("--manual") { Description = "Train with the hand-written back-propagation (MultiTaskCascadeManual) instead of autograd" };
    static readonly Option<string?> OptimizerOpt = new("--optimizer") { Description = "sgd | adam [default: sgd]" };
    static readonly Option<double?> Lr = new("--lr") { Description = "Learning rate [default: 0.05 for sgd, 0.001 for adam]" };
    static readonly Option<double?> Momentum = new("--momentum") { Description = "SGD momentum [default: 0.9]" };
    static readonly Option<string?> Schedule = new("--schedule") { Description = "Learning-rate schedule: cosine (to 0 over the epochs) | none [default: cosine]" };
    static readonly Option<int?> Epochs = new("--epochs") { Description = "Epochs [default: 20]" };
    static readonly Option<int?> BatchSize = new("--batch-size") { Description = "Minibatch size [default: 64]" };
    static readonly Option<ulong?> Seed = new("--seed") { Description = "Seed for initialisation, shuffling and dropout [default: 0]" };
    static readonly Option<int?> ValSize = new("--val-size") { Description = "Training images held out for validation [default: 5000]" };
    static readonly Option<int?> Threads = new("--threads") { Description = "Threads for the kernels [default: all cores]" };
    static readonly Option<string?> Out = new("--out") { Description = "Run folder [default: runs/mnist-multitask-<timestamp>]" };

    const int Classes = 10;

    sealed record Settings(string? Data, int HiddenA, double Dropout, bool BatchNormBeforeRelu, bool Cascade, bool Manual, string Optimizer,
        double LearningRate, double Momentum, string Schedule, int Epochs, int BatchSize, ulong Seed, int ValidationSize, int Threads)
    {
        public string ModelName => "multitask-" + (Cascade ? "cascade" : "no-cascade") + (BatchNormBeforeRelu ? "-bn-before-relu" : "");

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteNumber("hidden_a", HiddenA);
            w.WriteNumber("outputs_a", Classes);
            w.WriteNumber("dropout", Dropout);
            w.WriteBoolean("cascade", Cascade);
            w.WriteBoolean("bn_before_relu", BatchNormBeforeRelu);
            w.WriteString("backward", Manual ? "manual" : "autograd");
            w.WriteString("optimizer", Optimizer);
            w.WriteNumber("lr", LearningRate);
            if (Optimizer == "sgd") w.WriteNumber("momentum", Momentum);
            w.WriteString("schedule", Schedule);
            w.WriteNumber("batch_size", BatchSize);
            w.WriteNumber("val_size", ValidationSize);
            w.WriteEndObject();
        }
    }

    /// <summary>Per-task figures over a set of samples: Task A's (1/m)Σ½‖ŷa − ya‖² and argmax accuracy; Task B's cross-entropy and accuracy.</summary>
    internal readonly record struct TaskMetrics(double SquaredErrorA, double AccuracyA, double CrossEntropyB, double AccuracyB)
    {
        public double Loss => SquaredErrorA + CrossEntropyB;
    }

    sealed record Epoch(int Number, TaskMetrics Train, TaskMetrics Val, double Seconds, double SamplesPerSecond);

    public static Command Create()
    {
        var cmd = new Command("multitask", "Train the multi-task cascade network on MNIST (Task A regresses the one-hot digit, Task B classifies it)")
        {
            Data, Hidden, Dropout, BnBeforeRelu, NoCascade, Manual, OptimizerOpt, Lr, Momentum, Schedule, Epochs, BatchSize, Seed, ValSize, Threads, Out, RunFolder.OverwriteOption, Checkpoint.EveryOption, Checkpoint.ResumeOption, Checkpoint.StopAfterOption,
        };
        cmd.SetAction(r =>
        {
            var (every, resume, stop) = Checkpoint.Options(r);
            return Run(Resolve(r), resume ?? r.GetValue(Out), r.GetValue(RunFolder.OverwriteOption), Environment.GetCommandLineArgs(), every, resume is not null, stop);
        });
        return cmd;
    }

    static Settings Resolve(ParseResult r)
    {
        string optimizer = r.GetValue(OptimizerOpt) ?? "sgd";
        if (optimizer is not ("sgd" or "adam")) throw new ArgumentException($"--optimizer: '{optimizer}' is not one of sgd, adam");
        double dropout = r.GetValue(Dropout) ?? 0.2;
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"--dropout: {dropout} must be in [0, 1)");
        double lr = r.GetValue(Lr) ?? (optimizer == "sgd" ? 0.05 : 1e-3);
        double momentum = r.GetValue(Momentum) ?? 0.9;
        if (!(lr > 0 && double.IsFinite(lr))) throw new ArgumentException($"--lr: {lr} must be positive");
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentException($"--momentum: {momentum} must be in [0, 1)");
        string schedule = r.GetValue(Schedule) ?? "cosine";
        if (schedule is not ("cosine" or "none")) throw new ArgumentException($"--schedule: '{schedule}' is not one of cosine, none");
        int val = r.GetValue(ValSize) ?? 5000;
        if (val < 0) throw new ArgumentException($"--val-size: {val} must be ≥ 0");
        return new Settings(r.GetValue(Data), Validate.Positive(r.GetValue(Hidden) ?? 100, "--hidden-a"), dropout, r.GetValue(BnBeforeRelu), !r.GetValue(NoCascade),
            r.GetValue(Manual), optimizer, lr, momentum, schedule, Validate.Positive(r.GetValue(Epochs) ?? 20, "--epochs"), Validate.Positive(r.GetValue(BatchSize) ?? 64, "--batch-size"),
            r.GetValue(Seed) ?? 0, val, Validate.Positive(r.GetValue(Threads) ?? Environment.ProcessorCount, "--threads"));
    }


    static int Run(Settings s, string? outDir, bool overwrite, string[] commandLine, int checkpointEvery = 1, bool resume = false, int stopAfter = int.MaxValue)
    {
        using var threads = Parallelism.Use(s.Threads);   // this run's kernels (training and evaluation), not a process-wide setting
        var total = Stopwatch.StartNew();
        // MNIST split and scaled to [0, 1] as `train` does: the last val-size training images are held out.
        var data = Experiment.Prepare(new TrainSettings { Dataset = "mnist", Data = s.Data, ValidationSize = s.ValidationSize }, new DatasetStore().Mnist(s.Data));
        if (data.Classes != Classes) throw new InvalidDataException($"multitask: expected {Classes} classes, the data has {data.Classes}");
        string run = outDir ?? Path.Combine("runs", $"mnist-multitask-{DateTime.Now:yyyyMMdd-HHmmss}");
        if (!resume) RunFolder.Prepare(run, overwrite);

        var g = new Generator(s.Seed);   // initialisation, then DP1A's masks when autograd trains
        var model = new MultiTaskCascade(data.Features, s.HiddenA, Classes, Classes, g, s.Dropout, s.BatchNormBeforeRelu, s.Cascade);
        var manual = s.Manual ? MultiTaskCascadeManual.From(model) : null;
        var masks = new Generator(s.Seed + 2);   // DP1A's masks when the hand-written backward trains
        Optimizer optimizer = s.Optimizer == "adam" ? new Adam(model.Parameters(), s.LearningRate) : new Sgd(model.Parameters(), s.LearningRate, s.Momentum);
        LrScheduler? scheduler = s.Schedule == "cosine" ? new CosineAnnealingLR(optimizer, s.Epochs) : null;
        var trainer = new Trainer<(Tensor X, int[] Y)>(model, optimizer, Step(model, manual, masks), scheduler);
        var shuffling = new Generator(s.Seed + 1);
        var loader = new DataLoader(data.TrainX, data.TrainY, s.BatchSize, shuffle: true, generator: shuffling);
        using var session = new Checkpoint.Session(run, "multitask", model, optimizer, (s with { Data = null, Threads = 1 }).ToString(), [g, masks, shuffling],
            checkpointEvery, stopAfter, s.Epochs) { ModelMetadata = ModelMetadata(s) };   // what must match to resume leaves out threads, which do not change results

        ConsoleOutput.Line($"mnist: {data.TrainY.Length} train / {data.ValY.Length} validation / {data.TestY.Length} test, {data.Features} features, {Classes} classes");
        ConsoleOutput.Line($"model: {s.ModelName}: A {data.Features}-{s.HiddenA}-{Classes} relu, dropout {s.Dropout}; B {data.Features}-{Classes}" +
            $"{(s.BatchNormBeforeRelu ? " bn relu" : " relu bn")}{(s.Cascade ? " ⊕ ŷa" : "")}-{Classes} softmax; {model.ParameterCount():N0} parameters; " +
            $"{(s.Manual ? "hand-written" : "autograd")} backward, {s.Optimizer} lr {s.LearningRate} ({s.Schedule}), batch {s.BatchSize}, {s.Epochs} epochs, seed {s.Seed}");
        ConsoleOutput.Line($"run folder: {run}");
        ConsoleOutput.Line("Task A: ½‖ŷa − ya‖² per sample (sq err) and argmax accuracy; Task B: cross-entropy and accuracy. Train figures are over the epoch's minibatches.");
        ConsoleOutput.Line($"{"epoch",5} {"loss",7} {"A sq err",8} {"A acc",7} {"B xent",7} {"B acc",7} | {"val A sq err",12} {"A acc",7} {"B xent",7} {"B acc",7} {"seconds",8}");

        var history = new List<Epoch>();
        var csv = new StringWriter(CultureInfo.InvariantCulture);
        int done = 0;
        if (resume)
        {
            (done, string metrics) = session.Resume(scheduler);
            csv.Write(metrics);
            history.AddRange(ParseHistory(metrics));
        }
        else csv.WriteLine("epoch,train_loss,train_a_squared_error,train_a_accuracy,train_b_cross_entropy,train_b_accuracy,val_loss,val_a_squared_error,val_a_accuracy,val_b_cross_entropy,val_b_accuracy,seconds,samples_per_second");
        for (int epoch = done + 1; epoch <= s.Epochs; epoch++)
        {
            var metrics = ConsoleOutput.WithProgress($"epoch {epoch}/{s.Epochs}", report =>
            {
                trainer.StepProgress = new SyncProgress<StepProgress>(p =>
                    report(p.Step, p.Steps, $"loss {F(p.RunningLoss)}  {p.SamplesPerSecond:N0} samples/s"));
                return trainer.RunEpoch(epoch, loader, null, session.Interrupted);
            });
            if (!metrics.Completed) return session.WriteModelOnInterrupt($"at epoch {epoch}, step {metrics.Steps}");
            var train = FromMeans(metrics.Metrics);
            double seconds = metrics.Seconds;
            var val = Evaluate(model, data.ValX, data.ValY);
            var e = new Epoch(epoch, train, val, seconds, metrics.SamplesPerSecond);
            history.Add(e);
            ConsoleOutput.Line($"{epoch,5} {F(train.Loss),7} {F(train.SquaredErrorA),8} {P(train.AccuracyA),7} {F(train.CrossEntropyB),7} {P(train.AccuracyB),7} | " +
                $"{F(val.SquaredErrorA),12} {P(val.AccuracyA),7} {F(val.CrossEntropyB),7} {P(val.AccuracyB),7} {ConsoleOutput.F(seconds, "0.0"),8}");
            csv.WriteLine(string.Join(",", epoch.ToString(CultureInfo.InvariantCulture), Validate.RoundTrip(train.Loss), Validate.RoundTrip(train.SquaredErrorA), Validate.RoundTrip(train.AccuracyA), Validate.RoundTrip(train.CrossEntropyB), Validate.RoundTrip(train.AccuracyB),
                Validate.RoundTrip(val.Loss), Validate.RoundTrip(val.SquaredErrorA), Validate.RoundTrip(val.AccuracyA), Validate.RoundTrip(val.CrossEntropyB), Validate.RoundTrip(val.AccuracyB),
                seconds.ToString("F3", CultureInfo.InvariantCulture), e.SamplesPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
            Serialization.AtomicFile.WriteAllText(Path.Combine(run, "metrics.csv"), csv.ToString());
            if (session.AfterEpoch(epoch, csv.ToString())) return 0;
        }

        var test = Evaluate(model, data.TestX, data.TestY);
        ConsoleOutput.Line($"test: Task A sq err {F(test.SquaredErrorA)}, argmax accuracy {P(test.AccuracyA)}; Task B cross-entropy {F(test.CrossEntropyB)}, accuracy {P(test.AccuracyB)} ({data.TestY.Length} images)");
        Write(run, s, history, test, model, total.Elapsed.TotalSeconds, commandLine);
        ConsoleOutput.Line($"wrote {run}: metrics.csv, summary.json, loss.png, task-a.png, accuracy.png, model.safetensors, command.txt");
        return 0;
    }

    /// <summary>The training step for the Trainer: both heads, the loss (autograd's or the hand-written backward's), and each task's figures.</summary>
    static Func<(Tensor X, int[] Y), StepResult> Step(MultiTaskCascade model, MultiTaskCascadeManual? manual, Generator masks) => b =>
    {
        var (x, y) = b;
        var ya = OneHot(y, x.DType);
        Tensor loss;
        MultiTaskOutput output;
        if (manual is null)
        {
            output = model.Outputs(x);
            loss = MultiTaskCascade.Loss(output, ya, y);
        }
        else
        {
            var mask = model.Dp1a.P > 0 ? Ops.DropoutMask([x.Size(0), model.Fc1a.OutFeatures], model.Dp1a.P, masks, x.DType) : null;
            (loss, output) = manual.LossAndOutputs(x, ya, ya, mask);   // Task B's one-hot targets are Task A's: the same digit
        }
        var m = Score(output, ya, y);
        return new StepResult(loss, y.Length).With("a_sq_err", m.SquaredError).With("a_hits", m.HitsA).With("b_hits", m.HitsB)
            .With("b_xent", loss.Item() * y.Length - m.SquaredError);   // L·m = Σ½‖ŷa − ya‖² + Σ CE
    };

    static List<Epoch> ParseHistory(string csv)
    {
        var history = new List<Epoch>();
        foreach (var line in csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1))
        {
            var f = line.Split(',');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            history.Add(new Epoch(int.Parse(f[0], CultureInfo.InvariantCulture), new TaskMetrics(D(2), D(3), D(4), D(5)), new TaskMetrics(D(7), D(8), D(9), D(10)), D(11), D(12)));
        }
        return history;
    }

    static TaskMetrics FromMeans(IReadOnlyDictionary<string, double> m) => new(m["a_sq_err"], m["a_hits"], m["b_xent"], m["b_hits"]);

    /// <summary>Over a batch: Σ½‖ŷa − ya‖² and the number of rows each task gets right (argmax = label).</summary>
    static (double SquaredError, int HitsA, int HitsB) Score(MultiTaskOutput output, Tensor ya, int[] y)
    {
        using var _ = Autograd.NoGrad();
        var d = output.YaHat.Detach() - ya;
        double se = 0.5 * (d * d).Sum().Item();
        int[] a = output.YaHat.ArgMax(1), b = output.Logits.ArgMax(1);
        int hitsA = 0, hitsB = 0;
        for (int i = 0; i < y.Length; i++) { if (a[i] == y[i]) hitsA++; if (b[i] == y[i]) hitsB++; }
        return (se, hitsA, hitsB);
    }

    /// <summary>Both tasks' figures in eval mode (no dropout, BN running statistics), without a graph.</summary>
    internal static TaskMetrics Evaluate(MultiTaskCascade model, Tensor x, int[] y)
    {
        if (y.Length == 0) return new TaskMetrics(double.NaN, double.NaN, double.NaN, double.NaN);
        return FromMeans(Evaluation.Run(model, new DataLoader(x, y, 1000), b =>
        {
            var output = model.Outputs(b.X);
            var m = Score(output, OneHot(b.Y, b.X.DType), b.Y);
            return (b.Y.Length, [("a_sq_err", m.SquaredError), ("a_hits", m.HitsA), ("b_hits", m.HitsB), ("b_xent", output.Logits.CrossEntropy(b.Y).Item() * b.Y.Length)]);
        }));
    }

    static Tensor OneHot(int[] labels, DType dtype)
    {
        var t = Tensor.Zeros([labels.Length, Classes], dtype);
        for (int i = 0; i < labels.Length; i++) t[i, labels[i]] = 1;
        return t;
    }

    static void Write(string run, Settings s, List<Epoch> history, TaskMetrics test, MultiTaskCascade model, double seconds, string[] commandLine)
    {
        var last = history[^1];
        RunFolder.WriteSummary(Path.Combine(run, "summary.json"), "mnist", s.ModelName, s.WriteJson, s.Seed, history.Count,
            last.Train.AccuracyB, last.Val.AccuracyB is double v && !double.IsNaN(v) ? v : null, test.AccuracyB, last.Train.Loss, seconds, w =>
            {
                // The shared keys above are Task B's (the classifier); the per-task figures follow.
                foreach (var (split, m) in new[] { ("train", last.Train), ("val", last.Val), ("test", test) })
                {
                    Number(w, $"task_a_{split}_squared_error", m.SquaredErrorA);
                    Number(w, $"task_a_{split}_accuracy", m.AccuracyA);
                    Number(w, $"task_b_{split}_cross_entropy", m.CrossEntropyB);
                    Number(w, $"task_b_{split}_accuracy", m.AccuracyB);
                }
                Number(w, "test_loss", test.Loss);
            });

        double[] Series(Func<Epoch, double> f) => history.Select(f).ToArray();
        Plots.Curves(Path.Combine(run, "loss.png"), $"mnist {s.ModelName}: loss L = A sq err + B cross-entropy", "loss",
            [("train L", Series(e => e.Train.Loss)), ("validation L", Series(e => e.Val.Loss)),
             ("train B cross-entropy", Series(e => e.Train.CrossEntropyB)), ("validation B cross-entropy", Series(e => e.Val.CrossEntropyB))]);
        Plots.Curves(Path.Combine(run, "task-a.png"), $"mnist {s.ModelName}: Task A squared error (1/m)Σ½‖ŷa − ya‖²", "squared error",
            [("train", Series(e => e.Train.SquaredErrorA)), ("validation", Series(e => e.Val.SquaredErrorA))]);
        Plots.Curves(Path.Combine(run, "accuracy.png"), $"mnist {s.ModelName}: accuracy", "accuracy",
            [("B train", Series(e => e.Train.AccuracyB)), ("B validation", Series(e => e.Val.AccuracyB)),
             ("A argmax train", Series(e => e.Train.AccuracyA)), ("A argmax validation", Series(e => e.Val.AccuracyA))]);
        SafeTensors.Save(Path.Combine(run, "model.safetensors"), model.StateDict(), ModelMetadata(s));
        Serialization.AtomicFile.WriteAllText(Path.Combine(run, "command.txt"), string.Join(" ", commandLine.Select(RunFolder.Quote)) + Environment.NewLine);
    }

    // What the tensors' shapes do not say, so eval, predict and export rebuild the same forward pass.
    static Dictionary<string, string> ModelMetadata(Settings s) => new()
    {
        ["format"] = "pt",
        [ModelFile.MultiTaskKey] = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{{\"batch_norm_before_relu\":{(s.BatchNormBeforeRelu ? "true" : "false")},\"cascade\":{(s.Cascade ? "true" : "false")},\"dropout\":{s.Dropout}}}"),
    };

    static void Number(Utf8JsonWriter w, string key, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(key, v); else w.WriteNull(key);
    }

    static string F(double v) => ConsoleOutput.F(v);
    static string P(double v) => ConsoleOutput.F(v * 100, "0.00") + "%";
}
