using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Backprop.Models;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop toy</c>: cs231n's two-layer-net toy problem, exactly as the exercise runs it (numpy's random
/// stream included): scores, loss, gradient check, and 100 iterations of SGD.
/// </summary>
internal static class ToyCommand
{
    // The exercise's published figures.
    const double ExpectedLoss = 1.30378789133;
    const double ExpectedFinalLoss = 0.017149607938732093;   // stats['loss_history'][-1]
    static readonly double[,] ExpectedScores =
    {
        { -0.81233741, -1.27654624, -0.70335995 },
        { -0.17129677, -1.18803311, -0.47310444 },
        { -0.51590475, -1.01354314, -0.8504215 },
        { -0.15419291, -0.48629638, -0.52901952 },
        { -0.00618733, -0.12435261, -0.15226949 },
    };
    static readonly string[] ParamNames = ["W1", "b1", "W2", "b2"];

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print {scores, loss, rel_errors, loss_history} as JSON (round-trip doubles)" };
        var cmd = new Command("toy", "The classic two-layer-net toy problem: scores, loss, gradient check and a short SGD run, reproduced to the digit") { json };
        cmd.SetAction(r => Run(r.GetValue(json)));
        return cmd;
    }

    static int Run(bool json)
    {
        // init_toy_model: np.random.seed(0); TwoLayerNet(4, 10, 3, std=1e-1)
        var rng = new NumpyRandom(0);
        var net = new TwoLayerNet(4, 10, 3, rng, std: 1e-1);
        // init_toy_data: np.random.seed(1); X = 10 * np.random.randn(5, 4); y = [0, 1, 2, 2, 1]
        rng.Seed(1);
        Tensor x;
        using (Autograd.NoGrad()) x = rng.RandnTensor(5, 4) * 10.0;
        int[] y = [0, 1, 2, 2, 1];

        var scores = net.Scores(x);
        var (loss, grads) = net.Loss(x, y, reg: 0.05);
        var relErrors = ParamNames.ToDictionary(name => name, name =>
            NumericalGradient.MaxRelError(grads[name], NumericalGradient.Central(() => net.Loss(x, y, reg: 0.05).Loss, net.Params[name])));
        // net = init_toy_model(); net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100): the notebook trains
        // a fresh model, so the minibatch draws continue from the stream right after its weights' draws (seed 0), not after X's.
        rng.Seed(0);
        var fresh = new TwoLayerNet(4, 10, 3, rng, std: 1e-1);
        var history = fresh.Train(x, y, x, y, rng, learningRate: 1e-1, learningRateDecay: 0.95, reg: 5e-6, numIters: 100, batchSize: 200);

        double scoreDiff = 0;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++) scoreDiff = Math.Max(scoreDiff, Math.Abs(scores[i, j] - ExpectedScores[i, j]));
        double finalLoss = history.Loss[^1];
        bool ok = scoreDiff < 1e-7 && Math.Abs(loss - ExpectedLoss) < 1e-10 && relErrors.Values.All(e => e < 1e-8)
            && Math.Abs(finalLoss - ExpectedFinalLoss) < 1e-12;

        if (json) WriteJson(scores, loss, relErrors, history.Loss);
        else
        {
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine("scores:");
            for (int i = 0; i < 5; i++)
                Console.WriteLine("  " + string.Join("  ", Enumerable.Range(0, 3).Select(j => scores[i, j].ToString("+0.00000000;-0.00000000", inv))));
            Console.WriteLine($"max |scores - exercise's correct_scores| = {scoreDiff.ToString("0.00e+00", inv)} (must be < 1e-7)");
            Console.WriteLine($"loss (λ = 0.05) = {loss.ToString("R", inv)}  (exercise: {ExpectedLoss.ToString("R", inv)}, difference {Math.Abs(loss - ExpectedLoss).ToString("0.0e+00", inv)})");
            foreach (var (name, err) in relErrors)
                Console.WriteLine($"{name} max relative error: {err.ToString("0.00e+00", inv)}");
            Console.WriteLine("loss history:");
            for (int it = 0; it < history.Loss.Count; it += 10)
                Console.WriteLine("  " + string.Join(" ", history.Loss.Skip(it).Take(10).Select(l => l.ToString("0.000000", inv))));
            Console.WriteLine($"final training loss: {finalLoss.ToString("R", inv)}  (exercise: {ExpectedFinalLoss.ToString("R", inv)}, difference {Math.Abs(finalLoss - ExpectedFinalLoss).ToString("0.0e+00", inv)})");
            Console.WriteLine(ok ? "all checks pass" : "CHECK FAILED");
        }
        return ok ? 0 : 1;
    }

    static void WriteJson(Tensor scores, double loss, Dictionary<string, double> relErrors, IReadOnlyList<double> lossHistory)
    {
        using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartArray("scores");
        for (int i = 0; i < scores.Size(0); i++)
        {
            w.WriteStartArray();
            for (int j = 0; j < scores.Size(1); j++) Number(w, scores[i, j]);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WritePropertyName("loss");
        Number(w, loss);
        w.WriteStartObject("rel_errors");
        foreach (var (name, err) in relErrors) { w.WritePropertyName(name); Number(w, err); }
        w.WriteEndObject();
        w.WriteStartArray("loss_history");
        foreach (double l in lossHistory) Number(w, l);
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        Console.WriteLine();
    }

    // Round-trip ("R") text, so a reader recovers the exact double; JSON has no NaN, so a non-finite value is null.
    static void Number(Utf8JsonWriter w, double v)
    {
        if (double.IsFinite(v)) w.WriteRawValue(v.ToString("R", CultureInfo.InvariantCulture));
        else w.WriteNullValue();
    }
}
