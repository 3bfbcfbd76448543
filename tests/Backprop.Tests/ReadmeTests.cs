using Backprop.Nn;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>The README's example, verbatim, runs and lowers the loss.</summary>
public class ReadmeTests
{
    [Fact]
    public void Readme_example_runs_one_training_step()
    {
        var g = new Generator(seed: 0);
        var model = new Sequential(
            new Linear(784, 50, g), new ReLU(),
            new Linear(50, 10, g));
        var optimizer = new Sgd(model.Parameters(), learningRate: 0.1, momentum: 0.9);

        Tensor x = Tensor.Uniform([16, 784], 0, 1, g);
        int[] y = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3];

        optimizer.ZeroGrad();
        Tensor loss = model.Forward(x).CrossEntropy(y);
        loss.Backward();
        optimizer.Step();

        using (Autograd.NoGrad()) { var predictions = model.Forward(x).ArgMax(1); Assert.Equal(16, predictions.Length); }
        Assert.True(model.Forward(x).CrossEntropy(y).Item() < loss.Item());

        // the second block
        var trainer = new Training.Trainer<(Tensor X, int[] Y)>(model, optimizer, b =>
        {
            var logits = model.Forward(b.X);
            return new Training.StepResult(logits.CrossEntropy(b.Y), b.Y.Length).With("accuracy", Training.Trainer.CountCorrect(logits, b.Y));
        }) { ClipGradNorm = 5.0, Threads = 2 };
        using var cancel = new CancellationTokenSource();
        var history = trainer.Fit(epoch => [(x, y)], epochs: 3, cancellation: cancel.Token);
        Assert.Equal(3, history.Count);
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss);

        var leaf = Helpers.Leaf(Tensor.From([1.0, -2.0]));
        Tensor cubed = new Cube().Apply(leaf);
        cubed.Sum().Backward();
        Assert.Equal([1.0, -8.0], cubed.ToDoubleArray());
        Assert.Equal([3.0, 12.0], leaf.Grad!.ToDoubleArray());
    }

    sealed class Cube : Function
    {
        public override string Name => "cube";
        protected override Tensor Forward(Tensor[] inputs) { SaveForBackward(inputs[0]); return inputs[0] * inputs[0] * inputs[0]; }
        protected override Tensor?[] Backward(Tensor g) { var x = Saved(0); return [g * x * x * 3.0]; }
    }
}
