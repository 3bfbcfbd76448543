using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using Backprop.Data;

namespace Backprop.Tests;

/// <summary>Dataset readers validate before they allocate; loaders are deterministic; statistics come from training data.</summary>
public sealed class DataTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-data-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static byte[] IdxImages(int n, int rows, int cols, int? claimed = null, int magic = 0x803)
    {
        var b = new byte[16 + n * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), claimed ?? n);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), cols);
        for (int i = 16; i < b.Length; i++) b[i] = (byte)(i * 7);
        return b;
    }

    static byte[] IdxLabels(params byte[] labels)
    {
        var b = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), labels.Length);
        labels.CopyTo(b, 8);
        return b;
    }

    static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(data);
        return ms.ToArray();
    }

    string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_images_round_trip_raw_and_gzipped(bool gz)
    {
        var raw = IdxImages(3, 4, 5);
        var (pixels, n, rows, cols) = Idx.ReadImages(Write("img" + (gz ? ".gz" : ""), gz ? Gzip(raw) : raw));
        Assert.Equal((3, 4, 5), (n, rows, cols));
        Assert.Equal(raw[16..], pixels);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_rejects_a_truncated_file(bool gz)
    {
        var raw = IdxImages(3, 4, 5)[..^7];
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(Write("t" + (gz ? ".gz" : ""), gz ? Gzip(raw) : raw)));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(dir, e.Message);
    }

    [Fact]
    public void Idx_rejects_a_wrong_magic_number()
    {
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(Write("m", IdxImages(2, 2, 2, magic: 0x801))));
        Assert.Contains("magic number 0x00000801", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(Write("l", IdxImages(2, 2, 2))));
        Assert.Contains("magic", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_rejects_a_header_claiming_a_billion_images_without_allocating(bool gz)
    {
        var raw = IdxImages(2, 28, 28, claimed: 1_000_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(Write("big" + (gz ? ".gz" : ""), gz ? Gzip(raw) : raw)));
        Assert.Contains("1000000000 images", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000, "no large allocation");
        // a plausible but false count (100,000 images) is refused before its 78 MB are allocated
        raw = IdxImages(2, 28, 28, claimed: 100_000);
        before = GC.GetAllocatedBytesForCurrentThread();
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(Write("false" + (gz ? ".gz" : ""), gz ? Gzip(raw) : raw)));
        Assert.Contains("truncated", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000, "no large allocation");
    }

    [Fact]
    public void Mnist_format_folder_loads_and_names_missing_files()
    {
        Write("train-images-idx3-ubyte.gz", Gzip(IdxImages(4, 2, 3)));
        Write("train-labels-idx1-ubyte", IdxLabels(1, 0, 3, 9));
        Write("t10k-images-idx3-ubyte", IdxImages(2, 2, 3));
        var e = Assert.Throws<FileNotFoundException>(() => Mnist.Load(dir));
        Assert.Contains("t10k-labels-idx1-ubyte", e.Message);
        Write("t10k-labels-idx1-ubyte.gz", Gzip(IdxLabels(5, 6)));
        var d = Mnist.Load(dir);
        Assert.Equal(4, d.Train.Count);
        Assert.Equal([1, 0, 3, 9], d.Train.LabelsAsInts());
        Assert.Equal((1, 2, 3), (d.Test.Channels, d.Test.Height, d.Test.Width));
    }

    [Fact]
    public void Mnist_label_count_must_match_image_count()
    {
        Write("train-images-idx3-ubyte", IdxImages(4, 2, 3));
        Write("train-labels-idx1-ubyte", IdxLabels(1, 0, 3));
        Write("t10k-images-idx3-ubyte", IdxImages(1, 2, 3));
        Write("t10k-labels-idx1-ubyte", IdxLabels(5));
        var e = Assert.Throws<InvalidDataException>(() => Mnist.Load(dir));
        Assert.Contains("3 labels for 4 images", e.Message);
    }

    static byte[] CifarBatch(int records, int seed, bool badLabel = false)
    {
        var b = new byte[records * 3073];
        for (int r = 0; r < records; r++)
        {
            b[r * 3073] = (byte)(badLabel && r == 1 ? 12 : (r + seed) % 10);
            for (int i = 1; i < 3073; i++) b[r * 3073 + i] = (byte)(r * 31 + i + seed);
        }
        return b;
    }

    string CifarArchive(Func<string, byte[]> content, params string[] skip)
    {
        var path = Path.Combine(dir, "cifar-10-binary.tar.gz");
        using var f = File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        using var tar = new TarWriter(gz);
        string[] names = ["batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
        foreach (var name in names.Except(skip))
        {
            var e = new PaxTarEntry(TarEntryType.RegularFile, "cifar-10-batches-bin/" + name) { DataStream = new MemoryStream(content(name)) };
            tar.WriteEntry(e);
        }
        return path;
    }

    static byte[] DefaultCifar(string name) => name == "batches.meta.txt"
        ? System.Text.Encoding.ASCII.GetBytes(string.Join("\n", Cifar10.DefaultClassNames) + "\n\n")
        : CifarBatch(3, name.Length);

    [Fact]
    public void Cifar10_reads_the_archive_directly()
    {
        var d = Cifar10.Load(CifarArchive(DefaultCifar));
        Assert.Equal(15, d.Train.Count);
        Assert.Equal(3, d.Test.Count);
        Assert.Equal((3, 32, 32), (d.Train.Channels, d.Train.Height, d.Train.Width));
        Assert.Equal("truck", d.Train.ClassNames[9]);
        var batch1 = CifarBatch(3, "data_batch_1.bin".Length);
        Assert.Equal(batch1.AsSpan(1, 3072).ToArray(), d.Train.Pixels.AsSpan(0, 3072).ToArray());
        Assert.Equal(batch1[3073], d.Train.Labels[1]);
    }

    [Fact]
    public void Cifar10_rejects_truncated_batches_bad_labels_and_missing_files()
    {
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.Load(CifarArchive(n => n == "data_batch_3.bin" ? CifarBatch(3, 1)[..^5] : DefaultCifar(n))));
        Assert.Contains("data_batch_3.bin", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Cifar10.Load(CifarArchive(n => n == "test_batch.bin" ? CifarBatch(3, 1, badLabel: true) : DefaultCifar(n))));
        Assert.Contains("label 12", e.Message);
        var m = Assert.Throws<FileNotFoundException>(() => Cifar10.Load(CifarArchive(DefaultCifar, "data_batch_5.bin")));
        Assert.Contains("data_batch_5.bin", m.Message);
        // a cut-off archive
        var full = File.ReadAllBytes(CifarArchive(DefaultCifar));
        File.WriteAllBytes(Path.Combine(dir, "cifar-10-binary.tar.gz"), full[..(full.Length / 2)]);
        Assert.ThrowsAny<Exception>(() => Cifar10.Load(Path.Combine(dir, "cifar-10-binary.tar.gz")));
    }

    [Fact]
    public void DataLoader_is_deterministic_and_sees_every_sample_once_per_epoch()
    {
        var x = Tensor.Arange(0, 10).Reshape(10, 1);
        var y = Enumerable.Range(0, 10).ToArray();
        List<int> Epoch(DataLoader l) => l.SelectMany(b => b.Y).ToList();
        var a = new DataLoader(x, y, 3, shuffle: true, generator: new Generator(5));
        var b = new DataLoader(x, y, 3, shuffle: true, generator: new Generator(5));
        var e1 = Epoch(a);
        Assert.Equal(e1, Epoch(b));
        Assert.Equal(y, e1.Order());
        Assert.NotEqual(e1, Epoch(a));   // reshuffled next epoch
        Assert.Equal(4, a.Count);
        foreach (var (bx, by) in a) Assert.Equal(by.Select(v => (float)v), bx.ToFloatArray());   // inputs stay paired with labels
        var dropLast = new DataLoader(x, y, 3, dropLast: true);
        Assert.Equal(3, dropLast.Count);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 8], Epoch(dropLast));
    }

    [Fact]
    public void Preprocessing_statistics_come_from_the_training_split_only()
    {
        var train = new ImageDataset("t", [0, 10, 20, 30], [0, 1], 1, 1, 2, ["a", "b"]);
        var test = new ImageDataset("s", [100, 100], [0], 1, 1, 2, ["a", "b"]);
        var mean = Preprocessor.Fit(train, Normalization.MeanImage, scale01: false);
        Assert.Equal([-10f, -10, 10, 10], mean.Apply(train).ToFloatArray());
        Assert.Equal([90f, 80], mean.Apply(test).ToFloatArray());
        var scale = Preprocessor.Fit(train, Normalization.Scale);
        Assert.All(scale.Apply(test).ToFloatArray(), v => Assert.Equal(100 / 255f, v, 6));
        var channel = Preprocessor.Fit(train, Normalization.PerChannel);
        var z = channel.Apply(train).ToFloatArray();
        Assert.Equal(0, z.Average(), 5);
        Assert.Equal(1, Math.Sqrt(z.Select(v => v * v).Average()), 5);
    }

    [Fact]
    public void Repository_mnist_copy_has_the_published_label_counts()
    {
        var root = DatasetStore.RepositoryRoot() ?? throw new InvalidOperationException("tests run inside the repository");
        var d = Mnist.Load(Path.Combine(root, "data", "mnist"));
        int[] Counts(ImageDataset s) => Enumerable.Range(0, 10).Select(c => s.Labels.Count(l => l == c)).ToArray();
        Assert.Equal([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], Counts(d.Train));
        Assert.Equal([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], Counts(d.Test));
        Assert.Equal((28, 28), (d.Train.Height, d.Train.Width));
    }

    [Fact]
    public void Offline_download_says_so_and_names_the_folder_to_fill()
    {
        var store = new DatasetStore(new OfflineHandler(), cacheRoot: Path.Combine(dir, "cache"), repositoryRoot: Path.Combine(dir, "no-repo"));
        var e = Assert.Throws<IOException>(() => store.Mnist(null));
        Assert.Contains("offline", e.Message);
        Assert.Contains(Path.Combine(dir, "cache", "mnist"), e.Message);
        e = Assert.Throws<IOException>(() => store.Cifar10(null));
        Assert.Contains(Path.Combine(dir, "cache", "cifar10"), e.Message);
    }

    sealed class OfflineHandler : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) =>
            throw new HttpRequestException("no route to host");
    }
}
