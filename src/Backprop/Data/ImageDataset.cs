using System.Numerics.Tensors;

namespace Backprop.Data;

/// <summary>
/// Images as bytes (N × C × H × W, row-major, 0–255) with one label per image. Kept as bytes until
/// preprocessing so a dataset costs one byte per pixel in memory.
/// </summary>
public sealed class ImageDataset
{
    public ImageDataset(string name, byte[] pixels, byte[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        long per = (long)channels * height * width;
        if (channels <= 0 || height <= 0 || width <= 0 || pixels.LongLength != labels.LongLength * per)
            throw new ArgumentException($"{name}: {pixels.Length:N0} pixel bytes do not hold {labels.Length:N0} images of {channels}×{height}×{width}");
        int max = labels.Length == 0 ? -1 : TensorPrimitives.Max<byte>(labels);
        if (max >= classNames.Count) throw new InvalidDataException($"{name}: label {max} is outside the {classNames.Count} classes");
        Name = name; Pixels = pixels; Labels = labels; Channels = channels; Height = height; Width = width; ClassNames = classNames;
    }

    public string Name { get; }
    public byte[] Pixels { get; }
    public byte[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => Labels.Length;
    public int Features => Channels * Height * Width;

    /// <summary>Images [start, start + count) as a new dataset (copies), named <paramref name="name"/> or after this one.</summary>
    public ImageDataset Subset(int start, int count, string? name = null)
    {
        if (start < 0 || count < 0 || start > Count - count)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Name}: subset [{start}, {(long)start + count}) is outside its {Count} images");
        return new ImageDataset(name ?? Name, Pixels.AsSpan(start * Features, count * Features).ToArray(), Labels.AsSpan(start, count).ToArray(),
            Channels, Height, Width, ClassNames);
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (copies), as torch.utils.data.Subset.</summary>
    public ImageDataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        int f = Features;
        var pixels = new byte[indices.Length * f];
        var labels = new byte[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            int j = indices[i];
            if ((uint)j >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"{Name}: index {j} is outside its {Count} images");
            Pixels.AsSpan(j * f, f).CopyTo(pixels.AsSpan(i * f));
            labels[i] = Labels[j];
        }
        return new ImageDataset(name ?? Name, pixels, labels, Channels, Height, Width, ClassNames);
    }

    /// <summary>The first <paramref name="count"/> images and the rest, e.g. <c>SplitAt(Count - 5000)</c> holds out the last 5,000.</summary>
    public (ImageDataset Head, ImageDataset Tail) SplitAt(int count) =>
        (Subset(0, count), Subset(count, Count - count));

    /// <summary>Labels as ints (what losses take).</summary>
    public int[] LabelsAsInts()
    {
        var y = new int[Labels.Length];
        TensorPrimitives.ConvertChecked<byte, int>(Labels, y);
        return y;
    }

    /// <summary>How many images each class has.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassNames.Count];
        foreach (byte l in Labels) counts[l]++;
        return counts;
    }
}

/// <summary>A dataset's standard training and test sets.</summary>
public sealed record DatasetPair(ImageDataset Train, ImageDataset Test);

/// <summary>Training, validation and test sets; the validation images come out of the official training set.</summary>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset Validation, ImageDataset Test)
{
    /// <summary>Holds out the last <paramref name="validation"/> training images (MNIST's classic 55,000/5,000), keeps the whole test set.</summary>
    public static DatasetSplits HoldOutLast(DatasetPair data, int validation)
    {
        if (validation < 0 || validation >= data.Train.Count)
            throw new ArgumentOutOfRangeException(nameof(validation), $"{data.Train.Name}: validation size {validation} is not below its {data.Train.Count} images");
        var (train, val) = data.Train.SplitAt(data.Train.Count - validation);
        return new DatasetSplits(train, val, data.Test);
    }

    /// <summary>
    /// The first <paramref name="train"/> training images for training, the next <paramref name="validation"/> for
    /// validation, the first <paramref name="test"/> test images for testing (CIFAR-10's classic 49,000/1,000/1,000).
    /// </summary>
    public static DatasetSplits Take(DatasetPair data, int train, int validation, int test)
    {
        if (train < 0 || validation < 0 || (long)train + validation > data.Train.Count)
            throw new ArgumentOutOfRangeException(nameof(train), $"{data.Train.Name}: {train} + {validation} images exceed its {data.Train.Count}");
        return new DatasetSplits(data.Train.Subset(0, train), data.Train.Subset(train, validation), data.Test.Subset(0, test));
    }

    /// <summary>MNIST's usual split: the last 5,000 training images for validation.</summary>
    public static DatasetSplits Mnist(DatasetPair data) => HoldOutLast(data, 5000);

    /// <summary>The classic CIFAR-10 exercise: 49,000 train, 1,000 validation, 1,000 test.</summary>
    public static DatasetSplits Cifar10(DatasetPair data) => Take(data, 49_000, 1_000, 1_000);
}
