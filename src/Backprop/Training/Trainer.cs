using System.Diagnostics;
using Backprop.Nn;
using Backprop.Optim;

namespace Backprop.Training;

/// <summary>
/// Metrics of one epoch. <see cref="Metrics"/> holds the step's named metrics averaged per sample (e.g. "accuracy");
/// <see cref="Validation"/> what the validation routine returned. <see cref="Completed"/> is false for an epoch cut
/// short by cancellation. Accuracies are fractions in [0, 1].
/// </summary>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double? ValAccuracy,
    double LearningRate, double Seconds, double SamplesPerSecond)
{
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
    public IReadOnlyDictionary<string, double>? Validation { get; init; }
    public int Steps { get; init; }
    public bool Completed { get; init; } = true;
}

/// <summary>Progress within an epoch, reported every few steps.</summary>
public readonly record struct StepProgress(int Epoch, int Step, int Steps, double RunningLoss, double SamplesPerSecond);

/// <summary>Training stopped because the loss became NaN/Inf or exploded.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>What one training step computed: the loss to back-propagate, the samples it covered, and metric sums over them.</summary>
public sealed class StepResult(Tensor loss, int samples)
{
    readonly List<(string Name, double Sum)> sums = [];
    public Tensor Loss { get; } = loss;
    public int Samples { get; } = samples;
    public IReadOnlyList<(string Name, double Sum)> Sums => sums;

    /// <summary>Adds a metric as its sum over this step's samples (e.g. correct predictions, or a per-sample mean × samples).</summary>
    public StepResult With(string name, double sum) { sums.Add((name, sum)); return this; }
}

/// <summary>Told of each step and epoch; returning true from <see cref="OnEpochEnd"/> stops training (early stopping).</summary>
public interface ITrainerCallback
{
    void OnStep(int epoch, int step, double loss) { }
    bool OnEpochEnd(EpochMetrics metrics) => false;
}

/// <summary>
/// The one training loop: for each batch, zero-grad → the step (forward and loss) → backward → optional gradient
/// clipping → optimizer step; the schedule steps once per completed epoch. Works for any model and loss — a
/// classifier, a regression, several outputs, a VAE's ELBO — through <typeparamref name="TBatch"/> and the step
/// function, reports through callbacks (the library never depends on a console), stops cleanly at a step boundary
/// on cancellation, and runs its kernels with its own thread count.
/// </summary>
public class Trainer<TBatch>(Module model, Optimizer optimizer, Func<TBatch, StepResult> step, LrScheduler? scheduler = null)
{
    public Module Model { get; } = model;
    public Optimizer Optimizer { get; } = optimizer;
    public LrScheduler? Scheduler { get; } = scheduler;

    /// <summary>Called every <see cref="ProgressInterval"/> steps and at the end of each epoch.</summary>
    public IProgress<StepProgress>? StepProgress { get; set; }
    public int ProgressInterval { get; set; } = 50;

    /// <summary>Called after each epoch with its metrics.</summary>
    public IProgress<EpochMetrics>? EpochProgress { get; set; }

    public List<ITrainerCallback> Callbacks { get; } = [];

    /// <summary>A loss above this multiple of the first steps' loss counts as divergence.</summary>
    public double DivergenceFactor { get; set; } = 1e3;

    /// <summary>Rescales all gradients so their joint L2 norm is at most this before each step (torch's clip_grad_norm_).</summary>
    public double? ClipGradNorm { get; set; }

    /// <summary>Kernel threads while this trainer runs (default: <see cref="Parallelism.MaxThreads"/>); other code is unaffected.</summary>
    public int? Threads { get; set; }

    /// <summary>
    /// Data-parallel training across processes: set on every rank, each fed its own shard of every batch. Rank 0's state
    /// is broadcast before the first step, gradients are averaged after each backward pass (so the loss, divergence
    /// checks and clipping see the global batch) and epoch metrics are summed over the ranks.
    /// </summary>
    public DataParallel? DataParallel { get; set; }

    /// <summary>With <see cref="DataParallel"/>: verify after every step (not only each epoch) that the ranks' weights agree bitwise.</summary>
    public bool CheckReplicasEveryStep { get; set; }

    double reference = double.NaN;   // the first step's loss: the yardstick for divergence (later steps may already have exploded)
    long stepsTaken;
    bool broadcast;

