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
                    else CheckMetaSize(where, entry.Name, entry.Length);
                    files[name] = ReadBounded(entry.DataStream, entry.Length, where, entry.Name);
                }
            }
            // TarReader reports hostile entries (sparse files, absurd long names, bad checksums) with several exception types.
            catch (Exception e) when (e is EndOfStreamException or InvalidDataException or FormatException or NotSupportedException
                or InvalidOperationException or ArgumentException or OverflowException or IOException && !e.Message.StartsWith(where, StringComparison.Ordinal))
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
                // Follow links to the final target and size that: a link to /dev/zero or a FIFO has no size of a batch.
                var info = new FileInfo(p);
                if (info.LinkTarget is not null)
                    info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? throw new InvalidDataException($"{where}: {name} is a link to something that is not a file");
                if (name != Meta) CheckSize(where, name, info.Length);
                else CheckMetaSize(where, name, info.Length);
                using var f = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read);
                files[name] = ReadBounded(f, info.Length, where, name);
            }
        }
        var missing = TrainBatches.Append(TestBatch).Where(b => !files.ContainsKey(b)).ToList();
        if (missing.Count > 0)
        {
            string message = $"{where}: missing {string.Join(", ", missing)} (CIFAR-10 needs {string.Join(", ", TrainBatches)} and {TestBatch})";
            // An archive without its batches is a bad archive (truncated, or not CIFAR-10's); a folder is merely incomplete.
            throw File.Exists(where) ? new InvalidDataException(message) : new FileNotFoundException(message);
        }
        IReadOnlyList<string> classes = files.TryGetValue(Meta, out var meta)
            ? System.Text.Encoding.ASCII.GetString(meta).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : DefaultClassNames;
        if (classes.Count != 10) throw new InvalidDataException($"{where}: {Meta} names {classes.Count} classes, expected 10");
        return new DatasetPair(Parse(where, "cifar10/train", TrainBatches.Select(b => (b, files[b])).ToList(), classes),
            Parse(where, "cifar10/test", [(TestBatch, files[TestBatch])], classes));
    }

    static void CheckMetaSize(string where, string file, long length)
    {
        if (length <= 0 || length > 1 << 16) throw new InvalidDataException($"{where}: {file} holds {length:N0} bytes, not a class list (1 B–64 KB)");
    }

    // Reads exactly the declared length, growing the buffer as bytes actually arrive: an archive that declares a huge entry
    // but holds 91 bytes costs 91 bytes, not the declaration; a source longer than declared is refused.
    static byte[] ReadBounded(Stream s, long length, string where, string file)
    {
        var buffer = new byte[Math.Min(length, 1 << 20)];
        long read = 0;
        while (read < length)
        {
            if (read == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(length, (long)buffer.Length * 2));
            int n = s.Read(buffer, (int)read, (int)Math.Min(buffer.Length - read, int.MaxValue));
            if (n == 0) throw new InvalidDataException($"{where}: {file} ends after {read:N0} of its {length:N0} bytes (truncated)");
            read += n;
        }
        return buffer;
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
