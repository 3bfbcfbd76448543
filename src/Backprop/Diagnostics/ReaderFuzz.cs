using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using Backprop.Data;
using Backprop.Serialization;

namespace Backprop.Diagnostics;

/// <summary>What fuzzing one reader found: how many cases it accepted or refused properly, and every way it failed.</summary>
public sealed record FuzzReport(string Reader, int Cases, int Accepted, int Refused, IReadOnlyDictionary<string, int> Undocumented,
    int Hangs, int OverAllocations, string? FirstFailure)
{
    public bool Clean => Undocumented.Count == 0 && Hangs == 0 && OverAllocations == 0;
}

/// <summary>
/// A reader to fuzz: how to make a valid file, how to read one, the exception types it documents, the file's name, and
/// (optionally) how to lay the mutated bytes out on disk, returning the path to read (default: the file alone).
/// </summary>
public sealed record FuzzTarget(string Name, Func<Generator, byte[]> Seed, Action<string> Load, Type[] Documented, string FileName,
    Func<string, byte[], string>? Write = null);

/// <summary>
/// Mutation fuzzing of every file reader: a valid file is made, then mutated — truncated, bits flipped, bytes set to
/// boundary values, 32- and 64-bit fields overwritten with extreme integers, chunks duplicated — and read. A reader passes
/// when every case either loads or raises its documented exception type, within a time bound and allocating at most
/// four times what the valid file justifies.
/// </summary>
public static class ReaderFuzz
{
    static readonly FuzzTarget[] targets =
    [
        new("safetensors", SafeTensorsSeed, p => SafeTensors.Load(p), [typeof(InvalidDataException)], "model.safetensors"),
        new("idx", IdxSeed, p => Idx.ReadImages(p), [typeof(InvalidDataException)], "images-idx3-ubyte"),
        new("idx-gz", g => Gzip(IdxSeed(g)), p => Idx.ReadImages(p), [typeof(InvalidDataException)], "images-idx3-ubyte.gz"),
        new("idx-labels", LabelsSeed, p => Idx.ReadLabels(p), [typeof(InvalidDataException)], "labels-idx1-ubyte"),
        new("cifar-tar", CifarSeed, p => Cifar10.Load(p), [typeof(InvalidDataException)], Cifar10.Archive),
        // Folder mode: the mutated file is one batch among valid ones.
        new("cifar-folder", g => CifarBatch(g), p => Cifar10.Load(p), [typeof(InvalidDataException)], "data_batch_1.bin", WriteCifarFolder),
    ];

    /// <summary>The library's readers; the CLI adds its own (run settings, checkpoints).</summary>
    public static IReadOnlyList<FuzzTarget> Targets => targets;

    public static IReadOnlyList<string> Readers => [.. targets.Select(t => t.Name)];

    public static FuzzReport Run(string reader, int cases, ulong seed = 1, TimeSpan? perCase = null) =>
        Run(Array.Find(targets, t => t.Name == reader) ?? throw new ArgumentException($"fuzz: unknown reader '{reader}' ({string.Join(", ", Readers)})"), cases, seed, perCase);

