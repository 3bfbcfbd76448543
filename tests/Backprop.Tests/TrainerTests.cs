using Backprop.Data;
using Backprop.Models;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Tests;

/// <summary>The training loop: metrics per epoch, schedules per epoch, and a clear stop on divergence.</summary>
public class TrainerTests
{
    static (Tensor X, int[] Y) Blobs(int n, Generator g)
    {
        var x = Tensor.Normal([n, 4], 0, 1, g);
        var y = new int[n];
        for (int i = 0; i < n; i++) { y[i] = i % 3; x[i, y[i]] += 3; }
        return (x, y);
    }

    [Fact]
    public void Fit_reports_each_epoch_and_steps_the_schedule_once_per_epoch()
    {
        var g = new Generator(2);
        var (x, y) = Blobs(300, g);
        var model = Mlp.Create(4, [16], 3, g);
        var opt = new Sgd(model.Parameters(), 0.1);
        var seen = new List<EpochMetrics>();
        var trainer = new Trainer(model, opt, static (o, t) => o.CrossEntropy(t), new StepLR(opt, 1, 0.5))
        {
            EpochProgress = new SyncProgress<EpochMetrics>(seen.Add),
        };
        var loader = new DataLoader(x, y, 32, shuffle: true, generator: g);
        var history = trainer.Fit(_ => loader, 3, () => Trainer.Evaluate(model, new DataLoader(x, y, 100), 3).Accuracy);
        Assert.Equal(history, seen);
        Assert.Equal([0.1, 0.05, 0.025], history.Select(m => m.LearningRate));
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss);
        Assert.True(history[^1].ValAccuracy > 0.9);
        Assert.All(history, m => Assert.InRange(m.TrainAccuracy, 0, 1));
    }

    [Fact]
    public void A_diverging_loss_stops_training_naming_the_epoch_and_step()
    {
        var g = new Generator(3);
        var (x, y) = Blobs(300, g);
        x = x * 1e3;
        var model = Mlp.Create(4, [16], 3, g);
        var trainer = new Trainer(model, new Sgd(model.Parameters(), 1e3), static (o, t) => o.CrossEntropy(t));
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(_ => new DataLoader(x, y, 10), 5));
        Assert.Matches(@"epoch \d+, step \d+", e.Message);
    }

    [Fact]
    public void Evaluate_counts_a_confusion_matrix()
    {
        var logits = Tensor.From(new float[,] { { 5, 0 }, { 0, 5 }, { 5, 0 } });
        var model = new Nn.Sequential(new Nn.Identity());
        var (acc, confusion) = Trainer.Evaluate(model, [(logits, new[] { 0, 1, 1 })], 2);
        Assert.Equal(2 / 3.0, acc, 12);
        Assert.Equal(new[,] { { 1, 0 }, { 1, 1 } }, confusion);
    }

    [Fact]
    public void Cancelling_a_fit_mid_epoch_stops_at_a_step_boundary_with_a_consistent_model_and_a_partial_history()
    {
        var g = new Generator(4);
        var (x, y) = Blobs(640, g);
        var model = Mlp.Create(4, [16], 3, g);
        var opt = new Sgd(model.Parameters(), 0.1);
        using var cancel = new CancellationTokenSource();
        var trainer = new Trainer(model, opt, (o, t) => o.CrossEntropy(t));
        trainer.Callbacks.Add(new CancelAt(epoch: 2, step: 7, cancel));
        var history = trainer.Fit(_ => new DataLoader(x, y, 32, shuffle: true, generator: g), 5, (Func<double>?)null, cancel.Token);
        Assert.Equal(2, history.Count);
        Assert.True(history[0].Completed);
        Assert.Equal(20, history[0].Steps);
        Assert.False(history[1].Completed);
        Assert.Equal(7, history[1].Steps);   // the 7th step finished, the 8th never started
        Assert.Equal(27, opt.Steps);
        Assert.All(model.Parameters(), p => Assert.True(p.ToFloatArray().All(float.IsFinite)));
        Assert.True(history[1].TrainLoss < history[0].TrainLoss);
    }

    [Fact]
    public void Any_model_and_loss_train_through_the_one_loop_with_named_metrics_clipping_and_own_threads()
    {
        // A regression with two outputs: the step returns the loss and metrics of its own.
        var g = new Generator(5);
        var x = Tensor.Uniform([256, 3], -1, 1, g);
        var target = x.MatMul(Tensor.From(new float[,] { { 1, -2 }, { 0.5f, 1 }, { -1, 0.3f } }));
        var model = new Nn.Sequential(new Nn.Linear(3, 16, g), new Nn.Tanh(), new Nn.Linear(16, 2, g));
        var opt = new Adam(model.Parameters(), 0.01);
        var trainer = new Trainer<(Tensor X, Tensor Y)>(model, opt, b =>
        {
            var p = model.Forward(b.X);
            var err = p - b.Y;
            return new StepResult(p.Mse(b.Y), b.X.Size(0)).With("abs_error", err.Abs().Sum().Item() / 2);
        }) { ClipGradNorm = 1.0, Threads = 1 };
        var batches = Enumerable.Range(0, 8).Select(i => (x.SliceRows(i * 32, 32), target.SliceRows(i * 32, 32))).ToArray();
        var history = trainer.Fit(_ => batches, 30, () => Evaluation.Run(model, batches, b => (b.Item1.Size(0), [("mse", model.Forward(b.Item1).Mse(b.Item2).Item() * b.Item1.Size(0))])));
        Assert.Equal(30, history.Count);
        Assert.True(history[^1].Metrics["abs_error"] < history[0].Metrics["abs_error"] / 3);
        Assert.True(history[^1].Validation!["mse"] < 0.02, $"validation mse {history[^1].Validation!["mse"]}");
        Assert.Equal(Environment.ProcessorCount, Parallelism.MaxThreads);   // the trainer's thread count was its own
    }

    [Fact]
    public void Gradient_clipping_scales_the_joint_norm_as_pytorch()
    {
        var a = Helpers.Leaf(Tensor.From([1.0, 2.0])); var b = Helpers.Leaf(Tensor.From([2.0]));
        a.Grad = Tensor.From([3.0, 4.0]); b.Grad = Tensor.From([12.0]);   // joint norm 13
        double norm = Gradients.ClipNorm([a, b], 6.5);
        Assert.Equal(13, norm, 12);
        Assert.Equal(6.5, Math.Sqrt(a.Grad.ToDoubleArray().Sum(v => v * v) + b.Grad.ToDoubleArray().Sum(v => v * v)), 5);
    }

    [Fact]
    public void An_early_stopping_callback_ends_fit_after_the_epoch_it_asks()
    {
        var g = new Generator(6);
        var (x, y) = Blobs(200, g);
        var model = Mlp.Create(4, [8], 3, g);
        var trainer = new Trainer(model, new Sgd(model.Parameters(), 0.1), (o, t) => o.CrossEntropy(t));
        trainer.Callbacks.Add(new StopAfter(3));
        Assert.Equal(3, trainer.Fit(_ => new DataLoader(x, y, 50), 10, (Func<double>?)null).Count);
    }

    sealed class CancelAt(int epoch, int step, CancellationTokenSource source) : ITrainerCallback
    {
        public void OnStep(int e, int s, double loss) { if (e == epoch && s == step) source.Cancel(); }
    }

    sealed class StopAfter(int epochs) : ITrainerCallback
    {
        public bool OnEpochEnd(EpochMetrics m) => m.Epoch >= epochs;
    }

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T> { public void Report(T value) => report(value); }
}

