using System.Text.Json;
using Backprop.Models;

namespace Backprop.Tests;

/// <summary>
/// The cs231n two-layer net with its hand-written backward pass, on the exercise's toy problem: the published
/// scores and loss, gradients against central differences, and a training run matching numpy's
/// (tools/numpy_toy.py) iteration for iteration.
/// </summary>
public class TwoLayerNetTests
{
    static readonly int[] ToyLabels = [0, 1, 2, 2, 1];

    // init_toy_model: np.random.seed(0); TwoLayerNet(4, 10, 3, std=1e-1). The stream continues from there: the
    // notebook trains a fresh `net = init_toy_model()`, so its minibatch draws follow the weights' draws.
    static (TwoLayerNet Net, NumpyRandom Rng) InitToyModel(DType dtype = DType.Float64)
    {
        var rng = new NumpyRandom(0);
        return (new TwoLayerNet(4, 10, 3, rng, std: 1e-1, dtype: dtype), rng);
    }

    // init_toy_data: np.random.seed(1); X = 10 * np.random.randn(5, 4)
    static Tensor InitToyData() => Tensor.From(new NumpyRandom(1).Randn(5, 4).Select(v => 10 * v).ToArray(), [5, 4]);

    static (TwoLayerNet Net, Tensor X) Toy() => (InitToyModel().Net, InitToyData());

    static JsonElement NumpyToy()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "numpy_toy.json")));
        return doc.RootElement.Clone();
    }

    [Fact]
    public void Toy_scores_are_the_exercises_correct_scores()
    {
        double[,] correct =
        {
            { -0.81233741, -1.27654624, -0.70335995 },
            { -0.17129677, -1.18803311, -0.47310444 },
            { -0.51590475, -1.01354314, -0.8504215 },
            { -0.15419291, -0.48629638, -0.52901952 },
            { -0.00618733, -0.12435261, -0.15226949 },
        };
        var (net, x) = Toy();
        var scores = net.Loss(x);
        Assert.Equal([5, 3], scores.Shape.ToArray());
        var numpy = NumpyToy().GetProperty("scores");
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++)
            {
                Helpers.Close(correct[i, j], scores[i, j], 1e-7, $"scores[{i},{j}] vs the exercise");
                Helpers.Close(numpy[i][j].GetDouble(), scores[i, j], 1e-14, $"scores[{i},{j}] vs numpy");
            }
    }

    [Fact]
    public void Toy_loss_is_the_exercises_figure()
    {
        var (net, x) = Toy();
        var (loss, _) = net.Loss(x, ToyLabels, reg: 0.05);
        Helpers.Close(1.30378789133, loss, 1e-10, "toy loss");
    }

    [Fact]
    public void Hand_written_gradients_match_central_differences()
    {
        var (net, x) = Toy();
        var (_, grads) = net.Loss(x, ToyLabels, reg: 0.05);
        foreach (var name in new[] { "W1", "b1", "W2", "b2" })
        {
            var numeric = NumericalGradient.Central(() => net.Loss(x, ToyLabels, reg: 0.05).Loss, net.Params[name], h: 1e-5);
            double err = NumericalGradient.MaxRelError(grads[name], numeric);
            Assert.True(err < 1e-8, $"{name}: max relative error {err:e2}");
        }
    }

    [Fact]
    public void Output_bias_gradient_sums_to_zero_over_the_classes()
    {
        // db2 = Σᵢ (softmaxᵢ − Δᵢ)/N and every row of softmax − Δ sums to zero, so Σ_c db2 = 0.
        var (net, x) = Toy();
        var (_, grads) = net.Loss(x, ToyLabels, reg: 0.05);
        Helpers.Close(0, grads["b2"].ToDoubleArray().Sum(), 1e-15, "Σ db2");
    }

    [Fact]
    public void Toy_training_of_a_fresh_model_follows_numpys_run_to_the_notebooks_final_loss()
    {
        var x = InitToyData();
        var (net, rng) = InitToyModel();
        var history = net.Train(x, ToyLabels, x, ToyLabels, rng, learningRate: 1e-1, learningRateDecay: 0.95, reg: 5e-6, numIters: 100, batchSize: 200);
        var numpy = NumpyToy().GetProperty("loss_history").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(100, history.Loss.Count);
        for (int i = 0; i < numpy.Length; i++)
            Helpers.Close(numpy[i], history.Loss[i], 1e-12, $"loss at iteration {i}");   // same minibatches, same steps
        Helpers.Close(0.017149607938732093, history.Loss[^1], 1e-12, "the notebook's stats['loss_history'][-1]");
        // N = 5 < batch: an epoch is one iteration, so accuracies are recorded (and lr decayed) every iteration.
        Assert.Equal(100, history.TrainAccuracy.Count);
        Assert.Equal(1.0, history.ValAccuracy[^1]);
    }

    [Fact]
    public void An_epoch_of_a_fractional_number_of_iterations_is_a_float_remainder_as_in_python()
    {
        // iterations_per_epoch = max(10 / 3, 1) = 3.33…: `it % 3.33… == 0` holds only at it = 0.
        var (net, rng) = InitToyModel();
        var x = Tensor.From(rng.Randn(10, 4), [10, 4]);
        var y = rng.Choice(3, 10);
        var history = net.Train(x, y, x, y, rng, numIters: 12, batchSize: 3);
        Assert.Single(history.ValAccuracy);
    }

    [Fact]
    public void Float32_agrees_with_float64()
    {
        var (net64, x64) = Toy();
        var p = net64.Params;
        var net32 = new TwoLayerNet(p["W1"].To(DType.Float32), p["b1"].To(DType.Float32), p["W2"].To(DType.Float32), p["b2"].To(DType.Float32));
        Assert.Equal(DType.Float32, net32.DType);
        var x32 = x64.To(DType.Float32);

        Helpers.AllClose(net64.Loss(x64), net32.Loss(x32), 1e-5, "scores");
        var (loss64, grads64) = net64.Loss(x64, ToyLabels, reg: 0.05);
        var (loss32, grads32) = net32.Loss(x32, ToyLabels, reg: 0.05);
        Helpers.Close(loss64, loss32, 1e-5, "loss");
        foreach (var (name, g) in grads64)
        {
            Assert.Equal(DType.Float32, grads32[name].DType);
            Helpers.AllClose(g, grads32[name], 1e-5, $"d{name}");
        }
        Assert.Equal(net64.Predict(x64), net32.Predict(x32));
    }

    [Fact]
    public void Float32_training_reaches_the_same_toy_loss()
    {
        var (net, rng) = InitToyModel(DType.Float32);
        var x = InitToyData().To(DType.Float32);
        var history = net.Train(x, ToyLabels, x, ToyLabels, rng, learningRate: 1e-1, reg: 5e-6, numIters: 100, batchSize: 200);
        Helpers.Close(0.017149607938732093, history.Loss[^1], 1e-4, "final float32 loss");
    }
}