    public static FuzzReport Run(FuzzTarget r, int cases, ulong seed = 1, TimeSpan? perCase = null)
    {
        var reader = r.Name;
        var timeout = perCase ?? TimeSpan.FromSeconds(10);
        var g = new Generator(seed);
        string dir = Directory.CreateTempSubdirectory("backprop-fuzz-").FullName;
        var valid = r.Seed(g);
        long justified = 4L * Math.Max(valid.Length, Decompressed(valid)) + (2 << 20);
        int accepted = 0, refused = 0, hangs = 0, over = 0;
        var undocumented = new Dictionary<string, int>();
        string? first = null;
        try
        {
            for (int i = 0; i < cases; i++)
            {
                var bytes = Mutate(valid, g);
                string path;
                if (r.Write is { } write) path = write(dir, bytes);
                else File.WriteAllBytes(path = Path.Combine(dir, r.FileName), bytes);
                long allocated = 0;
                Exception? error = null;
                var task = Task.Run(() =>
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    try { r.Load(path); }
                    catch (Exception e) { error = e; }
                    allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                });
                if (!task.Wait(timeout)) { hangs++; first ??= $"case {i}: no answer within {timeout.TotalSeconds:0} s"; break; }
                if (allocated > justified) { over++; first ??= $"case {i}: allocated {allocated:N0} bytes (bound {justified:N0})"; }
                if (error is null) accepted++;
                else if (Array.Exists(r.Documented, t => t == error.GetType())) refused++;
                else
                {
                    string name = error.GetType().Name;
                    undocumented[name] = undocumented.GetValueOrDefault(name) + 1;
                    first ??= $"case {i}: {name}: {error.Message}";
                }
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
        return new FuzzReport(reader, cases, accepted, refused, undocumented, hangs, over, first);
    }

    static byte[] Mutate(byte[] valid, Generator g)
    {
        var b = (byte[])valid.Clone();
        int kinds = 1 + g.NextInt(3);
        for (int k = 0; k < kinds && b.Length > 0; k++)
        {
            switch (g.NextInt(6))
            {
                case 0: b = b[..g.NextInt(b.Length)]; break;                                                  // truncate
                case 1: b[g.NextInt(b.Length)] ^= (byte)(1 << g.NextInt(8)); break;                            // flip a bit
                case 2: b[g.NextInt(b.Length)] = (byte)new[] { 0x00, 0xFF, 0x7F, 0x80, 0x01 }[g.NextInt(5)]; break;   // boundary byte
                case 3 when b.Length >= 4:                                                                     // extreme 32-bit field
                    BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(g.NextInt(b.Length - 3)), new[] { int.MaxValue, int.MinValue, -1, 0, 1 << 30 }[g.NextInt(5)]);
                    break;
                case 4 when b.Length >= 8:                                                                     // extreme 64-bit field
                    BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(g.NextInt(b.Length - 7)), new[] { long.MaxValue, -1L, 0L, 1L << 40 }[g.NextInt(4)]);
                    break;
                default:                                                                                        // duplicate a chunk
                    int at = g.NextInt(b.Length), len = Math.Min(b.Length - at, 1 + g.NextInt(64));
                    b = [.. b[..at], .. b.AsSpan(at, len), .. b[at..]];
                    break;
            }
        }
        return b;
    }

    static long Decompressed(byte[] bytes)
    {
        if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return 0;
        using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        var sink = new MemoryStream();
        gz.CopyTo(sink);
        return sink.Length;
    }

    static byte[] SafeTensorsSeed(Generator g)
    {
        string path = Path.Combine(Path.GetTempPath(), $"backprop-fuzz-seed-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor>
            {
                ["0.weight"] = Tensor.Normal([6, 4], 0, 1, g), ["0.bias"] = Tensor.Normal([6], 0, 1, g), ["2.weight"] = Tensor.Normal([3, 6], 0, 1, g, DType.Float64),
            }, new Dictionary<string, string> { ["format"] = "pt" });
            return File.ReadAllBytes(path);
        }
        finally { File.Delete(path); }
    }

    static byte[] IdxSeed(Generator g)
    {
        const int n = 12, side = 8;
        var b = new byte[16 + n * side * side];
        BinaryPrimitives.WriteInt32BigEndian(b, Idx.ImageMagic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), n);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), side);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), side);
        for (int i = 16; i < b.Length; i++) b[i] = (byte)g.NextInt(256);
        return b;
    }

    static byte[] LabelsSeed(Generator g)
    {
        var b = new byte[8 + 40];
        BinaryPrimitives.WriteInt32BigEndian(b, Idx.LabelMagic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), 40);
        for (int i = 8; i < b.Length; i++) b[i] = (byte)g.NextInt(10);
        return b;
    }

    static byte[] CifarBatch(Generator g)
    {
        var data = new byte[2 * Cifar10.Record];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i % Cifar10.Record == 0 ? g.NextInt(10) : g.NextInt(256));
        return data;
    }

    static string WriteCifarFolder(string dir, byte[] mutated)
    {
        string folder = Path.Combine(dir, Cifar10.Folder);
        Directory.CreateDirectory(folder);
        var g = new Generator(7);
        foreach (var name in new[] { "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" })
            if (!File.Exists(Path.Combine(folder, name))) File.WriteAllBytes(Path.Combine(folder, name), CifarBatch(g));
        File.WriteAllBytes(Path.Combine(folder, "data_batch_1.bin"), mutated);
        return folder;
    }

    static byte[] Gzip(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return ms.ToArray();
    }

    static byte[] CifarSeed(Generator g)
    {
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var name in new[] { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" })
            {
                var data = new byte[2 * Cifar10.Record];
                for (int i = 0; i < data.Length; i++) data[i] = (byte)(i % Cifar10.Record == 0 ? g.NextInt(10) : g.NextInt(256));
                w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, $"{Cifar10.Folder}/{name}") { DataStream = new MemoryStream(data) });
            }
            var meta = System.Text.Encoding.ASCII.GetBytes(string.Join("\n", Cifar10.DefaultClassNames) + "\n");
            w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, $"{Cifar10.Folder}/batches.meta.txt") { DataStream = new MemoryStream(meta) });
        }
        return Gzip(tar.ToArray());
    }
}
