namespace Backprop.Data;

/// <summary>
/// Images as bytes (N × C × H × W, row-major, 0–255) with one label per image. Kept as bytes until
/// preprocessing so a dataset costs one byte per pixel in memory.
/// </summary>
public sealed class ImageDataset
{
    public ImageDataset(string name, byte[] pixels, byte[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        int per = channels * height * width;
        if (per <= 0 || pixels.Length != labels.Length * per)
            throw new ArgumentException($"{name}: {pixels.Length} pixel bytes do not hold {labels.Length} images of {channels}×{height}×{width}");
        foreach (var l in labels)
            if (l >= classNames.Count) throw new InvalidDataException($"{name}: label {l} is outside the {classNames.Count} classes");
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

    /// <summary>Images [start, start + count) as a new dataset (copies).</summary>
    public ImageDataset Slice(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Name}: slice [{start}, {start + count}) is outside its {Count} images");
        return new ImageDataset(Name, Pixels.AsSpan(start * Features, count * Features).ToArray(), Labels.AsSpan(start, count).ToArray(),
            Channels, Height, Width, ClassNames);
    }

    /// <summary>Labels as ints (what losses take).</summary>
    public int[] LabelsAsInts() => Array.ConvertAll(Labels, b => (int)b);
}

/// <summary>A dataset's standard training and test sets.</summary>
public sealed record DatasetPair(ImageDataset Train, ImageDataset Test);