/// <summary>Numerical faults stop training with a message naming where, instead of a ruined model and exit 0.</summary>
[Collection("console")]
public class DivergenceTests
{
    [Fact]
    public void Train_with_lr_1e6_exits_non_zero_within_the_first_epoch_naming_the_step()
    {
        var (code, _, err) = Helpers.RunCli("train", "--preset", "mnist-quick", "--lr", "1e6", "--out", Path.Combine(Path.GetTempPath(), "bp-lr1e6-" + Guid.NewGuid()));
        Assert.Equal(1, code);
        Assert.Matches(@"diverged at epoch 1, step \d+", err);
    }

    [Fact]
    public void Train_with_detect_anomaly_names_the_op_its_inputs_and_the_module_of_the_first_non_finite_value()
    {
        var (code, _, err) = Helpers.RunCli("train", "--preset", "mnist-quick", "--lr", "1e30", "--detect-anomaly", "--out", Path.Combine(Path.GetTempPath(), "bp-anomaly-" + Guid.NewGuid()));
        Assert.Equal(1, code);
        Assert.Matches(@"anomaly: the (output|gradient for input \d) of '\w+' \(inputs .*\) has (NaN|-?Infinity)", err);
        Assert.Contains("in module Sequential[", err);
    }

    [Fact]
    public void A_nan_gradient_under_a_finite_loss_stops_training_before_the_weights_are_ruined()
    {
        var model = new Nn.Sequential(new Nn.Identity());
        var w = Helpers.Leaf(Tensor.From([0.0, 1.0]));
        var opt = new Sgd([w], 0.1);
        var trainer = new Trainer<int>(model, opt, _ => new StepResult((w.Sqrt() * 0.0).Sum() + (w * w).Sum(), 1));   // ∂√w/∂w at 0 is ∞; ∞·0 = NaN
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.RunEpoch(1, [0, 0, 0]));
        Assert.Contains("gradient norm", e.Message);
        Assert.Contains("step 1", e.Message);
        Assert.Equal([0.0, 1.0], w.ToDoubleArray());   // no step was taken with it
    }

    [Fact]
    public void Anomaly_mode_names_the_op_the_input_shapes_and_the_module_of_the_first_nan()
    {
        var g = new Generator(1);
        var model = new Nn.Sequential(new Nn.Linear(4, 3, g), new Nn.ReLU(), new Nn.Linear(3, 2, g));
        ((Nn.Linear)model[2]).Weight[1, 2] = double.NaN;
        var x = Tensor.Normal([5, 4], 0, 1, g);
        using (Autograd.DetectAnomaly())
        {
            var e = Assert.Throws<AnomalyException>(() => model.Forward(x).CrossEntropy([0, 1, 0, 1, 1]));
            Assert.Contains("'linear'", e.Message);
            Assert.Contains("(5,3), (2,3), (2)", e.Message);
            Assert.Contains("Sequential[2] Linear", e.Message);
        }
        Assert.False(Autograd.IsAnomalyDetectionEnabled);
        model.Forward(x);   // outside the scope nothing is checked
    }

    [Fact]
    public void Anomaly_mode_catches_an_infinite_gradient_under_a_finite_loss()
    {
        var x = Helpers.Leaf(Tensor.From([0.0, 4.0]));
        using var _ = Autograd.DetectAnomaly();
        var y = (x.Sqrt() * 0.0).Sum();   // finite (0), but ∂√x/∂x at 0 is ∞
        var e = Assert.Throws<AnomalyException>(() => y.Backward());
        Assert.Contains("gradient", e.Message);
        Assert.Contains("'sqrt'", e.Message);
    }
}

