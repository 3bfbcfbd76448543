using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;
using Backprop.Nn;
using Backprop.Serialization;

namespace Backprop.Cli;

/// <summary>What a model file holds: a classifier from <c>train</c> (or bare weights with an architecture spec), the
/// classic two-layer net, the multi-task cascade or the VAE.</summary>
internal enum ModelKind { Classifier, TwoLayer, MultiTask, Vae }

/// <summary>One graph of a model to export: the file-name suffix, the input's shape after the batch, the named outputs.</summary>
internal sealed record ModelGraph(string Suffix, int[] Sample, Func<Tensor, IReadOnlyList<(string Name, Tensor Value)>> Outputs);

/// <summary>
/// Any model file the CLI writes — or a weights file without Backprop's metadata (PyTorch's state dict, say) plus an
/// architecture spec — as a module in eval mode, with what eval, predict and export need: the dataset, the input
/// normalisation when the file stores it, the class names and the graphs to export.
/// </summary>
internal sealed record ModelFile(string Path, ModelKind Kind, Module Net, string Dataset, string? Data, Preprocessor? Prep,
    string[] Classes, TrainSettings? Settings, IReadOnlyList<ModelGraph> Graphs)
{
    /// <summary>Metadata keys of the models written by <c>multitask</c>, <c>vae</c> and <c>cifar10-two-layer</c>.</summary>
    public const string MultiTaskKey = "backprop.multitask", VaeKey = "backprop.vae", TwoLayerKey = "backprop.two_layer";

    public const string ArchHelp = "Architecture of a weights file without Backprop's metadata: mlp:784-100-10 (widths; add :batchnorm, " +
        ":dropout=P, :tanh or :sigmoid to match the file's layers) or cnn:1x28x28:32-64:10 (image C×H×W, conv widths, classes; add " +
        ":kernel=K, :hidden=W, :batchnorm, :pool-first, :convs=N, :dropout=P)";

    public static ModelFile Load(string path, string? arch = null, string? dataset = null, string? data = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--model: {path} does not exist");
        var (state, metadata) = SafeTensors.Load(path);
        foreach (var (name, t) in state)
            if (t.ToDoubleArray().Any(v => !double.IsFinite(v)))
                throw new InvalidDataException($"{path}: '{name}' holds NaN or infinite values; refusing to use a diverged model");
        if (arch is not null && metadata.ContainsKey(RunFolder.ConfigKey))
            throw new ArgumentException($"--arch: {path} was written by backprop train and carries its architecture; drop --arch");

        ModelFile file;
        if (metadata.TryGetValue(RunFolder.ConfigKey, out var json)) file = Classifier(path, TrainSettings.FromJson(json), state, metadata, dataset, data);
        else if (arch is not null) file = Classifier(path, ParseArch(arch, dataset ?? "mnist", data, out var image), state, metadata, dataset, data, image);
        else if (metadata.ContainsKey(TwoLayerKey) || state.ContainsKey("W1")) file = TwoLayer(path, state, metadata, data);
        else if (metadata.ContainsKey(MultiTaskKey) || state.ContainsKey("fc1a.weight")) file = MultiTask(path, state, metadata, data);
        else if (metadata.ContainsKey(VaeKey) || state.ContainsKey("fc21.weight")) file = Vae(path, state, data);
        else throw new InvalidDataException($"{path}: no Backprop metadata, and its tensors ({string.Join(", ", state.Keys.Take(6))}…) are none of the CLI's models; " +
            "give the architecture with --arch, e.g. --arch mlp:784-100-10");
        file.Net.Eval();
        return file;
    }

    // ---- classifiers: train's models, and bare weights described by --arch -------------------------------------------

    static ModelFile Classifier(string path, TrainSettings s, Dictionary<string, Tensor> state, Dictionary<string, string> metadata,
        string? dataset, string? data, (int C, int H, int W, int Classes)? image = null)
    {
        s = s with { Dataset = dataset ?? s.Dataset, Data = data ?? s.Data, DType = DType.Float32 };
        Preprocessor? prep = metadata.TryGetValue(RunFolder.PreprocessingKey, out var p) ? Preprocessor.FromJson(p) : null;
        string[]? classes = null;
        if (metadata.TryGetValue(RunFolder.ClassesKey, out var c))
        {
            try { classes = JsonSerializer.Deserialize(c, ClassNamesContext.Default.StringArray); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: class names: {e.Message}"); }
        }
        int channels, height, width, count;
        if (image is { } i) (channels, height, width, count) = i;
        else if (prep is not null && classes is not null) (channels, height, width, count) = (prep.Channels, prep.Height, prep.Width, classes.Length);
        else (channels, height, width, count) = s.Dataset == "cifar10" ? (3, 32, 32, 10) : (1, 28, 28, 10);   // files written before the metadata existed
        classes ??= DefaultClasses(s.Dataset, count);
        if (classes.Length != count) throw new InvalidDataException($"{path}: {classes.Length} class names for {count} classes");
        Experiment.CheckState(path, s, channels, height, width, count, state);
        var net = Experiment.BuildModel(s, channels, height, width, count, new Generator(0));
        Load(net, state, path);
        return new ModelFile(path, ModelKind.Classifier, net, s.Dataset, s.Data, prep, classes, s,
            [new("", [channels * height * width], x => [("logits", net.Forward(x))])]);
    }

    static string[] DefaultClasses(string dataset, int count) =>
        dataset == "cifar10" && count == 10 ? Cifar10.DefaultClassNames : [.. Enumerable.Range(0, count).Select(k => k.ToString(CultureInfo.InvariantCulture))];

    /// <summary>Parses an --arch spec into train's settings (see <see cref="ArchHelp"/>).</summary>
    internal static TrainSettings ParseArch(string arch, string dataset, string? data, out (int C, int H, int W, int Classes) image)
    {
        var parts = arch.Split(':');
        ArgumentException Bad(string why) => new($"--arch '{arch}': {why}. {ArchHelp}");
        int Int(string text, string what) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw Bad($"{what} '{text}' is not a positive integer");
        int[] Widths(string text, string what) => [.. text.Split('-').Select(w => Int(w, what))];
        var s = new TrainSettings { Dataset = dataset, Data = data, Model = parts[0], Hidden = [], BatchNorm = false };
        int options;
        if (parts[0] == "mlp")
        {
            if (parts.Length < 2) throw Bad("mlp needs its widths");
            var widths = Widths(parts[1], "width");
            if (widths.Length < 2) throw Bad("mlp needs at least the input and output widths");
            s = s with { Hidden = widths[1..^1] };
            image = dataset == "cifar10" ? (3, 32, 32, widths[^1]) : (1, 28, 28, widths[^1]);
            if (image.C * image.H * image.W != widths[0])
                image = (1, 1, widths[0], widths[^1]);   // not an image of the dataset: eval will say the data does not fit
            options = 2;
        }
        else if (parts[0] == "cnn")
        {
            if (parts.Length < 4) throw Bad("cnn needs the image C×H×W, the conv widths and the classes");
            var chw = parts[1].Split('x');
            if (chw.Length != 3) throw Bad($"image '{parts[1]}' is not C×H×W (e.g. 1x28x28)");
            image = (Int(chw[0], "channels"), Int(chw[1], "height"), Int(chw[2], "width"), Int(parts[3], "classes"));
            s = s with { Conv = Widths(parts[2], "conv width") };
            options = 4;
        }
        else { image = default; throw Bad($"unknown model '{parts[0]}' (mlp, cnn)"); }
        foreach (var option in parts[options..])
        {
            var (key, value) = option.Split('=', 2) is [var k, var v] ? (k, v) : (option, "");
            s = key switch
            {
                "batchnorm" => s with { BatchNorm = true },
                "pool-first" when s.Model == "cnn" => s with { PoolFirst = true },
                "tanh" => s with { Activation = Activation.Tanh },
                "sigmoid" => s with { Activation = Activation.Sigmoid },
                "dropout" when double.TryParse(value, CultureInfo.InvariantCulture, out var d) && d > 0 && d < 1 => s with { Dropout = d },
                "kernel" when s.Model == "cnn" => s with { Kernel = Int(value, "kernel") },
                "convs" when s.Model == "cnn" => s with { ConvsPerStage = Int(value, "convs") },
                "hidden" when s.Model == "cnn" => s with { Hidden = Widths(value, "hidden width") },
                _ => throw Bad($"unknown or invalid option '{option}'"),
            };
        }
        return s;
    }

    // ---- the other commands' models ------------------------------------------------------------------------------------

    static ModelFile TwoLayer(string path, Dictionary<string, Tensor> state, Dictionary<string, string> metadata, string? data)
    {
        foreach (var name in new[] { "W1", "b1", "W2", "b2" })
            if (!state.ContainsKey(name)) throw new InvalidDataException($"{path}: a two-layer net needs W1, b1, W2 and b2; '{name}' is missing");
        var net = new TwoLayerNet(state["W1"].To(DType.Float32), state["b1"].To(DType.Float32), state["W2"].To(DType.Float32), state["b2"].To(DType.Float32));
        var prep = metadata.TryGetValue(RunFolder.PreprocessingKey, out var p) ? Preprocessor.FromJson(p) : null;
        int features = state["W1"].Size(0), classes = state["W2"].Size(1);
        return new ModelFile(path, ModelKind.TwoLayer, net, "cifar10", data, prep, DefaultClasses("cifar10", classes), null,
            [new("", [features], x => [("scores", net.Forward(x))])]);
    }

    static ModelFile MultiTask(string path, Dictionary<string, Tensor> state, Dictionary<string, string> metadata, string? data)
    {
        int Size(string name, int dim) => state.TryGetValue(name, out var t) && t.Rank == 2 ? t.Size(dim)
            : throw new InvalidDataException($"{path}: the multi-task cascade needs a 2-D '{name}'");
        bool bnBeforeRelu = false, cascade = true;
        double dropout = 0.2;
        if (metadata.TryGetValue(MultiTaskKey, out var json))
        {
            try
            {
                using var doc = JsonDocument.Parse(json);
                bnBeforeRelu = doc.RootElement.GetProperty("batch_norm_before_relu").GetBoolean();
                cascade = doc.RootElement.GetProperty("cascade").GetBoolean();
                dropout = doc.RootElement.GetProperty("dropout").GetDouble();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}: '{MultiTaskKey}' metadata: {e.Message}");
            }
        }
        var net = new MultiTaskCascade(Size("fc1a.weight", 1), Size("fc1a.weight", 0), Size("fc2a.weight", 0), Size("fc2b.weight", 0), new Generator(0),
            dropout, bnBeforeRelu, cascade);
        Load(net, state, path);
        return new ModelFile(path, ModelKind.MultiTask, net, "mnist", data, null, DefaultClasses("mnist", Size("fc2b.weight", 0)), null,
            [new("", [Size("fc1a.weight", 1)], x => { var o = net.Outputs(x); return [("ya_hat", o.YaHat), ("logits", o.Logits)]; })]);
    }

    static ModelFile Vae(string path, Dictionary<string, Tensor> state, string? data)
    {
        int Size(string name, int dim) => state.TryGetValue(name, out var t) && t.Rank == 2 ? t.Size(dim)
            : throw new InvalidDataException($"{path}: the VAE needs a 2-D '{name}'");
        var vae = new Vae(Size("fc1.weight", 1), Size("fc1.weight", 0), Size("fc21.weight", 0), new Generator(0));
        Load(vae, state, path);
        return new ModelFile(path, ModelKind.Vae, vae, "mnist", data, null, [], null,
        [
            new("-encoder", [vae.Inputs], x => { var (mu, logVar) = vae.Encode(x); return [("mu", mu), ("log_var", logVar)]; }),
            new("-decoder", [vae.Latent], z => [("reconstruction", vae.Decode(z))]),
        ]);
    }

    static void Load(Module net, Dictionary<string, Tensor> state, string path)
    {
        try { net.LoadStateDict(state.ToDictionary(kv => kv.Key, kv => kv.Value.To(DType.Float32))); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>The input normalisation: the file's own, else refitted on the dataset's training split as the command did.</summary>
    public Preprocessor Normalisation()
    {
        if (Prep is not null) return Prep;
        var store = new DatasetStore();
        return Kind switch
        {
            ModelKind.TwoLayer => Preprocessor.Fit(DatasetSplits.Take(store.Cifar10(Data), Cifar10TwoLayerCommand.TrainCount, 0, 0).Train, Normalization.MeanImage, scale01: false),
            ModelKind.Classifier => Experiment.Prepare(Settings!, Experiment.Load(Settings!)).Preprocessor,
            _ => Preprocessor.Fit(store.Mnist(Data).Train, Normalization.Scale),   // multitask and vae: MNIST pixels / 255
        };
    }
}