    /// <summary>
    /// Runs epochs <paramref name="firstEpoch"/>..<paramref name="epochs"/>; <paramref name="batches"/> gives one epoch's
    /// batches each call, <paramref name="validate"/> (if given) the validation metrics after each. On cancellation the
    /// current step finishes and the history so far is returned, its last epoch marked incomplete.
    /// </summary>
    public List<EpochMetrics> Fit(Func<int, IEnumerable<TBatch>> batches, int epochs, Func<IReadOnlyDictionary<string, double>>? validate = null,
        CancellationToken cancellation = default, int firstEpoch = 1)
    {
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "epochs must be ≥ 0");
        var history = new List<EpochMetrics>();
        // Under data parallelism the ranks decide together, at the end of each epoch (RunEpoch), whether to stop.
        for (int epoch = firstEpoch; epoch <= epochs && (DataParallel is not null || !cancellation.IsCancellationRequested); epoch++)
        {
            var m = RunEpoch(epoch, batches(epoch), validate, cancellation);
            history.Add(m);
            if (!m.Completed) break;
            bool stop = false;
            foreach (var c in Callbacks) stop |= c.OnEpochEnd(m);
            if (stop) break;
        }
        return history;
    }

    /// <summary>One epoch over <paramref name="batches"/>, then the schedule step and the validation measurement.</summary>
    public EpochMetrics RunEpoch(int epoch, IEnumerable<TBatch> batches, Func<IReadOnlyDictionary<string, double>>? validate = null,
        CancellationToken cancellation = default)
    {
        using var threads = Threads is int t ? Parallelism.Use(t) : null;
        Model.Train();
        var clock = Stopwatch.StartNew();
        double lossSum = 0; long seen = 0; int steps = 0;
        var sums = new Dictionary<string, double>();
        int expected = batches is IReadOnlyCollection<TBatch> rc ? rc.Count : batches.TryGetNonEnumeratedCount(out int n) ? n : 0;
        if (Scheduler is { PerStep: true } atStart && expected > 0) Optimizer.LearningRate = atStart.RateAt((double)(epoch - 1));   // the epoch's first rate, reported below
        double lr = Optimizer.LearningRate;
        bool completed = true;
        var dp = DataParallel;
        if (dp is not null && !broadcast) { dp.BroadcastState(); broadcast = true; }
        bool hasBuffers = dp is not null && Model.NamedBuffers().Any();
        foreach (var batch in batches)
        {
            // Under data parallelism every rank must take every step: a cancellation is honoured at epoch ends only.
            if (dp is null && cancellation.IsCancellationRequested) { completed = false; break; }
            steps++;
            if (Scheduler is { PerStep: true } ps && expected > 0) Optimizer.LearningRate = ps.RateAt(epoch - 1 + (steps - 1) / (double)expected);
            Optimizer.ZeroGrad();
            var r = step(batch);
            double value = r.Loss.Item();
            long samples = r.Samples;
            if (dp is null) CheckDivergence(value, epoch, steps, expected, lossSum, seen);
            r.Loss.Backward();
            if (dp is not null)
            {
                (value, samples) = dp.AverageGradients(Optimizer.Parameters, r.Samples, value);
                CheckDivergence(value, epoch, steps, expected, lossSum, seen);   // the global loss: every rank decides alike
            }
            if (ClipGradNorm is double max) CheckGradientNorm(Gradients.ClipNorm(Optimizer.Parameters, max), epoch, steps);
            else if (stepsTaken % 16 == 0) CheckGradientNorm(Gradients.Norm(Optimizer.Parameters), epoch, steps);   // a pass over the gradients: not every step
            stepsTaken++;
            Optimizer.Step();
            if (dp is not null)
            {
                if (hasBuffers) dp.BroadcastBuffers();
                if (CheckReplicasEveryStep) dp.CheckReplicas($"after epoch {epoch}, step {steps}");
            }

            lossSum += value * samples;
            seen += samples;
            foreach (var (name, sum) in r.Sums) sums[name] = sums.GetValueOrDefault(name) + sum;
            foreach (var c in Callbacks) c.OnStep(epoch, steps, value);
            if (StepProgress is not null && (steps % ProgressInterval == 0 || steps == expected))
                StepProgress.Report(new StepProgress(epoch, steps, expected, lossSum / seen, seen / clock.Elapsed.TotalSeconds));
        }
        if (dp is not null)
        {
            // Metric sums over all ranks' samples (the loss and sample count are global already); names sorted alike everywhere.
            // The last value counts the ranks asked to stop: all ranks agree to stop here, or all go on (a rank that
            // stopped alone would leave the others waiting in the next epoch's first all-reduce).
            var names = sums.Keys.Order(StringComparer.Ordinal).ToArray();
            var values = new double[names.Length + 1];
            for (int i = 0; i < names.Length; i++) values[i] = sums[names[i]];
            values[^1] = cancellation.IsCancellationRequested ? 1 : 0;
            dp.Sum(values);
            for (int i = 0; i < names.Length; i++) sums[names[i]] = values[i];
            dp.CheckReplicas($"after epoch {epoch}");
            if (values[^1] > 0) completed = false;
        }
        if (seen == 0 && completed) throw new InvalidOperationException($"epoch {epoch} had no training batches");
        double seconds = clock.Elapsed.TotalSeconds;
        var means = sums.ToDictionary(kv => kv.Key, kv => seen == 0 ? double.NaN : kv.Value / seen);
        IReadOnlyDictionary<string, double>? val = null;
        if (completed)
        {
            Scheduler?.Step();
            val = validate?.Invoke();
        }
        var m = new EpochMetrics(epoch, seen == 0 ? double.NaN : lossSum / seen, means.GetValueOrDefault("accuracy", double.NaN),
            val is not null && val.TryGetValue("accuracy", out var va) ? va : null, lr, seconds, seen / seconds)
        { Metrics = means, Validation = val, Steps = steps, Completed = completed };
        if (completed) EpochProgress?.Report(m);
        return m;
    }

    void CheckDivergence(double value, int epoch, int step, int steps, double lossSum, long seen)
    {
        if (!double.IsFinite(value))
            throw new TrainingDivergedException($"training diverged at epoch {epoch}, step {step}: loss is {value} (try a lower learning rate)");
        if (double.IsNaN(reference)) reference = value;
        else if (value > DivergenceFactor * Math.Max(reference, 1e-3))
            throw new TrainingDivergedException($"training diverged at epoch {epoch}, step {step}: loss {value:G4} is over {DivergenceFactor:G}× the first step's {reference:G4} (try a lower learning rate)");
    }

    static void CheckGradientNorm(double norm, int epoch, int step)
    {
        if (!double.IsFinite(norm))
            throw new TrainingDivergedException($"training diverged at epoch {epoch}, step {step}: the gradient norm is {norm} with a finite loss (Autograd.DetectAnomaly() finds the op)");
    }
}

