using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;

namespace Peers.TorchSharp;

/// <summary>Features (row-major, n × d float32) and class labels, as plain arrays before they become tensors.</summary>
sealed record Dataset(float[] X, long[] Y, int Count, int Features, string Source);

static class Data
{
    /// <summary>MNIST training set from IDX files (big-endian int32 header, then bytes), pixels scaled to [0, 1].</summary>
    public static Dataset Mnist(string folder)
    {
        byte[] images = ReadGz(Path.Combine(folder, "train-images-idx3-ubyte.gz"));
        byte[] labels = ReadGz(Path.Combine(folder, "train-labels-idx1-ubyte.gz"));
        if (Int(images, 0) != 0x803 || Int(labels, 0) != 0x801) throw new InvalidDataException($"{folder}: not MNIST IDX files");
        int n = Int(images, 4), d = Int(images, 8) * Int(images, 12);
        if (Int(labels, 4) != n) throw new InvalidDataException($"{folder}: {n} images but {Int(labels, 4)} labels");
        var x = new float[(long)n * d];
        for (int i = 0; i < x.Length; i++) x[i] = images[16 + i] / 255f;
        var y = new long[n];
        for (int i = 0; i < n; i++) y[i] = labels[8 + i];
        return new Dataset(x, y, n, d, "mnist");
    }

    /// <summary>
    /// The classic CIFAR-10 exercise's training split: the first <paramref name="count"/> of data_batch_1..5
    /// (records of 1 label byte + 3,072 pixel bytes), raw 0–255 values minus the mean image.
    /// </summary>
    public static Dataset Cifar10(string archive, int count)
    {
        const int D = 3072, PerBatch = 10_000;
        var batches = new byte[5][];
        using (var tar = new TarReader(new GZipStream(File.OpenRead(archive), CompressionMode.Decompress)))
            while (tar.GetNextEntry() is { } e)
            {
                string name = Path.GetFileName(e.Name);
                if (e.DataStream is null || !name.StartsWith("data_batch_", StringComparison.Ordinal)) continue;
                var bytes = new byte[e.Length];
                e.DataStream.ReadExactly(bytes);
                batches[int.Parse(name.AsSpan(11, 1)) - 1] = bytes;
            }
        var x = new float[(long)count * D];
        var y = new long[count];
        var mean = new double[D];
        for (int i = 0; i < count; i++)
        {
            var batch = batches[i / PerBatch] ?? throw new InvalidDataException($"{archive}: data_batch_{i / PerBatch + 1}.bin missing");
            int at = i % PerBatch * (1 + D);
            y[i] = batch[at];
            for (int j = 0; j < D; j++) { x[(long)i * D + j] = batch[at + 1 + j]; mean[j] += batch[at + 1 + j]; }
        }
        for (int i = 0; i < count; i++)
            for (int j = 0; j < D; j++) x[(long)i * D + j] -= (float)(mean[j] / count);
        return new Dataset(x, y, count, D, "cifar10");
    }

    /// <summary>Standard-normal features and uniform labels: the shape of CIFAR-10 when the archive cannot be read.</summary>
    public static Dataset Random(int count, int features, int classes, int seed)
    {
        var rng = new Random(seed);
        var x = new float[(long)count * features];
        for (long i = 0; i < x.Length; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var y = new long[count];
        for (int i = 0; i < count; i++) y[i] = rng.Next(classes);
        return new Dataset(x, y, count, features, "random");
    }

    static int Int(byte[] b, int at) => BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(at));

    static byte[] ReadGz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }
}