/// <summary>Evaluation and inference never change a model, so many threads can share one.</summary>
public class SharedModelTests
{
    [Fact]
    public void Eight_threads_evaluating_one_model_ten_thousand_times_each_match_sequential_results_bitwise()
    {
        var g = new Generator(9);
        var model = new Nn.Sequential(new Nn.Linear(6, 16, g), new Nn.BatchNorm1d(16), new Nn.ReLU(), new Nn.Dropout(0.5, g), new Nn.Linear(16, 3, g));
        var opt = new Sgd(model.Parameters(), 0.1);
        var x = Tensor.Normal([32, 6], 0, 1, g);
        for (int i = 0; i < 5; i++) { opt.ZeroGrad(); model.Forward(x).CrossEntropy(Enumerable.Range(0, 32).Select(k => k % 3).ToArray()).Backward(); opt.Step(); }
        Assert.True(model.Training);   // left in training mode on purpose
        var inputs = Enumerable.Range(0, 16).Select(_ => Tensor.Normal([4, 6], 0, 1, g)).ToArray();
        var stats = model.NamedBuffers().Select(b => b.Buffer.ToFloatArray()).ToArray();

        float[] Infer(Tensor input)
        {
            using var eval = Nn.Module.EvalContext();
            using var _ = Autograd.NoGrad();
            return model.Forward(input).ToFloatArray();
        }
        var expected = inputs.Select(Infer).ToArray();
        int mismatches = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int call = 0; call < 10_000; call++)
            {
                int k = (t * 7 + call) % inputs.Length;
                if (!Infer(inputs[k]).AsSpan().SequenceEqual(expected[k])) Interlocked.Increment(ref mismatches);
            }
        });
        Assert.Equal(0, mismatches);
        Assert.True(model.Training);
        Assert.Equal(stats, model.NamedBuffers().Select(b => b.Buffer.ToFloatArray()).ToArray());   // running statistics untouched
        var (_, _) = Trainer.Evaluate(model, [(inputs[0], new[] { 0, 1, 2, 0 })], 3);
        Assert.True(model.Training);
    }
}

