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

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T> { public void Report(T value) => report(value); }
}
