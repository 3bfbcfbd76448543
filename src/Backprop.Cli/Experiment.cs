using Backprop.Data;
using Backprop.Models;
using Backprop.Nn;

namespace Backprop.Cli;

/// <summary>A dataset split into training, validation and test tensors, preprocessed with training statistics.</summary>
internal sealed record PreparedData(Tensor TrainX, int[] TrainY, Tensor ValX, int[] ValY, Tensor TestX, int[] TestY,
    IReadOnlyList<string> ClassNames, int Channels, int Height, int Width, Preprocessor Preprocessor)
{
    public int Features => TrainX.Size(1);
    public int Classes => ClassNames.Count;
}

/// <summary>What train and eval share: loading and splitting data, and building the model from settings.</summary>
internal static class Experiment
{
    public static DatasetPair Load(TrainSettings s) => s.Dataset switch
    {
        "mnist" => new DatasetStore().Mnist(s.Data),
        "idx" => s.Data is null ? throw new ArgumentException("--dataset idx needs --data DIR (a folder with the four IDX files)") : new DatasetStore().Mnist(s.Data),
        "cifar10" => new DatasetStore().Cifar10(s.Data),
        _ => throw new ArgumentException($"--dataset: unknown dataset '{s.Dataset}' (mnist, cifar10, idx)"),
    };

    public static PreparedData Prepare(TrainSettings s, DatasetPair data)
    {
        int val = s.ResolvedValidationSize(data.Train.Count);
        if (val < 0 || val >= data.Train.Count) throw new ArgumentException($"--val-size: {val} is not below the {data.Train.Count} training images");
        // The last `val` training images are held out, as the classic recipes do (CIFAR-10: 49,000 / 1,000).
        var (train, valid, _) = DatasetSplits.HoldOutLast(data, val);
        if (s.TestSize > data.Test.Count) throw new ArgumentException($"--test-size: {s.TestSize} is more than the {data.Test.Count} test images");
        var test = s.TestSize > 0 ? data.Test.Subset(0, s.TestSize) : data.Test;
        var prep = Preprocessor.Fit(train, s.ResolvedNormalization);
        return new PreparedData(prep.Apply(train, s.DType), train.LabelsAsInts(), prep.Apply(valid, s.DType), valid.LabelsAsInts(),
            prep.Apply(test, s.DType), test.LabelsAsInts(), data.Train.ClassNames, train.Channels, train.Height, train.Width, prep);
    }

    public static Sequential BuildModel(TrainSettings s, PreparedData data, Generator g) =>
        BuildModel(s, data.Channels, data.Height, data.Width, data.Classes, g);

    public static Sequential BuildModel(TrainSettings s, int channels, int height, int width, int classes, Generator g)
    {
        int features = channels * height * width;
        if (s.Model == "cnn")
            return Cnn.Create(channels, height, width, s.Conv, classes, g, s.Kernel, s.ConvsPerStage, s.BatchNorm, s.Hidden, s.Dropout, s.DType, s.PoolFirst, s.Activation, s.Whiten, s.Style);
        if (s.Model != "mlp") throw new ArgumentException($"--model: unknown model '{s.Model}' (mlp, cnn)");
        // Refuse up front what cannot fit: weights, gradients and up to two optimizer buffers each, in the model's dtype.
        int[] widths = [features, .. s.Hidden, classes];
        double parameters = 0;
        for (int i = 0; i + 1 < widths.Length; i++) parameters += (double)widths[i] * widths[i + 1] + widths[i + 1];
        double needed = parameters * (s.DType == DType.Float64 ? 8 : 4) * 4;
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (needed > available)
            throw new ArgumentException($"--hidden: a {string.Join("-", widths)} network has {parameters:N0} parameters and needs about {needed / (1 << 30):N1} GiB " +
                $"(weights, gradients, optimizer state); this machine offers {available / (1 << 30):N1} GiB");
        return Mlp.Create(features, s.Hidden, classes, g, s.Activation, s.Dropout, s.InputDropout, s.BatchNorm, dtype: s.DType);
    }

    /// <summary>
    /// Refuses a model file whose tensors cannot be the model its settings describe — before a model of the declared size
    /// is built (a tiny file declaring hidden 40000,40000 must not allocate 1.6e9 weights first).
    /// </summary>
    public static void CheckState(string path, TrainSettings s, int channels, int height, int width, int classes, IReadOnlyDictionary<string, Tensor> state)
    {
        if (s.Model == "cnn")
        {
            if (s.Conv.Length == 0 || (height >> s.Conv.Length) == 0 || (width >> s.Conv.Length) == 0)
                throw new InvalidDataException($"{path}: {s.Conv.Length} pooling stages do not fit {height}×{width} images");
            long need = Cnn.StateSize(channels, height, width, s.Conv, classes, s.Kernel, s.ConvsPerStage, s.BatchNorm, s.Hidden, s.Whiten, s.Style);
            long have = state.Values.Sum(t => (long)t.Length);
            if (need != have) throw new InvalidDataException($"{path}: the file holds {have:N0} values; its settings describe a cnn of {need:N0}");
            return;
        }
        int[] widths = [channels * height * width, .. s.Hidden, classes];
        var linears = state.Where(kv => kv.Key.EndsWith(".weight", StringComparison.Ordinal) && kv.Value.Rank == 2)
            .OrderBy(kv => int.TryParse(kv.Key.Split('.')[0], out int i) ? i : int.MaxValue).Select(kv => (kv.Key, Shape: kv.Value.Shape.ToArray())).ToArray();
        string needText = string.Join(" → ", widths.Zip(widths.Skip(1), (a, b) => $"({b},{a})"));
        string haveText = string.Join(" → ", linears.Select(l => $"({string.Join(",", l.Shape)})"));
        if (linears.Length != widths.Length - 1 || linears.Select((l, i) => l.Shape.SequenceEqual(new[] { widths[i + 1], widths[i] })).Any(ok => !ok))
            throw new InvalidDataException($"{path}: the file's layers are {haveText}; its settings (and the data) need {needText}");
    }

    /// <summary>
    /// Sets a whitening stem's frozen filters from the first 5,000 training images (as airbench does; more change them
    /// little), after the model is built and before it trains. A no-op without a stem.
    /// </summary>
    public static void InitWhitening(TrainSettings s, PreparedData d, Module model)
    {
        if (s.Model != "cnn" || s.Whiten == 0) return;
        int n = Math.Min(5000, d.TrainY.Length);
        Init.PatchWhitening(Cnn.FirstConv(model)!.Weight, d.TrainX.Narrow(0, 0, n).Reshape(n, d.Channels, d.Height, d.Width));
    }

    /// <summary>The training-image augmentation the settings ask for (null for none).</summary>
    public static IImageTransform? Augmentation(TrainSettings s, PreparedData d) => s.Augment switch
    {
        "flip" => Augment.RandomHorizontalFlip(d.Channels, d.Height, d.Width),
        "crop" => Augment.RandomCrop(d.Channels, d.Height, d.Width, 4),
        "crop-flip" => Augment.CropAndFlip(d.Channels, d.Height, d.Width),
        "translate" => Augment.RandomTranslate(d.Channels, d.Height, d.Width, 2, 2),
        "translate-flip" => Augment.TranslateAndFlip(d.Channels, d.Height, d.Width, 2),
        "translate-altflip" => Augment.TranslateAndAlternatingFlip(d.Channels, d.Height, d.Width, 2),
        _ => null,
    };

    public static IEnumerable<(Tensor X, int[] Y)> Batches(Tensor x, int[] y, int batchSize = 1000) => new DataLoader(x, y, batchSize);
}
