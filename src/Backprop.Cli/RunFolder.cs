using System.Text.Json;
using Backprop.Models;
using Backprop.Nn;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>The files a run leaves behind: summary, curves, weights, confusion matrix, model and command line.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class ClassNamesContext : System.Text.Json.Serialization.JsonSerializerContext;

internal static class RunFolder
{
    public static readonly System.CommandLine.Option<bool> OverwriteOption = new("--overwrite") { Description = "Replace the files of an earlier run in --out (without it, an existing run folder is refused)" };

    // What a run writes: the only files --overwrite removes (never anything else a user keeps in the folder).
    static readonly string[] RunFiles = ["metrics.csv", "summary.json", "model.safetensors", "command.txt", "search.csv"];

    /// <summary>
    /// Creates the run folder — called once the data has loaded, so a failed load leaves nothing behind. An existing folder
    /// with files in it is refused unless <paramref name="overwrite"/>, which removes the files an earlier run wrote
    /// there, so two runs never mix.
    /// </summary>
    public static string Prepare(string run, bool overwrite)
    {
        if (Directory.Exists(run) && Directory.EnumerateFileSystemEntries(run).Any())
        {
            if (!overwrite)
                throw new ArgumentException($"--out: {run} already holds files (an earlier run?); pass --overwrite to replace that run's files, or choose another folder");
            foreach (var f in Directory.EnumerateFiles(run))
            {
                string name = Path.GetFileName(f);
                if (RunFiles.Contains(name) || name.EndsWith(".png", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal)) File.Delete(f);
            }
        }
        Directory.CreateDirectory(run);
        Serialization.AtomicFile.RemoveStale(run);
        return run;
    }

    public const string ConfigKey = "backprop.settings";
    /// <summary>The fitted input normalisation (so a model can be applied to new images without its training data).</summary>
    public const string PreprocessingKey = "backprop.preprocessing";
    /// <summary>The class names, as a JSON array.</summary>
    public const string ClassesKey = "backprop.classes";

    public static void Write(string run, TrainSettings s, string dataset, IReadOnlyList<EpochMetrics> history, double testAccuracy,
        int[,] confusion, PreparedData data, Module model, double seconds, string[] commandLine, string? interrupted = null, double? flipAccuracy = null)
    {
        var last = history.Count > 0 ? history[^1] : new EpochMetrics(0, double.NaN, double.NaN, null, double.NaN, 0, 0);
        WriteSummary(Path.Combine(run, "summary.json"), dataset, s.Model, s.WriteJson, s.Seed, history.Count,
            last.TrainAccuracy, last.ValAccuracy, testAccuracy, last.TrainLoss, seconds,
            w =>
            {
                if (flipAccuracy is double fa) w.WriteNumber("test_accuracy_flip_averaged", fa);
                if (interrupted is not null) { w.WriteBoolean("interrupted", true); w.WriteString("interrupted_at", interrupted); }
            });

        Plots.Curves(Path.Combine(run, "loss.png"), $"{dataset} {s.Model}: training loss", "cross-entropy",
            [("train loss", history.Select(m => m.TrainLoss).ToArray())]);
        Plots.Curves(Path.Combine(run, "accuracy.png"), $"{dataset} {s.Model}: accuracy", "accuracy",
            [("train", history.Select(m => m.TrainAccuracy).ToArray()), ("validation", history.Where(m => m.ValAccuracy is not null).Select(m => m.ValAccuracy!.Value).ToArray())]);
        if (Cnn.FirstConv(model) is Conv2d conv)
            Plots.WeightGrid(Path.Combine(run, "filters.png"), conv.Weight.To(DType.Float32).ToFloatArray(), conv.OutChannels, conv.InChannels / conv.Groups, conv.KernelSize.Height, conv.KernelSize.Width);
        else if (Mlp.FirstLinear(model) is Linear first)
            Plots.WeightGrid(Path.Combine(run, "weights.png"), first.Weight.To(DType.Float32).ToFloatArray(), first.OutFeatures, data.Channels, data.Height, data.Width);
        Plots.Confusion(Path.Combine(run, "confusion.png"), confusion, data.ClassNames);

        SafeTensors.Save(Path.Combine(run, "model.safetensors"), model.StateDict(),
            new Dictionary<string, string>
            {
                ["format"] = "pt", [ConfigKey] = s.ToJson(), [PreprocessingKey] = data.Preprocessor.ToJson(),
                [ClassesKey] = JsonSerializer.Serialize(data.ClassNames.ToArray(), ClassNamesContext.Default.StringArray),
            });
        WriteCommand(run, commandLine);
    }

    /// <summary>command.txt: the command line, shell-quoted, so the run can be repeated.</summary>
    public static void WriteCommand(string run, string[] commandLine) =>
        Serialization.AtomicFile.WriteAllText(Path.Combine(run, "command.txt"), string.Join(" ", commandLine.Select(Quote)) + Environment.NewLine);

    /// <summary>summary.json with the keys every run folder shares (accuracies as fractions in [0, 1]; null where a model has none).</summary>
    public static void WriteSummary(string path, string dataset, string model, Action<Utf8JsonWriter> hyperparameters, ulong seed, int epochs,
        double? trainAccuracy, double? valAccuracy, double? testAccuracy, double finalTrainLoss, double seconds, Action<Utf8JsonWriter>? extra = null)
    {
        Serialization.AtomicFile.Write(path, f =>
        {
            using var w = new Utf8JsonWriter(f, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("dataset", dataset);
            w.WriteString("model", model);
            w.WritePropertyName("hyperparameters");
            hyperparameters(w);
            w.WriteNumber("seed", seed);
            w.WriteNumber("epochs", epochs);
            if (trainAccuracy is double a) w.WriteNumber("train_accuracy", a); else w.WriteNull("train_accuracy");
            if (valAccuracy is double v) w.WriteNumber("val_accuracy", v); else w.WriteNull("val_accuracy");
            if (testAccuracy is double t) w.WriteNumber("test_accuracy", t); else w.WriteNull("test_accuracy");
            w.WriteNumber("final_train_loss", finalTrainLoss);
            w.WriteNumber("seconds", Math.Round(seconds, 3));
            extra?.Invoke(w);
            w.WriteEndObject();
        });
    }

    internal static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=,:".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
