using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;

namespace Backprop.Cli;

/// <summary>Every setting of a training run, resolved from defaults, a preset and explicit options (in that order).</summary>
internal sealed record TrainSettings
{
    public string Dataset { get; init; } = "mnist";
    public string? Data { get; init; }
    public string Model { get; init; } = "mlp";
    public int[] Hidden { get; init; } = [50];
    public int[] Conv { get; init; } = [32, 64];     // cnn: channels of each stage
    public int Kernel { get; init; } = 3;            // cnn: square kernel size
    public int ConvsPerStage { get; init; } = 1;     // cnn: convolutions a stage
    public bool PoolFirst { get; init; }             // cnn: pool right after each stage's first convolution
    public int Whiten { get; init; }                 // cnn: k for a frozen k×k patch-whitening first convolution (0: none)
    public Activation Activation { get; init; } = Activation.Relu;
    public double Dropout { get; init; }
    public double InputDropout { get; init; }
    public bool BatchNorm { get; init; }
    public string Optimizer { get; init; } = "sgd";
    public double LearningRate { get; init; } = 0.1;
    public double Momentum { get; init; }
    public bool Nesterov { get; init; }
    public double WeightDecay { get; init; }
    public string Schedule { get; init; } = "step";
    public double Warmup { get; init; } = 1;         // warmup-cosine: epochs of linear warm-up
    public string Augment { get; init; } = "none";   // none | flip | crop | crop-flip | translate
    public double LabelSmoothing { get; init; }
    public bool FlipAveraging { get; init; }       // also report test accuracy with flip averaging
    public bool TtaTranslate { get; init; }        // and average one-pixel shifts too (airbench's level 2)
    public CnnStyle Style { get; init; }           // cnn: PyTorch defaults, or airbench's details
    public double BiasLrScale { get; init; } = 1;  // batch-norm biases train at this multiple of the rate (1/it of the decay)
    public bool Lookahead { get; init; }           // airbench's EMA lookahead
    public int WhitenBiasEpochs { get; init; }     // the whitening stem's bias trains this many epochs, then freezes (0: always trains)
    public int LrStep { get; init; } = 20;
    public double LrGamma { get; init; } = 0.1;
    public int Epochs { get; init; } = 60;
    public int BatchSize { get; init; } = 16;
    public ulong Seed { get; init; }
    public int ValidationSize { get; init; } = -1;   // −1: the dataset's classic split
    public int TestSize { get; init; } = -1;         // −1: the whole test set; k: its first k images
    public Normalization? Normalize { get; init; }   // null: the dataset's default
    public DType DType { get; init; } = DType.Float32;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public string? Preset { get; init; }

    /// <summary>Named option sets; explicit options override them.</summary>
    public static readonly IReadOnlyDictionary<string, (string Description, Func<TrainSettings, TrainSettings> Apply)> Presets =
        new Dictionary<string, (string, Func<TrainSettings, TrainSettings>)>
        {
            ["mnist-classic"] = ("784-50-10 ReLU, SGD lr 0.1, batch 16, 60 epochs, lr ×0.1 every 20 (the default)", s => s),
            ["mnist-quick"] = ("the classic recipe in 6 epochs, lr ×0.1 every 2", s => s with { Epochs = 6, LrStep = 2 }),
            ["mnist-cnn"] = ("Conv 5×5 32 → pool → Conv 5×5 64 → pool → Linear 1024 → dropout 0.5 → Linear 10, SGD momentum 0.9 lr 0.05 cosine, batch 64, 4 epochs",
                s => s with { Model = "cnn", Conv = [32, 64], Kernel = 5, Hidden = [1024], Dropout = 0.5, Momentum = 0.9, LearningRate = 0.05, Schedule = "cosine", BatchSize = 64, Epochs = 4 }),
            ["cifar10-cnn-quick"] = ($"CIFAR-10, {AirbenchText} stages 32-128-128, 4 epochs", s => Airbench(s, [32, 128, 128], 4)),
            ["cifar10-cnn"] = ($"CIFAR-10, {AirbenchText} stages 32-128-128, 10 epochs", s => Airbench(s, [32, 128, 128], 10)),
            ["mnist-best"] = ("784-1024-1024-10, dropout 0.2 on inputs and 0.5 on hidden layers, SGD momentum 0.9, lr 0.05 cosine, batch 128, 30 epochs",
                s => s with { Hidden = [1024, 1024], InputDropout = 0.2, Dropout = 0.5, Momentum = 0.9, LearningRate = 0.05, Schedule = "cosine", BatchSize = 128, Epochs = 30 }),
        };

