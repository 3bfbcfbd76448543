using System.Formats.Tar;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// CIFAR-10 in its binary layout: records of 1 label byte + 3,072 pixel bytes (1,024 red, 1,024 green,
/// 1,024 blue, each 32×32 row-major) in data_batch_1..5.bin and test_batch.bin. Reads the official
/// <c>cifar-10-binary.tar.gz</c> directly (no unpacking step) or its unpacked <c>cifar-10-batches-bin/</c> folder.
/// </summary>
public static class Cifar10
{
    public const string Archive = "cifar-10-binary.tar.gz", Folder = "cifar-10-batches-bin";
    public const int Record = 1 + 3 * 32 * 32;
    // An official batch is 30,730,000 bytes; anything far beyond that is a corrupt size field, refused before allocating.
    const long MaxBatchBytes = 64L << 20;
    static readonly string[] TrainBatches = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
    const string TestBatch = "test_batch.bin", Meta = "batches.meta.txt";
    public static readonly string[] DefaultClassNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Where CIFAR-10 sits under <paramref name="path"/> (the archive, the batches folder, or a folder holding either), or null.</summary>
    public static string? Locate(string path)
    {
        if (File.Exists(path)) return path;
        if (!Directory.Exists(path)) return null;
        if (HasBatches(path)) return path;
        if (Directory.Exists(Path.Combine(path, Folder))) return Path.Combine(path, Folder);
        if (File.Exists(Path.Combine(path, Archive))) return Path.Combine(path, Archive);
        return null;
    }

    static bool HasBatches(string folder)
    {
        if (File.Exists(Path.Combine(folder, TestBatch))) return true;
        foreach (var b in TrainBatches)
            if (File.Exists(Path.Combine(folder, b))) return true;
        return false;
    }

    public static DatasetPair Load(string path)
    {
        string where = Locate(path) ?? throw new FileNotFoundException($"cifar10: no {Archive} or {Folder}/ found at {path}");
        var files = new Dictionary<string, byte[]>();
        if (File.Exists(where))
        {
            using var gz = new GZipStream(File.OpenRead(where), CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            try
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    string name = Path.GetFileName(entry.Name);
                    if (entry.DataStream is null || !(name == TestBatch || name == Meta || TrainBatches.Contains(name))) continue;
                    if (name != Meta) CheckSize(where, entry.Name, entry.Length);
                    else if (entry.Length > 1 << 16) throw new InvalidDataException($"{where}: {entry.Name} is {entry.Length:N0} bytes, too large for a class list");
                    var data = new byte[entry.Length];
                    entry.DataStream.ReadExactly(data);
                    files[name] = data;
                }
            }
            catch (Exception e) when (e is EndOfStreamException or InvalidDataException or FormatException && !e.Message.StartsWith(where, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{where}: not a readable cifar-10-binary.tar.gz, truncated or corrupt ({e.Message})", e);
            }
        }
        else
        {
            foreach (var name in TrainBatches.Append(TestBatch).Append(Meta))
            {
                var p = Path.Combine(where, name);
                if (!File.Exists(p)) continue;
                if (name != Meta) CheckSize(where, name, new FileInfo(p).Length);
                files[name] = File.ReadAllBytes(p);
            }
        }
        var missing = TrainBatches.Append(TestBatch).Where(b => !files.ContainsKey(b)).ToList();
        if (missing.Count > 0) throw new FileNotFoundException($"{where}: missing {string.Join(", ", missing)} (CIFAR-10 needs {string.Join(", ", TrainBatches)} and {TestBatch})");
        IReadOnlyList<string> classes = files.TryGetValue(Meta, out var meta)
            ? System.Text.Encoding.ASCII.GetString(meta).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : DefaultClassNames;
        if (classes.Count != 10) throw new InvalidDataException($"{where}: {Meta} names {classes.Count} classes, expected 10");
        return new DatasetPair(Parse(where, "cifar10/train", TrainBatches.Select(b => (b, files[b])).ToList(), classes),
            Parse(where, "cifar10/test", [(TestBatch, files[TestBatch])], classes));
    }

    static void CheckSize(string where, string file, long length)
    {
        if (length > MaxBatchBytes)
            throw new InvalidDataException($"{where}: {file} claims {length:N0} bytes ({length / Record:N0} records), far more than a CIFAR-10 batch of 10,000");
        if (length == 0 || length % Record != 0)
            throw new InvalidDataException($"{where}: {file} holds {length:N0} bytes, not a whole number of {Record}-byte records (truncated?)");
    }

    static ImageDataset Parse(string where, string name, List<(string File, byte[] Data)> batches, IReadOnlyList<string> classes)
    {
        int total = 0;
        foreach (var (_, data) in batches) total += data.Length / Record;
        var pixels = new byte[total * (Record - 1)];
        var labels = new byte[total];
        int i = 0;
        foreach (var (file, data) in batches)
            for (int r = 0; r < data.Length / Record; r++, i++)
            {
                byte label = data[r * Record];
                if (label >= 10) throw new InvalidDataException($"{where}: {file} record {r} has label {label}, outside 0–9");
                labels[i] = label;
                data.AsSpan(r * Record + 1, Record - 1).CopyTo(pixels.AsSpan(i * (Record - 1)));
            }
        return new ImageDataset(name, pixels, labels, 3, 32, 32, classes);
    }
}
