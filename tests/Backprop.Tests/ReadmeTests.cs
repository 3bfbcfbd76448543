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
    }
}