/// <summary>
/// The classifier's trainer: batches of (inputs, class indices), a loss of (model output, labels), and training
/// accuracy ("accuracy") measured on the minibatches as they are seen (model in training mode).
/// </summary>
public sealed class Trainer(Module model, Optimizer optimizer, Func<Tensor, int[], Tensor> loss, LrScheduler? scheduler = null)
    : Trainer<(Tensor X, int[] Y)>(model, optimizer, b =>
    {
        var output = model.Forward(b.X);
        return new StepResult(loss(output, b.Y), b.Y.Length).With("accuracy", CountCorrect(output, b.Y));
    }, scheduler)
{
    /// <summary>Epochs 1..<paramref name="epochs"/>, with the validation accuracy (if given) measured after each.</summary>
    public List<EpochMetrics> Fit(Func<int, IEnumerable<(Tensor X, int[] Y)>> batches, int epochs, Func<double>? validationAccuracy, CancellationToken cancellation = default) =>
        Fit(batches, epochs, validationAccuracy is null ? null : () => new Dictionary<string, double> { ["accuracy"] = validationAccuracy() }, cancellation);

    /// <summary>One epoch, then the validation accuracy (if given) as the epoch's <see cref="EpochMetrics.ValAccuracy"/>.</summary>
    public EpochMetrics RunEpoch(int epoch, IEnumerable<(Tensor X, int[] Y)> batches, Func<double>? validationAccuracy, CancellationToken cancellation = default) =>
        RunEpoch(epoch, batches, validationAccuracy is null ? null : () => new Dictionary<string, double> { ["accuracy"] = validationAccuracy() }, cancellation);

    /// <summary>Number of rows whose argmax matches the label (read on the host, row by row: no allocation).</summary>
    public static int CountCorrect(Tensor logits, ReadOnlySpan<int> labels)
    {
        int ok = 0, c = logits.Size(1);
        var dense = logits.Dense();
        for (int i = 0; i < labels.Length; i++)
        {
            int pred = dense.DType == DType.Float32
                ? System.Numerics.Tensors.TensorPrimitives.IndexOfMax(dense.Span<float>().Slice(i * c, c))
                : System.Numerics.Tensors.TensorPrimitives.IndexOfMax(dense.Span<double>().Slice(i * c, c));
            if (pred == labels[i]) ok++;
        }
        return ok;
    }

    /// <summary>Accuracy and confusion matrix (rows: true class, columns: predicted) in eval mode, without a graph.</summary>
    public static (double Accuracy, int[,] Confusion) Evaluate(Module model, IEnumerable<(Tensor X, int[] Y)> batches, int classes)
    {
        var confusion = new int[classes, classes];
        var m = Evaluation.Run(model, batches, b =>
        {
            var pred = model.Forward(b.X).ArgMax(1);
            int correct = 0;
            for (int i = 0; i < b.Y.Length; i++)
            {
                if ((uint)pred[i] < (uint)classes && (uint)b.Y[i] < (uint)classes) confusion[b.Y[i], pred[i]]++;
                if (pred[i] == b.Y[i]) correct++;
            }
            return (b.Y.Length, [("accuracy", correct)]);
        });
        return (m.GetValueOrDefault("accuracy", 0), confusion);
    }
}

