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
        Experiment.CheckState(modelPath, s, prepared.Channels, prepared.Height, prepared.Width, prepared.Classes, state);
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
