using System.Globalization;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>
/// A run's state after a whole epoch, in <c>checkpoint.safetensors</c> beside its outputs: the model's parameters and
/// buffers (<c>model.*</c>), the optimizer's state (<c>optimizer.*</c>), and in the metadata the options the run was
/// started with, the epoch, every random generator's state and the metrics so far — all a resumed run needs to continue
/// exactly as if it had never stopped (same weights and metrics, bit for bit).
/// </summary>
internal static class Checkpoint
{
    public const string FileName = "checkpoint.safetensors";

    public sealed record State(int Epoch, string Settings, GeneratorState[] Generators, string MetricsCsv);

    public static void Save(string run, Module model, Optimizer optimizer, State state)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in model.StateDict()) tensors["model." + k] = v;
        foreach (var (k, v) in optimizer.StateDict()) tensors["optimizer." + k] = v;
        SafeTensors.Save(Path.Combine(run, FileName), tensors, new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["backprop.epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["backprop.settings"] = state.Settings,
            ["backprop.generators"] = string.Join(";", state.Generators.Select(g => g.ToString())),
            ["backprop.metrics"] = state.MetricsCsv,
        });
    }

    /// <summary>Restores model and optimizer from the run's checkpoint and returns the rest of its state.</summary>
    public static State Load(string run, Module model, Optimizer optimizer)
    {
        string path = Path.Combine(run, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"--resume: {path} not found (was the run started with --checkpoint-every?)");
        var (tensors, meta) = SafeTensors.Load(path);
        string Meta(string key) => meta.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{path}: metadata '{key}' is missing");
        try
        {
            model.LoadStateDict(tensors.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value));
            optimizer.LoadStateDict(tensors.Where(kv => kv.Key.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["optimizer.".Length..], kv => kv.Value));
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: does not fit this run's model and optimizer ({e.Message})", e); }
        if (!int.TryParse(Meta("backprop.epoch"), NumberStyles.None, CultureInfo.InvariantCulture, out int epoch) || epoch < 0)
            throw new InvalidDataException($"{path}: epoch '{Meta("backprop.epoch")}' is not a count");
        GeneratorState[] generators;
        try { generators = [.. Meta("backprop.generators").Split(';').Select(GeneratorState.Parse)]; }
        catch (FormatException e) { throw new InvalidDataException($"{path}: generator states: {e.Message}"); }
        return new State(epoch, Meta("backprop.settings"), generators, Meta("backprop.metrics"));
    }

    /// <summary>The epochs recorded in a metrics.csv written by <c>train</c> (for the final plots and summary).</summary>
    public static List<EpochMetrics> ParseHistory(string csv)
    {
        var history = new List<EpochMetrics>();
        foreach (var line in csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1))
        {
            var f = line.Split(',');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            history.Add(new EpochMetrics(int.Parse(f[0], CultureInfo.InvariantCulture), D(1), D(2), f[3].Length == 0 ? null : D(3), D(4), D(5), D(6)));
        }
        return history;
    }
}
