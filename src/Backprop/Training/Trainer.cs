using System.Diagnostics;
using Backprop.Nn;
using Backprop.Optim;

namespace Backprop.Training;

/// <summary>Metrics of one finished epoch. Accuracies are fractions in [0, 1].</summary>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double? ValAccuracy,
    double LearningRate, double Seconds, double SamplesPerSecond);

/// <summary>Progress within an epoch, reported every few steps.</summary>
public readonly record struct StepProgress(int Epoch, int Step, int Steps, double RunningLoss, double SamplesPerSecond);

/// <summary>Training stopped because the loss became NaN/Inf or exploded.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// The explicit loop: for each minibatch, zero-grad → forward → loss → backward → step; the learning-rate
/// schedule steps once per epoch. Reports through callbacks so the library never depends on a console.
/// Training accuracy is measured on the training minibatches as they are seen (model in training mode).
/// </summary>
public sealed class Trainer(Module model, Optimizer optimizer, Func<Tensor, int[], Tensor> loss, LrScheduler? scheduler = null)
{
    public Module Model { get; } = model;
    public Optimizer Optimizer { get; } = optimizer;
    public LrScheduler? Scheduler { get; } = scheduler;

    /// <summary>Called every <see cref="ProgressInterval"/> steps and at the end of each epoch.</summary>
    public IProgress<StepProgress>? StepProgress { get; set; }
    public int ProgressInterval { get; set; } = 50;

    /// <summary>Called after each epoch with its metrics.</summary>
    public IProgress<EpochMetrics>? EpochProgress { get; set; }

    /// <summary>A loss above this multiple of the first steps' loss counts as divergence.</summary>
    public double DivergenceFactor { get; set; } = 1e3;

    double reference = double.NaN;   // mean loss of the first steps, the yardstick for divergence

    /// <summary>Runs epochs 1..<paramref name="epochs"/>; <paramref name="batches"/> gives one epoch's minibatches each call.</summary>
    public List<EpochMetrics> Fit(Func<int, IEnumerable<(Tensor X, int[] Y)>> batches, int epochs, Func<double>? validationAccuracy = null)
    {
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "epochs must be ≥ 0");
        var history = new List<EpochMetrics>();
        for (int epoch = 1; epoch <= epochs; epoch++) history.Add(RunEpoch(epoch, batches(epoch), validationAccuracy));
        return history;
    }

    /// <summary>One epoch over <paramref name="batches"/>, then the schedule step and the validation measurement.</summary>
    public EpochMetrics RunEpoch(int epoch, IEnumerable<(Tensor X, int[] Y)> batches, Func<double>? validationAccuracy = null)
    {
        Model.Train();
        var clock = Stopwatch.StartNew();
        double lossSum = 0; long correct = 0, seen = 0; int step = 0;
        double lr = Optimizer.LearningRate;
        int steps = batches is IReadOnlyCollection<(Tensor X, int[] Y)> rc ? rc.Count : batches.TryGetNonEnumeratedCount(out int n) ? n : 0;
        using var e = batches.GetEnumerator();
        while (true)
        {
            if (!e.MoveNext()) break;
            var (x, y) = e.Current;
            step++;
            Optimizer.ZeroGrad();
            var output = Model.Forward(x);
            var l = loss(output, y);
            double value = l.Item();
            if (!double.IsFinite(value))
                throw new TrainingDivergedException($"training diverged at epoch {epoch}, step {step}: loss is {value} (try a lower learning rate)");
            if (double.IsNaN(reference) && step >= Math.Min(10, Math.Max(1, steps))) reference = (lossSum / Math.Max(1, seen) * (step - 1) + value) / step;
            if (!double.IsNaN(reference) && value > DivergenceFactor * Math.Max(reference, 1e-3))
                throw new TrainingDivergedException($"training diverged at epoch {epoch}, step {step}: loss {value:G4} is over {DivergenceFactor:G}× its starting value {reference:G4} (try a lower learning rate)");
            l.Backward();
            Optimizer.Step();

            lossSum += value * y.Length;
            correct += CountCorrect(output, y);
            seen += y.Length;
            if (StepProgress is not null && (step % ProgressInterval == 0 || step == steps))
                StepProgress.Report(new StepProgress(epoch, step, steps, lossSum / seen, seen / clock.Elapsed.TotalSeconds));
        }
        if (seen == 0) throw new InvalidOperationException($"epoch {epoch} had no training batches");
        double trainSeconds = clock.Elapsed.TotalSeconds;
        Scheduler?.Step();
        double? val = validationAccuracy?.Invoke();
        var m = new EpochMetrics(epoch, lossSum / seen, correct / (double)seen, val, lr, trainSeconds, seen / trainSeconds);
        EpochProgress?.Report(m);
        return m;
    }

    /// <summary>Number of rows whose argmax matches the label.</summary>
    public static int CountCorrect(Tensor logits, ReadOnlySpan<int> labels)
    {
        int ok = 0, c = logits.Size(1);
        logits = logits.Dense();
        for (int i = 0; i < labels.Length; i++)
        {
            int pred = logits.DType == DType.Float32
                ? System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsFloatSpan().Slice(i * c, c))
                : System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsDoubleSpan().Slice(i * c, c));
            if (pred == labels[i]) ok++;
        }
        return ok;
    }

    /// <summary>Accuracy and confusion matrix (rows: true class, columns: predicted) in eval mode, without a graph.</summary>
    public static (double Accuracy, int[,] Confusion) Evaluate(Module model, IEnumerable<(Tensor X, int[] Y)> batches, int classes)
    {
        bool wasTraining = model.Training;
        model.Eval();
        using var _ = Autograd.NoGrad();
        var confusion = new int[classes, classes];
        long correct = 0, total = 0;
        using var e = batches.GetEnumerator();
        while (true)
        {
            if (!e.MoveNext()) break;
            var (x, y) = e.Current;
            var pred = model.Forward(x).ArgMax(1);
            for (int i = 0; i < y.Length; i++)
            {
                if ((uint)pred[i] < (uint)classes && (uint)y[i] < (uint)classes) confusion[y[i], pred[i]]++;
                if (pred[i] == y[i]) correct++;
            }
            total += y.Length;
        }
        model.Train(wasTraining);
        return (total == 0 ? 0 : correct / (double)total, confusion);
    }
}
