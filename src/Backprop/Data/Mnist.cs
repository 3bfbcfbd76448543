namespace Backprop.Data;

/// <summary>
/// Any folder holding the four standard IDX files (raw or .gz) loads as an MNIST-format dataset:
/// MNIST, Fashion-MNIST, KMNIST and others share the layout.
/// </summary>
public static class Mnist
{
    public static readonly string[] Files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>MD5 of the decompressed official MNIST files (from the dataset's distribution).</summary>
    public static readonly IReadOnlyDictionary<string, string> Md5 = new Dictionary<string, string>
    {
        ["train-images-idx3-ubyte"] = "6bbc9ace898e44ae57da46a324031adb",
        ["train-labels-idx1-ubyte"] = "a25bea736e30d166cdddb491f175f624",
        ["t10k-images-idx3-ubyte"] = "2646ac647ad5339dbf082846283269ea",
        ["t10k-labels-idx1-ubyte"] = "27ae3e4e09519cfbb04c329615203637",
    };

    static readonly string[] DigitNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>The file names tried for a standard file, in order (some mirrors write <c>train-images.idx3-ubyte</c>).</summary>
    public static string[] Candidates(string file) => [file + ".gz", file, file.Replace("-idx", ".idx", StringComparison.Ordinal) + ".gz", file.Replace("-idx", ".idx", StringComparison.Ordinal)];

    /// <summary>The path of a standard file in <paramref name="folder"/> (.gz or raw), or null.</summary>
    public static string? Find(string folder, string file)
    {
        foreach (var candidate in Candidates(file))
        {
            var p = Path.Combine(folder, candidate);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>True when <paramref name="folder"/> holds all four files.</summary>
    public static bool IsComplete(string folder)
    {
        foreach (var f in Files)
            if (Find(folder, f) is null) return false;
        return true;
    }

    /// <summary>The standard files <paramref name="folder"/> lacks.</summary>
    public static List<string> Missing(string folder)
    {
        var missing = new List<string>();
        foreach (var f in Files)
            if (Find(folder, f) is null) missing.Add(f);
        return missing;
    }

    /// <summary>Loads the training and test sets; labels must lie below the number of <paramref name="classNames"/> (default the digits 0–9).</summary>
    public static DatasetPair Load(string folder, string name = "mnist", IReadOnlyList<string>? classNames = null)
    {
        var missing = Missing(folder);
        if (missing.Count > 0)
            throw new FileNotFoundException(
                $"{name}: {Path.GetFullPath(folder)} is missing {string.Join(", ", missing)} " +
                $"(looked for {string.Join(" / ", Candidates(missing[0]))}; an MNIST-format folder holds {string.Join(", ", Files)}, raw or .gz)");
        classNames ??= DigitNames;
        return new DatasetPair(Read(folder, "train", name, classNames), Read(folder, "t10k", name, classNames));
    }

    static ImageDataset Read(string folder, string prefix, string name, IReadOnlyList<string> classNames)
    {
        string imagesPath = Find(folder, $"{prefix}-images-idx3-ubyte")!, labelsPath = Find(folder, $"{prefix}-labels-idx1-ubyte")!;
        var (pixels, n, rows, cols) = Idx.ReadImages(imagesPath);
        var labels = Idx.ReadLabels(labelsPath);
        if (labels.Length != n) throw new InvalidDataException($"{labelsPath}: {labels.Length:N0} labels for {n:N0} images in {imagesPath}");
        int max = n == 0 ? -1 : System.Numerics.Tensors.TensorPrimitives.Max<byte>(labels);
        if (max >= classNames.Count)
            throw new InvalidDataException($"{labelsPath}: label {max} at index {Array.IndexOf(labels, (byte)max)} is outside the {classNames.Count} classes");
        return new ImageDataset($"{name}/{(prefix == "t10k" ? "test" : "train")}", pixels, labels, 1, rows, cols, classNames);
    }
}
