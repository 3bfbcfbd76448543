using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary><c>backprop train</c>: trains a network on a dataset and writes a run folder (metrics, curves, model).</summary>
internal static class TrainCommand
{
    static readonly Option<string?> Dataset = new("--dataset") { Description = "mnist | cifar10 | idx (any folder of MNIST-format IDX files, with --data) [default: mnist]" };
    static readonly Option<string?> Data = new("--data") { Description = "Dataset folder (or CIFAR-10 archive) [default: data/mnist in the repo; CIFAR-10 from ../shared/datasets or the cache]" };
    static readonly Option<string?> Model = new("--model") { Description = "Architecture: mlp | cnn [default: mlp]" };
    static readonly Option<string?> Hidden = new("--hidden") { Description = "Hidden (fully connected) layer widths, comma separated, e.g. 512,256; for a cnn, the layers after the convolutions (\"\" for none) [default: 50]" };
    static readonly Option<string?> Conv = new("--conv") { Description = "cnn: channels of each stage (convolutions then 2×2 max pooling), e.g. 32,64 [default: 32,64]" };
    static readonly Option<int?> Kernel = new("--kernel") { Description = "cnn: convolution kernel size [default: 3]" };
    static readonly Option<int?> ConvsPerStage = new("--convs-per-stage") { Description = "cnn: convolutions a stage (each stage pools once) [default: 1]" };
    static readonly Option<bool?> PoolFirst = new("--pool-first") { Description = "cnn: pool right after each stage's first convolution, before its batch norm and ReLU (the stage's other convolutions run at the pooled size) [default: off]" };
    static readonly Option<int?> Whiten = new("--whiten") { Description = "cnn: a first convolution of k×k filters fixed to whiten the images' k×k patches (2·C·k² channels, no padding; 0 for none) [default: 0]" };
    static readonly Option<string?> StyleOpt = new("--style") { Description = "cnn: standard (PyTorch's defaults) | airbench (Dirac-initialised convolutions, batch norm with γ fixed at 1, ε 1e-12 and momentum 0.4, a global max pool into a bias-free Linear scaled by 1/9) [default: standard]" };
    static readonly Option<string?> ActivationOpt = new("--activation") { Description = "relu | sigmoid | tanh | gelu [default: relu]" };
    static readonly Option<double?> Dropout = new("--dropout") { Description = "Dropout probability after each hidden layer [default: 0]" };
    static readonly Option<double?> InputDropout = new("--input-dropout") { Description = "Dropout probability on the inputs [default: 0]" };
    static readonly Option<bool?> BatchNorm = new("--batchnorm") { Description = "Batch normalisation after each hidden Linear [default: off]" };
    static readonly Option<string?> OptimizerOpt = new("--optimizer") { Description = "sgd | adam | adamw [default: sgd]" };
    static readonly Option<double?> Lr = new("--lr") { Description = "Learning rate [default: 0.1]" };
    static readonly Option<double?> Momentum = new("--momentum") { Description = "SGD momentum [default: 0]" };
    static readonly Option<bool?> Nesterov = new("--nesterov") { Description = "Nesterov momentum [default: off]" };
    static readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "Weight decay λ [default: 0]" };
    static readonly Option<string?> Schedule = new("--schedule") { Description = "Learning-rate schedule: step | cosine | exp | warmup-cosine (per step) | one-cycle (per step: 0.2η up to η over 23% of training, then down to 0.07η, linear; airbench) | none [default: step]" };
    static readonly Option<double?> Warmup = new("--warmup") { Description = "warmup-cosine: epochs of linear warm-up (fractions allowed) [default: 1]" };
    static readonly Option<string?> AugmentOpt = new("--augment") { Description = "Training-image augmentation: none | flip | crop (4-pixel padding) | crop-flip | translate (±2 pixels) | translate-flip (±2 pixels of the reflection-padded image, and a flip) | translate-altflip (the same shifts, each image mirrored every other epoch) [default: none]" };
    static readonly Option<bool?> FlipAveragingOpt = new("--tta") { Description = "Also report the test accuracy with flip averaging (each image and its mirror, probabilities averaged) [default: off]" };
    static readonly Option<bool?> TtaTranslateOpt = new("--tta-translate") { Description = "With --tta, the mirrored pair weighs half and four views shifted one pixel up-left and down-right the other half [default: off]" };
    static readonly Option<double?> BiasLrScaleOpt = new("--bias-lr-scale") { Description = "sgd: batch-norm biases train at K× the learning rate with 1/K of the weight decay [default: 1]" };
    static readonly Option<int?> WhitenBiasEpochsOpt = new("--whiten-bias-epochs") { Description = "cnn with --whiten: train the stem's bias for K epochs, then freeze it (its input gradient, a convolution's worth of work, is no longer needed; airbench: 3) [default: 0, always trains]" };
    static readonly Option<bool?> LookaheadOpt = new("--lookahead") { Description = "From 30% of training on, every 5 steps set the weights to their exponential average (decay ramping up to 0.77; airbench) [default: off]" };
    static readonly Option<double?> LabelSmoothing = new("--label-smoothing") { Description = "Cross-entropy label smoothing ε in [0, 1) [default: 0]" };
    static readonly Option<int?> LrStep = new("--lr-step") { Description = "Step schedule: multiply the rate by --lr-gamma every K epochs [default: 20]" };
    static readonly Option<double?> LrGamma = new("--lr-gamma") { Description = "Step/exp schedule factor γ [default: 0.1]" };
    static readonly Option<int?> Epochs = new("--epochs") { Description = "Epochs [default: 60]" };
    static readonly Option<int?> BatchSize = new("--batch-size") { Description = "Minibatch size [default: 16]" };
    static readonly Option<ulong?> Seed = new("--seed") { Description = "Seed for initialisation, shuffling and dropout [default: 0]" };
    static readonly Option<int?> ValSize = new("--val-size") { Description = "Training images held out for validation [default: 5000 for MNIST, 1000 for CIFAR-10]" };
    static readonly Option<int?> TestSize = new("--test-size") { Description = "Evaluate on the first K test images (the classic CIFAR-10 exercise uses 1000) [default: all]" };
    static readonly Option<string?> Normalize = new("--normalize") { Description = "scale | mean-image | per-channel [default: scale for MNIST, per-channel for CIFAR-10]" };
    static readonly Option<string?> DTypeOpt = new("--dtype") { Description = "float32 | float64 [default: float32]" };
    static readonly Option<int?> Threads = new("--threads") { Description = "Threads for the kernels [default: all cores]" };
    static readonly Option<string?> Out = new("--out") { Description = "Run folder [default: runs/<dataset>-<model>-<timestamp>]" };
    static readonly Option<bool> DetectAnomaly = new("--detect-anomaly") { Description = "Check every op's output and gradient for NaN/Inf and stop at the first, naming the op and module (slow)" };
    static readonly Option<string?> Preset = new("--preset") { Description = "Named option set; explicit options override it: " + string.Join("; ", TrainSettings.Presets.Select(p => $"{p.Key} ({p.Value.Description})")) };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a network and write metrics, curves, a confusion matrix and the model to a run folder")
        {
            Dataset, Data, Model, Hidden, Conv, Kernel, ConvsPerStage, PoolFirst, Whiten, StyleOpt, ActivationOpt, Dropout, InputDropout, BatchNorm, OptimizerOpt, Lr, Momentum, Nesterov, WeightDecay,
            Schedule, Warmup, AugmentOpt, LabelSmoothing, FlipAveragingOpt, TtaTranslateOpt, BiasLrScaleOpt, LookaheadOpt, WhitenBiasEpochsOpt, LrStep, LrGamma, Epochs, BatchSize, Seed, ValSize, TestSize, Normalize, DTypeOpt, Threads, Out, RunFolder.OverwriteOption, Checkpoint.EveryOption, Checkpoint.ResumeOption, Checkpoint.StopAfterOption, DetectAnomaly, Preset,
            Distribution.Enabled, Distribution.Timeout, Distribution.CheckEveryStep,
        };
        cmd.SetAction(r =>
        {
            using var anomaly = r.GetValue(DetectAnomaly) ? Autograd.DetectAnomaly() : null;
            var (every, resume, stop) = Checkpoint.Options(r);
            if (resume is not null && r.GetValue(Out) is string o && Path.GetFullPath(o) != Path.GetFullPath(resume))
                throw new ArgumentException($"--resume {resume} continues that folder; --out {o} would be another");
            var s = Resolve(r);
            using var job = Distribution.Start(r);
            // Ranks on one machine share its cores: by default each takes its share, so they do not oversubscribe them.
            if (job is not null && r.GetValue(Threads) is null) s = s with { Threads = Math.Max(1, Environment.ProcessorCount / job.LocalRanks) };
            try
            {
                return Run(s, resume ?? r.GetValue(Out), r.GetValue(RunFolder.OverwriteOption), Environment.GetCommandLineArgs(),
                    every, resume is not null, stop, job, r.GetValue(Distribution.CheckEveryStep));
            }
            catch (Exception e) when (job is { Size: > 1 })
            {
                job.Fail(e is ArgumentException or InvalidDataException or IOException or InvalidOperationException or TrainingDivergedException ? e.Message : e.ToString());
                throw;   // not reached: the job ends in Fail
            }
        });
        return cmd;
    }

    static TrainSettings Resolve(ParseResult r)
    {
        var s = new TrainSettings();
        if (r.GetValue(Preset) is string preset)
        {
            if (!TrainSettings.Presets.TryGetValue(preset, out var p))
                throw new ArgumentException($"--preset: unknown preset '{preset}' ({string.Join(", ", TrainSettings.Presets.Keys)})");
            s = p.Apply(s) with { Preset = preset };
        }
        return s with
        {
            Dataset = r.GetValue(Dataset) ?? s.Dataset,
            Data = r.GetValue(Data) ?? s.Data,
            Model = r.GetValue(Model) ?? s.Model,
            Hidden = r.GetValue(Hidden) is string h ? (h.Trim().Length == 0 && (r.GetValue(Model) ?? s.Model) == "cnn" ? [] : ParseHidden(h, "--hidden")) : s.Hidden,
            Conv = r.GetValue(Conv) is string cv ? ParseHidden(cv, "--conv") : s.Conv,
            Kernel = (int)Validate.Positive(r.GetValue(Kernel) ?? s.Kernel, "--kernel"),
            ConvsPerStage = (int)Validate.Positive(r.GetValue(ConvsPerStage) ?? s.ConvsPerStage, "--convs-per-stage"),
            PoolFirst = r.GetValue(PoolFirst) ?? s.PoolFirst,
            Whiten = (int)Validate.NonNegative(r.GetValue(Whiten) ?? s.Whiten, "--whiten"),
            Style = r.GetValue(StyleOpt) is string st ? ParseEnum<CnnStyle>(st, "--style") : s.Style,
            Activation = r.GetValue(ActivationOpt) is string a ? ParseEnum<Activation>(a, "--activation") : s.Activation,
            Dropout = Validate.Probability(r.GetValue(Dropout) ?? s.Dropout, "--dropout"),
            InputDropout = Validate.Probability(r.GetValue(InputDropout) ?? s.InputDropout, "--input-dropout"),
            BatchNorm = r.GetValue(BatchNorm) ?? s.BatchNorm,
            Optimizer = Validate.OneOf(r.GetValue(OptimizerOpt) ?? s.Optimizer, "--optimizer", "sgd", "adam", "adamw"),
            LearningRate = Validate.Positive(r.GetValue(Lr) ?? s.LearningRate, "--lr"),
            Momentum = Validate.NonNegative(r.GetValue(Momentum) ?? s.Momentum, "--momentum"),
            Nesterov = r.GetValue(Nesterov) ?? s.Nesterov,
            WeightDecay = Validate.NonNegative(r.GetValue(WeightDecay) ?? s.WeightDecay, "--weight-decay"),
            Schedule = Validate.OneOf(r.GetValue(Schedule) ?? s.Schedule, "--schedule", "step", "cosine", "exp", "warmup-cosine", "one-cycle", "none"),
            Warmup = Validate.NonNegative(r.GetValue(Warmup) ?? s.Warmup, "--warmup"),
            Augment = Validate.OneOf(r.GetValue(AugmentOpt) ?? s.Augment, "--augment", "none", "flip", "crop", "crop-flip", "translate", "translate-flip", "translate-altflip"),
            FlipAveraging = r.GetValue(FlipAveragingOpt) ?? s.FlipAveraging,
            TtaTranslate = r.GetValue(TtaTranslateOpt) ?? s.TtaTranslate,
            BiasLrScale = Validate.Positive(r.GetValue(BiasLrScaleOpt) ?? s.BiasLrScale, "--bias-lr-scale"),
            Lookahead = r.GetValue(LookaheadOpt) ?? s.Lookahead,
            WhitenBiasEpochs = (int)Validate.NonNegative(r.GetValue(WhitenBiasEpochsOpt) ?? s.WhitenBiasEpochs, "--whiten-bias-epochs"),
            LabelSmoothing = Validate.Probability(r.GetValue(LabelSmoothing) ?? s.LabelSmoothing, "--label-smoothing"),
            LrStep = (int)Validate.Positive(r.GetValue(LrStep) ?? s.LrStep, "--lr-step"),
            LrGamma = Validate.Positive(r.GetValue(LrGamma) ?? s.LrGamma, "--lr-gamma"),
            Epochs = (int)Validate.Positive(r.GetValue(Epochs) ?? s.Epochs, "--epochs"),
            BatchSize = (int)Validate.Positive(r.GetValue(BatchSize) ?? s.BatchSize, "--batch-size"),
            Seed = r.GetValue(Seed) ?? s.Seed,
            ValidationSize = r.GetValue(ValSize) is int v ? (int)Validate.NonNegative(v, "--val-size") : s.ValidationSize,
            TestSize = r.GetValue(TestSize) is int t ? (int)Validate.Positive(t, "--test-size") : s.TestSize,
            Normalize = r.GetValue(Normalize) is string n ? ParseEnum<Normalization>(n.Replace("-", ""), "--normalize") : s.Normalize,
            DType = (r.GetValue(DTypeOpt) ?? "float32") switch
            {
                "float32" => DType.Float32,
                "float64" => DType.Float64,
                var d => throw new ArgumentException($"--dtype: '{d}' is not float32 or float64"),
            },
            Threads = (int)Validate.Positive(r.GetValue(Threads) ?? s.Threads, "--threads"),
        };
    }

    static int[] ParseHidden(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"{option}: give at least one width, e.g. 50 or 512,256");
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int w) && w > 0 ? w
            : throw new ArgumentException($"{option}: '{p}' is not a positive integer width")).ToArray();
    }

    static T ParseEnum<T>(string text, string option) where T : struct, Enum =>
        Enum.TryParse<T>(text, ignoreCase: true, out var v) && Enum.IsDefined(v) ? v
        : throw new ArgumentException($"{option}: '{text}' is not one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");



    internal static Optimizer CreateOptimizer(TrainSettings s, Module model)
    {
        var parameters = model.Parameters().ToArray();
        if (s.BiasLrScale != 1 && s.Optimizer != "sgd") throw new ArgumentException($"--bias-lr-scale: only for sgd (got --optimizer {s.Optimizer})");
        return s.Optimizer switch
        {
            "adam" => new Adam(parameters, s.LearningRate, weightDecay: s.WeightDecay),
            "adamw" => new AdamW(parameters, s.LearningRate, weightDecay: s.WeightDecay),
            _ when s.BiasLrScale != 1 => new Sgd(BiasGroups(model, parameters, s.BiasLrScale), s.LearningRate, s.Momentum, weightDecay: s.WeightDecay, nesterov: s.Nesterov),
            _ => new Sgd(parameters, s.LearningRate, s.Momentum, weightDecay: s.WeightDecay, nesterov: s.Nesterov),
        };
    }

    // Batch-norm biases at `scale`× the rate and 1/scale of the decay (the same shrink per step), the rest as given.
    static ParameterGroup[] BiasGroups(Module model, Tensor[] parameters, double scale)
    {
        var biases = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        void Walk(Module m)
        {
            if (m is BatchNormBase bn) biases.Add(bn.Bias);
            foreach (var (_, child) in m.Children()) Walk(child);
        }
        Walk(model);
        return [new ParameterGroup(parameters.Where(p => !biases.Contains(p))), new ParameterGroup(parameters.Where(biases.Contains), scale, 1 / scale)];
    }

    internal static LrScheduler? CreateSchedule(TrainSettings s, Optimizer o) => s.Schedule switch
    {
        "step" => new StepLR(o, s.LrStep, s.LrGamma),
        "cosine" => new CosineAnnealingLR(o, s.Epochs),
        "exp" => new ExponentialLR(o, s.LrGamma),
        "warmup-cosine" => s.Warmup < s.Epochs ? new WarmupCosineLR(o, s.Warmup, s.Epochs)
            : throw new ArgumentException($"--warmup: {s.Warmup} epochs of warm-up leave nothing of {s.Epochs} epochs"),
        "one-cycle" => new OneCycleLR(o, s.Epochs, pctStart: 0.23, divFactor: 5, finalDivFactor: 0.2 / 0.07, linear: true),
        _ => null,
    };

    static int Run(TrainSettings s, string? outDir, bool overwrite, string[] commandLine, int checkpointEvery = 0, bool resume = false, int stopAfter = int.MaxValue,
        Distribution? job = null, bool checkReplicasEveryStep = false)
    {
        bool leader = job is null || job.IsLeader;   // the one process that writes the run folder
        using var threads = Parallelism.Use(s.Threads);   // this run's kernels (training and evaluation), not a process-wide setting
        var total = Stopwatch.StartNew();
        // Distributed: rank 0 loads first (any download happens once), the others then read what it fetched; slow
        // start-ups wait at barriers with a long timeout, so the collectives' short one only covers training.
        if (job is not null && !job.IsLeader) job.StartupBarrier();
        var raw = Experiment.Load(s);
        if (job is not null && job.IsLeader) job.StartupBarrier();
        var data = Experiment.Prepare(s, raw);
        string dataset = s.Dataset == "idx" ? Path.GetFileName(Path.GetFullPath(s.Data!).TrimEnd('/')) : s.Dataset;
        string run = outDir ?? Path.Combine("runs", $"{dataset}-{s.Model}-{DateTime.Now:yyyyMMdd-HHmmss}");
        if (job is { Size: > 1 } && outDir is null) throw new ArgumentException("--distributed: give --out, so every rank names the same run folder");
        var g = new Generator(s.Seed);
        var model = Experiment.BuildModel(s, data, g);   // refuses a model that cannot fit, before any folder exists
        Experiment.InitWhitening(s, data, model);
        if (!resume && leader) RunFolder.Prepare(run, overwrite);
        job?.StartupBarrier();
        var optimizer = CreateOptimizer(s, model);
        var schedule = CreateSchedule(s, optimizer);
        double smoothing = s.LabelSmoothing;
        var trainer = new Trainer(model, optimizer, (logits, y) => logits.CrossEntropy(y, smoothing), schedule);
        var shuffling = new Generator(s.Seed + 1);
        // Distributed: every rank draws the same global batches (per-rank batch × ranks) and trains on its share of each.
        int ranks = job?.Size ?? 1;
        var loader = new DataLoader(data.TrainX, data.TrainY, s.BatchSize * ranks, shuffle: true, generator: shuffling, transform: Experiment.Augmentation(s, data),
            shard: job is null ? null : (job.Rank, job.Size));
        if (job is not null)
        {
            trainer.DataParallel = new DataParallel(job.Group, model);
            trainer.CheckReplicasEveryStep = checkReplicasEveryStep;
        }
        var lookahead = s.Lookahead ? new Lookahead(model, loader.Count, s.Epochs) : null;
        if (lookahead is not null) trainer.Callbacks.Add(lookahead);
        IEnumerable<(Tensor X, int[] Y)> batches = new Prefetch<(Tensor X, int[] Y)>(loader);   // the next batches are gathered (and augmented) while this one trains
        // Ctrl-C or SIGTERM end the current step, then what there is gets written (exit 130); what must match to resume
        // leaves out the thread count, which does not change results.
        using var session = new Checkpoint.Session(run, "train", model, optimizer, (s with { Threads = 1, Preset = null }).ToJson(), [g, shuffling],
            checkpointEvery, stopAfter, s.Epochs) { Writes = leader };

        ConsoleOutput.Line($"{dataset}: {data.TrainY.Length} train / {data.ValY.Length} validation / {data.TestY.Length} test, {data.Features} features, {data.Classes} classes");
        string shape = s.Model == "cnn"
            ? $"{data.Channels}×{data.Height}×{data.Width} {(s.Whiten > 0 ? $"whitening {s.Whiten}×{s.Whiten} → " : "")}conv {string.Join(",", s.Conv)} ({s.Kernel}×{s.Kernel}{(s.ConvsPerStage > 1 ? $", {s.ConvsPerStage} per stage" : "")}{(s.BatchNorm ? ", batchnorm" : "")}{(s.Activation != Activation.Relu ? ", " + s.Activation.ToString().ToLowerInvariant() : "")}{(s.Style != CnnStyle.Standard ? ", " + s.Style.ToString().ToLowerInvariant() + " style" : "")}) fc {(s.Hidden.Length > 0 ? s.HiddenText + "-" : "")}{data.Classes}"
            : $"{data.Features}-{s.HiddenText}-{data.Classes} {s.Activation.ToString().ToLowerInvariant()}";
        ConsoleOutput.Line($"model: {s.Model} {shape}, {model.ParameterCount():N0} parameters; {s.Optimizer} lr {s.LearningRate}, batch {s.BatchSize}, {s.Epochs} epochs, seed {s.Seed}");
        ConsoleOutput.Line($"run folder: {run}");
        if (job is not null)
            ConsoleOutput.Line($"distributed: {job.Size} ranks ({job.Group.LibraryVersion}), batch {s.BatchSize} per rank = {s.BatchSize * job.Size} per step, {s.Threads} kernel thread{(s.Threads == 1 ? "" : "s")} per rank");
        ConsoleOutput.Line($"{"epoch",5} {"train loss",11} {"train acc",9} {"val acc",8} {"lr",9} {"seconds",8} {"samples/s",10}");

        var history = new List<EpochMetrics>();
        var csv = new StringWriter(CultureInfo.InvariantCulture);
        int done = 0;
        if (resume)
        {
            (done, string metrics) = session.Resume(schedule);
            loader.Epoch = done;   // alternating flips continue on the right side
            lookahead?.Resume(done);
            csv.Write(metrics);
            history.AddRange(Checkpoint.ParseHistory(metrics));
        }
        else csv.WriteLine("epoch,train_loss,train_accuracy,val_accuracy,lr,seconds,samples_per_second");
        for (int epoch = done + 1; epoch <= s.Epochs; epoch++)
        {
            // As torch's requires_grad_(False) with zero_grad(set_to_none): the optimizer skips it, momentum and decay included.
            if (s.Whiten > 0 && s.WhitenBiasEpochs > 0 && epoch > s.WhitenBiasEpochs && Cnn.FirstConv(model)?.Bias is { RequiresGrad: true } stemBias)
            {
                stemBias.RequiresGrad = false;
                stemBias.Grad = null;
            }
            var m = ConsoleOutput.WithProgress($"epoch {epoch}/{s.Epochs}", report =>
            {
                trainer.StepProgress = new SyncProgress<StepProgress>(p =>
                    report(p.Step, p.Steps, $"loss {ConsoleOutput.F(p.RunningLoss)}  {p.SamplesPerSecond:N0} samples/s"));
                Func<double>? validate = data.ValY.Length == 0 ? null : () => Trainer.Evaluate(model, Experiment.Batches(data.ValX, data.ValY), data.Classes).Accuracy;
                return trainer.RunEpoch(epoch, batches, validate, session.Interrupted);   // no validation set: "-", not 0%
            });
            if (!m.Completed && !leader) return 130;
            if (!m.Completed)
            {
                var (partialAccuracy, partialConfusion) = Trainer.Evaluate(model, Experiment.Batches(data.TestX, data.TestY), data.Classes);
                string at = $"epoch {epoch}, step {m.Steps}";
                RunFolder.Write(run, s, dataset, history, partialAccuracy, partialConfusion, data, model, total.Elapsed.TotalSeconds, commandLine, interrupted: at);
                Console.Error.WriteLine($"backprop: interrupted at {at}; wrote summary.json, plots and the current model to {run}{session.ResumeHint}");
                return 130;
            }
            history.Add(m);
            string val = m.ValAccuracy is double va ? ConsoleOutput.F(va * 100, "0.00") + "%" : "-";
            ConsoleOutput.Line($"{m.Epoch,5} {ConsoleOutput.F(m.TrainLoss),11} {ConsoleOutput.F(m.TrainAccuracy * 100, "0.00") + "%",9} {val,8} {m.LearningRate.ToString("G4", CultureInfo.InvariantCulture),9} {ConsoleOutput.F(m.Seconds, "0.0"),8} {m.SamplesPerSecond,10:N0}");
            csv.WriteLine(string.Join(",", m.Epoch.ToString(CultureInfo.InvariantCulture), Validate.RoundTrip(m.TrainLoss), Validate.RoundTrip(m.TrainAccuracy), m.ValAccuracy is double v2 ? Validate.RoundTrip(v2) : "",
                Validate.RoundTrip(m.LearningRate), m.Seconds.ToString("F3", CultureInfo.InvariantCulture), m.SamplesPerSecond.ToString("F0", CultureInfo.InvariantCulture)));
            if (leader) Serialization.AtomicFile.WriteAllText(Path.Combine(run, "metrics.csv"), csv.ToString());
            if (session.AfterEpoch(epoch, csv.ToString())) return 0;
        }
        if (trainer.DataParallel is { } dp && job is not null)
        {
            // The share of training time not spent in collectives: what the ranks' compute would scale by were it alone.
            double trained = history.Sum(h => h.Seconds), communicating = dp.CommunicationTime.TotalSeconds;
            ConsoleOutput.Line($"distributed: {job.Size} ranks, {ConsoleOutput.F(history.Count > 0 ? history[^1].SamplesPerSecond : 0, "N0")} samples/s in the last epoch; " +
                $"collectives took {ConsoleOutput.F(communicating, "0.00")} s of {ConsoleOutput.F(trained, "0.00")} s of training: scaling efficiency {ConsoleOutput.F(100 * (1 - communicating / trained), "0.0")}%; " +
                $"the ranks' weights agreed bitwise after every {(checkReplicasEveryStep ? "step" : "epoch")}");
        }

        var (testAccuracy, confusion) = Trainer.Evaluate(model, Experiment.Batches(data.TestX, data.TestY), data.Classes);
        double? flipAccuracy = s.FlipAveraging
            ? Trainer.Evaluate(new FlipAveraging(model, data.Channels, data.Height, data.Width, s.TtaTranslate), Experiment.Batches(data.TestX, data.TestY), data.Classes).Accuracy
            : null;
        ConsoleOutput.Line($"test accuracy: {ConsoleOutput.F(testAccuracy * 100, "0.00")}% ({data.TestY.Length} images)" +
            (flipAccuracy is double fa ? $"; with flip{(s.TtaTranslate ? " and shift" : "")} averaging {ConsoleOutput.F(fa * 100, "0.00")}%" : ""));
        ConsoleOutput.PrintConfusion(confusion, data.ClassNames);

        if (!leader) return 0;
        RunFolder.Write(run, s, dataset, history, testAccuracy, confusion, data, model, total.Elapsed.TotalSeconds, commandLine, flipAccuracy: flipAccuracy);
        ConsoleOutput.Line($"wrote {run}: metrics.csv, summary.json, loss.png, accuracy.png, {(s.Model == "cnn" ? "filters.png" : "weights.png")}, confusion.png, model.safetensors, command.txt");
        return 0;
    }

}