    const string AirbenchText = "Keller Jordan's airbench recipe on 2 cores: a frozen 2×2 patch-whitening convolution, then stages of conv → pool → BN → GELU → conv → BN → GELU " +
        "(identity-initialised convolutions, BN scale fixed at 1), global max pool, Linear/9; ±2-pixel translation and flips, label smoothing 0.2, " +
        "Nesterov SGD momentum 0.85 lr 0.375 (0.2→1→0.07 one-cycle) with BN biases at 64× the rate, weight decay 1.33e-3, lookahead, batch 256, " +
        "test-time flip and shift averaging;";

    // airbench94's hyperparameters (per 1,024 examples, summed loss: lr 11.5, momentum 0.85, decay 0.0153) restated for a mean
    // loss at batch 256: lr 11.5 / (1024·(1 + 1/0.15)) · 256 = 0.375, weight decay 0.0153 / 11.5 = 1.33e-3 (0.375 · 1.33e-3 = 5e-4 shrink a step).
    static TrainSettings Airbench(TrainSettings s, int[] widths, int epochs) => s with
    {
        Dataset = "cifar10", Model = "cnn", Conv = widths, Kernel = 3, ConvsPerStage = 2, BatchNorm = true, PoolFirst = true, Hidden = [], Whiten = 2,
        Activation = Activation.Gelu, Style = CnnStyle.Airbench, Augment = "translate-flip", LabelSmoothing = 0.2, FlipAveraging = true, TtaTranslate = true,
        Momentum = 0.85, Nesterov = true, LearningRate = 0.375, WeightDecay = 1.33e-3, BiasLrScale = 64, Lookahead = true, Schedule = "one-cycle",
        BatchSize = 256, Epochs = epochs,
    };

    public int ResolvedValidationSize(int trainCount) => ValidationSize >= 0 ? ValidationSize : Dataset == "cifar10" ? 1000 : Math.Min(5000, trainCount / 10);

    public Normalization ResolvedNormalization => Normalize ?? (Dataset == "cifar10" ? Normalization.PerChannel : Normalization.Scale);

    public string HiddenText => string.Join(",", Hidden);