/// <summary>
/// The loop a user writes by hand — zero-grad → forward → loss → backward → step, nothing else — kept as the baseline
/// that benchmarks measure the <see cref="Trainer"/> against (its bookkeeping must cost next to nothing).
/// </summary>
public static class PlainLoop
{
    public static void Epoch(Module model, Optimizer optimizer, IEnumerable<(Tensor X, int[] Y)> batches, Func<Tensor, int[], Tensor> loss)
    {
        foreach (var (x, y) in batches)
        {
            optimizer.ZeroGrad();
            var l = loss(model.Forward(x), y);
            l.Backward();
            optimizer.Step();
        }
    }
}

/// <summary>The one evaluation routine: a model in eval mode, no graph, metric sums averaged per sample.</summary>
public static class Evaluation
{
    /// <summary>
    /// Runs <paramref name="measure"/> on every batch in an eval context (<see cref="Module.EvalContext"/>: no dropout,
    /// batch-norm running statistics, nothing updated, the model's own mode untouched — safe while other threads use the
    /// model) without a graph, and returns each metric's per-sample mean.
    /// </summary>
    public static Dictionary<string, double> Run<TBatch>(Module model, IEnumerable<TBatch> batches, Func<TBatch, (int Samples, (string Name, double Sum)[] Sums)> measure)
    {
        using var eval = Module.EvalContext();
        {
            using var _ = Autograd.NoGrad();
            var sums = new Dictionary<string, double>();
            long seen = 0;
            foreach (var batch in batches)
            {
                var (samples, values) = measure(batch);
                seen += samples;
                foreach (var (name, sum) in values) sums[name] = sums.GetValueOrDefault(name) + sum;
            }
            return sums.ToDictionary(kv => kv.Key, kv => seen == 0 ? 0 : kv.Value / seen);
        }
    }
}

/// <summary>Gradient utilities (torch.nn.utils).</summary>
public static class Gradients
{
    /// <summary>The joint L2 norm of the parameters' gradients (NaN or ∞ if any element is).</summary>
    public static double Norm(IEnumerable<Tensor> parameters)
    {
        double total = 0;
        foreach (var p in parameters) if (p.Grad is { } g) total += Backends.Backend.Current.Dot(g, g);
        return Math.Sqrt(total);
    }

    /// <summary>Scales the parameters' gradients in place so their joint L2 norm is at most <paramref name="maxNorm"/>; returns the norm before (torch's clip_grad_norm_).</summary>
    public static double ClipNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "clip_grad_norm: max norm must be positive");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToArray();
        double total = 0;
        foreach (var g in grads) total += Backends.Backend.Current.Dot(g, g);
        double norm = Math.Sqrt(total);
        double scale = maxNorm / (norm + 1e-6);   // PyTorch's ε
        if (scale < 1)
            foreach (var g in grads) Backends.Backend.Current.Axpy(scale - 1, g.Detach(), g);   // g ← g + (s − 1)g = s·g
        return norm;
    }
}
