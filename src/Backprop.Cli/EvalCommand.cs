using System.CommandLine;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary><c>backprop eval</c>: test accuracy and confusion matrix of a saved model.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A model.safetensors written by backprop train", Required = true };
        var dataset = new Option<string?>("--dataset") { Description = "mnist | cifar10 | idx [default: the dataset the model was trained on]" };
        var data = new Option<string?>("--data") { Description = "Dataset folder [default: as for train]" };
        var cmd = new Command("eval", "Evaluate a saved model on a dataset's test set") { model, dataset, data };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(dataset), r.GetValue(data)));
        return cmd;
    }

    static int Run(string modelPath, string? dataset, string? data)
    {
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"--model: {modelPath} does not exist");
        var (state, metadata) = SafeTensors.Load(modelPath);
        if (!metadata.TryGetValue(RunFolder.ConfigKey, out var json))
            throw new InvalidDataException($"{modelPath}: no '{RunFolder.ConfigKey}' metadata; was it written by backprop train?");
        var s = TrainSettings.FromJson(json);
        s = s with { Dataset = dataset ?? s.Dataset, Data = data ?? s.Data };
        // The training statistics (normalisation) are refitted on the same training split, which reproduces them exactly.
        var prepared = Experiment.Prepare(s, Experiment.Load(s));
        // The file's tensors must be the model's, in number and shape, before a model of the declared size is built
        // (a tiny file declaring hidden 40000,40000 must not allocate 1.6e9 weights first).
        int[] widths = [prepared.Features, .. s.Hidden, prepared.Classes];
        var linears = state.Where(kv => kv.Key.EndsWith(".weight", StringComparison.Ordinal) && kv.Value.Rank == 2)
            .OrderBy(kv => int.TryParse(kv.Key.Split('.')[0], out int i) ? i : int.MaxValue).Select(kv => (kv.Key, Shape: kv.Value.Shape.ToArray())).ToArray();
        string need = string.Join(" → ", widths.Zip(widths.Skip(1), (a, b) => $"({b},{a})"));
        string have = string.Join(" → ", linears.Select(l => $"({string.Join(",", l.Shape)})"));
        if (linears.Length != widths.Length - 1 || linears.Select((l, i) => l.Shape.SequenceEqual(new[] { widths[i + 1], widths[i] })).Any(ok => !ok))
            throw new InvalidDataException($"{modelPath}: the file's layers are {have}; its settings (and the data) need {need}");
        foreach (var (name, t) in state)
            if (t.ToDoubleArray().Any(v => !double.IsFinite(v)))
                throw new InvalidDataException($"{modelPath}: '{name}' holds NaN or infinite values; refusing to evaluate a diverged model");
        var net = Experiment.BuildModel(s, prepared, new Generator(0));
        net.LoadStateDict(state);
        var (accuracy, confusion) = Trainer.Evaluate(net, Experiment.Batches(prepared.TestX, prepared.TestY), prepared.Classes);
        ConsoleOutput.Line($"test accuracy: {ConsoleOutput.F(accuracy * 100, "0.00")}% ({prepared.TestY.Length} images)");
        ConsoleOutput.PrintConfusion(confusion, prepared.ClassNames);
        return 0;
    }
}