public class LookaheadTests
{
    [Fact]
    public void Lookahead_moves_an_average_toward_the_weights_every_k_steps_with_a_ramping_decay_and_sets_the_weights_to_it()
    {
        var model = new Nn.Sequential(new Nn.Linear(1, 1, new Generator(1), bias: false), new Nn.BatchNorm1d(1));
        var w = model.Parameters().First();
        var mean = model.NamedBuffers().First(b => b.Name.EndsWith("running_mean")).Buffer;
        void Set(double v) { using (Autograd.NoGrad()) { w.CopyFrom(Tensor.From(new[] { (float)v }, [1, 1])); mean.CopyFrom(Tensor.From(new[] { (float)v })); } }
        double W() => w.ToFloatArray()[0];
        var la = new Lookahead(model, stepsPerEpoch: 4, epochs: 2, start: 0.5, every: 2, decayBase: 0.9, power: 2);
        // Training starts averaging after epoch 1 (half of 2 epochs): steps 1-4 leave the weights alone.
        for (int s = 1; s <= 4; s++) { Set(s); la.OnStep(1, s, 0); Assert.Equal(s, W()); }
        Set(10); la.OnStep(2, 1, 0); Assert.Equal(10, W());        // t = 5: not a multiple of 2
        Set(20); la.OnStep(2, 2, 0); Assert.Equal(20, W());        // t = 6: the average starts as the weights
        Set(30); la.OnStep(2, 3, 0); Assert.Equal(30, W());
        Set(40); la.OnStep(2, 4, 0);                                // t = 8: ρ = 0.9²·(8/8)² = 0.81
        double expected = 20 + (1 - 0.81) * (40 - 20);
        Assert.Equal(expected, W(), 5);
        Assert.Equal(expected, mean.ToFloatArray()[0], 5);         // floating-point buffers (batch-norm statistics) too
        Assert.Throws<ArgumentOutOfRangeException>(() => new Lookahead(model, 0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Lookahead(model, 4, 2, start: 1));
    }

    [Theory]
    [InlineData(1)]   // before the average exists
    [InlineData(2)]   // just before the epoch that creates it (step 8 of 15)
    [InlineData(3)]   // after it: the average must come back
    public void A_run_resumed_at_an_epoch_boundary_averages_as_one_not_interrupted(int resumeAfter)
    {
        // Weights set by a fixed "optimizer" each step; at the restart a new Lookahead is built, as a process resumed from a
        // checkpoint builds it. Averaging starts after 30% of 5 epochs of 3 steps (rounded up to epoch 2), every 2 steps.
        float[] Run(int? restartAfter, bool average = true)
        {
            var model = new Nn.Linear(2, 1, new Generator(1), bias: false);
            var w = model.Parameters().First();
            Lookahead Create() => new(model, stepsPerEpoch: 3, epochs: 5, start: 0.3, every: 2);
            var la = average ? Create() : null;
            for (int epoch = 1; epoch <= 5; epoch++)
            {
                if (epoch - 1 == restartAfter)
                {
                    la = Create();
                    la.Resume(epoch - 1);
                }
                for (int step = 1; step <= 3; step++)
                {
                    using (Autograd.NoGrad()) w.CopyFrom(w + Tensor.From(new[] { (float)Math.Sin(epoch * 3 + step), (float)Math.Cos(step) }, [1, 2]));
                    la?.OnStep(epoch, step, 0);
                }
            }
            return w.ToFloatArray();
        }
        var straight = Run(null);
        Assert.Equal(straight, Run(resumeAfter));
        Assert.NotEqual(straight, Run(null, average: false));   // the averaging matters to the result
    }
}