    /// <summary>The settings as a JSON object (summary.json's "hyperparameters", and the model file's metadata).</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("dataset", Dataset);
        w.WriteString("model", Model);
        w.WriteString("hidden", HiddenText);
        if (Model == "cnn")
        {
            w.WriteString("conv", string.Join(",", Conv));
            w.WriteNumber("kernel", Kernel);
            w.WriteNumber("convs_per_stage", ConvsPerStage);
            if (PoolFirst)
            {
                w.WriteBoolean("pool_first", true);
                w.WriteString("pool_after", "first");   // builds before 2026-12-01 pooled after a stage's last convolution
            }
            if (Whiten > 0) w.WriteNumber("whiten", Whiten);
            if (Style != CnnStyle.Standard) w.WriteString("style", Style.ToString().ToLowerInvariant());
        }
        w.WriteString("activation", Activation.ToString().ToLowerInvariant());
        w.WriteNumber("dropout", Dropout);
        w.WriteNumber("input_dropout", InputDropout);
        w.WriteBoolean("batchnorm", BatchNorm);
        w.WriteString("optimizer", Optimizer);
        w.WriteNumber("lr", LearningRate);
        w.WriteNumber("momentum", Momentum);
        w.WriteBoolean("nesterov", Nesterov);
        w.WriteNumber("weight_decay", WeightDecay);
        w.WriteString("schedule", Schedule);
        if (Schedule == "warmup-cosine") w.WriteNumber("warmup", Warmup);
        if (Augment != "none") w.WriteString("augment", Augment);
        if (LabelSmoothing > 0) w.WriteNumber("label_smoothing", LabelSmoothing);
        if (FlipAveraging) w.WriteBoolean("tta", true);
        if (TtaTranslate) w.WriteBoolean("tta_translate", true);
        if (BiasLrScale != 1) w.WriteNumber("bias_lr_scale", BiasLrScale);
        if (Lookahead) w.WriteBoolean("lookahead", true);
        if (WhitenBiasEpochs > 0) w.WriteNumber("whiten_bias_epochs", WhitenBiasEpochs);
        w.WriteNumber("lr_step", LrStep);
        w.WriteNumber("lr_gamma", LrGamma);
        w.WriteNumber("epochs", Epochs);
        w.WriteNumber("batch_size", BatchSize);
        w.WriteNumber("seed", Seed);
        w.WriteNumber("validation_size", ValidationSize);
        w.WriteNumber("test_size", TestSize);
        w.WriteString("normalize", ResolvedNormalization.ToString());
        w.WriteString("dtype", DType == DType.Float32 ? "float32" : "float64");
        w.WriteNumber("threads", Threads);
        if (Preset is not null) w.WriteString("preset", Preset);
        w.WriteEndObject();
    }

    public string ToJson()
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) WriteJson(w);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>
    /// Reads back what <see cref="ToJson"/> wrote (to rebuild a saved model for evaluation). Anything else — bad JSON, a
    /// missing or mistyped key, an unknown name, a non-positive width — raises one <see cref="InvalidDataException"/>
    /// naming the key.
    /// </summary>
    public static TrainSettings FromJson(string json)
    {
        try
        {
            var s = ParseJson(json);
            if ((s.Hidden.Length == 0 && s.Model != "cnn") || s.Hidden.Any(h => h <= 0)) throw new FormatException($"hidden widths ({string.Join(",", s.Hidden)}) must be positive");
            if (s.Conv.Length == 0 || s.Conv.Any(c => c <= 0) || s.Kernel <= 0 || s.ConvsPerStage <= 0)
                throw new FormatException($"conv widths ({string.Join(",", s.Conv)}), kernel {s.Kernel} and convs per stage {s.ConvsPerStage} must be positive");
            return s;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException or ArgumentException)
        {
            throw new InvalidDataException($"model settings ({RunFolder.ConfigKey}): {e.Message}");
        }
    }

    static int[] Widths(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(h => int.Parse(h, CultureInfo.InvariantCulture)).ToArray();

    static TrainSettings ParseJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        string S(string k) => r.GetProperty(k).GetString() ?? "";
        double D(string k) => r.GetProperty(k).GetDouble();
        var s = new TrainSettings
        {
            Dataset = S("dataset"), Model = S("model"),
            Hidden = S("hidden").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(h => int.Parse(h, CultureInfo.InvariantCulture)).ToArray(),
            Conv = r.TryGetProperty("conv", out var conv) ? Widths(conv.GetString() ?? "") : [32, 64],   // absent for MLPs
            Kernel = r.TryGetProperty("kernel", out var k) ? k.GetInt32() : 3,
            ConvsPerStage = r.TryGetProperty("convs_per_stage", out var cps) ? cps.GetInt32() : 1,
            PoolFirst = r.TryGetProperty("pool_first", out var pf) && pf.GetBoolean(),
            Whiten = r.TryGetProperty("whiten", out var wh) ? wh.GetInt32() : 0,
            Activation = Enum.Parse<Activation>(S("activation"), ignoreCase: true),
            Dropout = D("dropout"), InputDropout = D("input_dropout"), BatchNorm = r.GetProperty("batchnorm").GetBoolean(),
            Optimizer = S("optimizer"), LearningRate = D("lr"), Momentum = D("momentum"), WeightDecay = D("weight_decay"),
            Warmup = r.TryGetProperty("warmup", out var wu) ? wu.GetDouble() : 1,
            Augment = r.TryGetProperty("augment", out var au) ? au.GetString() ?? "none" : "none",
            LabelSmoothing = r.TryGetProperty("label_smoothing", out var ls) ? ls.GetDouble() : 0,
            FlipAveraging = r.TryGetProperty("tta", out var tta) && tta.GetBoolean(),
            TtaTranslate = r.TryGetProperty("tta_translate", out var ttt) && ttt.GetBoolean(),
            Style = r.TryGetProperty("style", out var st) ? Enum.Parse<CnnStyle>(st.GetString() ?? "", ignoreCase: true) : CnnStyle.Standard,
            BiasLrScale = r.TryGetProperty("bias_lr_scale", out var bls) ? bls.GetDouble() : 1,
            Lookahead = r.TryGetProperty("lookahead", out var la) && la.GetBoolean(),
            WhitenBiasEpochs = r.TryGetProperty("whiten_bias_epochs", out var wbe) ? wbe.GetInt32() : 0,
            Schedule = S("schedule"), LrStep = (int)D("lr_step"), LrGamma = D("lr_gamma"), Epochs = (int)D("epochs"),
            BatchSize = (int)D("batch_size"), Seed = r.GetProperty("seed").GetUInt64(), ValidationSize = (int)D("validation_size"),
            TestSize = r.TryGetProperty("test_size", out var ts) ? ts.GetInt32() : -1,   // absent in models saved before --test-size
            Normalize = Enum.Parse<Normalization>(S("normalize")),
            DType = S("dtype") == "float64" ? DType.Float64 : DType.Float32,
        };
        // Builds before 2026-12-01 pooled after a stage's last convolution: with several a stage, another network.
        if (s.PoolFirst && s.ConvsPerStage > 1 && !(r.TryGetProperty("pool_after", out var pa) && pa.GetString() == "first"))
            throw new FormatException($"pool_first with {s.ConvsPerStage} convolutions a stage was saved by a build that pooled after a stage's last convolution; this build pools after the first, so these weights belong to another network (retrain it)");
        return s;
    }
}
