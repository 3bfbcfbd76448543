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

    /// <summary>The path of a standard file in <paramref name="folder"/> (.gz or raw), or null.</summary>
    public static string? Find(string folder, string file)
    {
        foreach (var candidate in new[] { file + ".gz", file, file.Replace("-idx", ".idx") + ".gz", file.Replace("-idx", ".idx") })
        {
            var p = Path.Combine(folder, candidate);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>True when <paramref name="folder"/> holds all four files.</summary>
    public static bool IsComplete(string folder) => Files.All(f => Find(folder, f) is not null);

    public static DatasetPair Load(string folder, string name = "mnist", IReadOnlyList<string>? classNames = null)
    {
        var missing = Files.Where(f => Find(folder, f) is null).ToList();
        if (missing.Count > 0)
            throw new FileNotFoundException($"{name}: {folder} is missing {string.Join(", ", missing.Select(m => m + "[.gz]"))}");
        classNames ??= Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new DatasetPair(Read(folder, "train", name, classNames), Read(folder, "t10k", name, classNames));
    }

    static ImageDataset Read(string folder, string prefix, string name, IReadOnlyList<string> classNames)
    {
        string imagesPath = Find(folder, $"{prefix}-images-idx3-ubyte")!, labelsPath = Find(folder, $"{prefix}-labels-idx1-ubyte")!;
        var (pixels, n, rows, cols) = Idx.ReadImages(imagesPath);
        var labels = Idx.ReadLabels(labelsPath);
        if (labels.Length != n) throw new InvalidDataException($"{labelsPath}: {labels.Length} labels for {n} images in {imagesPath}");
        int classes = labels.Length == 0 ? 0 : labels.Max() + 1;
        if (classes > classNames.Count) throw new InvalidDataException($"{labelsPath}: label {classes - 1} is outside the {classNames.Count} classes");
        return new ImageDataset($"{name}/{(prefix == "t10k" ? "test" : "train")}", pixels, labels, 1, rows, cols, classNames);
    }
}
