using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using Backprop.Data;

namespace Backprop.Tests;

/// <summary>Dataset readers, splits, preprocessing, the data loader and dataset resolution, on small files the tests write.</summary>
public sealed class DataTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("backprop-data-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    // Allocation budget for a rejected file: far below what a lying header would cost.
    const long SmallAllocation = 8 << 20;

    static byte[] IdxImages(int n, int rows, int cols, byte[]? pixels = null, int magic = Idx.ImageMagic, int? claimed = null)
    {
        pixels ??= new byte[n * rows * cols];
        var b = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), claimed ?? n);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), cols);
        pixels.CopyTo(b, 16);
        return b;
    }

    static byte[] IdxLabels(byte[] labels, int magic = Idx.LabelMagic, int? claimed = null)
    {
        var b = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), claimed ?? labels.Length);
        labels.CopyTo(b, 8);
        return b;
    }

    static byte[] Gzip(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return ms.ToArray();
    }

    string Write(string name, byte[] bytes)
    {
        string p = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    static byte[] Random(int n, int seed, int max = 256)
    {
        var g = new Generator((ulong)seed);
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)g.NextInt(max);
        return b;
    }

    static T Rejects<T>(Action read, params string[] mentions) where T : Exception
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<T>(read);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < SmallAllocation, $"rejecting allocated {allocated:N0} bytes: {e.Message}");
        foreach (var m in mentions) Assert.Contains(m, e.Message);
        return e;
    }

    // ---------- IDX ----------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_images_and_labels_round_trip_raw_and_gzipped(bool gz)
    {
        var pixels = Random(7 * 5 * 3, 1);
        var labels = Random(7, 2, 10);
        string images = Write("img" + (gz ? ".gz" : ""), gz ? Gzip(IdxImages(7, 5, 3, pixels)) : IdxImages(7, 5, 3, pixels));
        string lab = Write("lab" + (gz ? ".gz" : ""), gz ? Gzip(IdxLabels(labels)) : IdxLabels(labels));
        var (p, n, rows, cols) = Idx.ReadImages(images);
        Assert.Equal((7, 5, 3), (n, rows, cols));
        Assert.Equal(pixels, p);
        Assert.Equal(labels, Idx.ReadLabels(lab));
    }

    [Fact]
    public void Gzip_is_detected_by_magic_bytes_not_by_name()
    {
        var labels = Random(11, 3, 10);
        Assert.Equal(labels, Idx.ReadLabels(Write("labels-without-extension", Gzip(IdxLabels(labels)))));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(Write("plain.gz", IdxLabels(labels))), "plain.gz", "gzip magic");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_rejects_truncated_files(bool gz)
    {
        var full = IdxImages(4, 6, 6, Random(144, 4));
        byte[] Pack(byte[] raw) => gz ? Gzip(raw) : raw;
        string p = Write("short-images", Pack(full[..^10]));
        Rejects<InvalidDataException>(() => Idx.ReadImages(p), "short-images", "truncated");
        string h = Write("short-header", Pack(full[..9]));
        Rejects<InvalidDataException>(() => Idx.ReadImages(h), "short-header", "truncated", "16-byte header");
        string l = Write("short-labels", Pack(IdxLabels(new byte[20])[..20]));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(l), "short-labels", "truncated");
    }

    [Fact]
    public void Idx_rejects_a_truncated_gzip_stream()
    {
        var gz = Gzip(IdxImages(50, 28, 28, Random(50 * 784, 5)));
        string p = Write("cut.gz", gz[..(gz.Length / 2)]);
        Rejects<InvalidDataException>(() => Idx.ReadImages(p), "cut.gz");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_rejects_wrong_magic_numbers(bool gz)
    {
        byte[] Pack(byte[] raw) => gz ? Gzip(raw) : raw;
        string labelsAsImages = Write("a", Pack(IdxLabels(new byte[3])));
        Rejects<InvalidDataException>(() => Idx.ReadImages(labelsAsImages), "0x00000801", "0x00000803", "labels file");
        string imagesAsLabels = Write("b", Pack(IdxImages(1, 2, 2)));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(imagesAsLabels), "0x00000803", "0x00000801");
        string junk = Write("c", Pack(IdxImages(1, 2, 2, magic: 0x12345678)));
        Rejects<InvalidDataException>(() => Idx.ReadImages(junk), "magic number 0x12345678");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_header_claiming_a_billion_items_fails_without_a_huge_allocation(bool gz)
    {
        byte[] Pack(byte[] raw) => gz ? Gzip(raw) : raw;
        string images = Write("huge-images", Pack(IdxImages(2, 28, 28, claimed: 1_000_000_000)));
        Rejects<InvalidDataException>(() => Idx.ReadImages(images), "huge-images", "1,000,000,000 images");
        // 10⁹ one-byte labels fit in one array, so only validation against the data stops a 1 GB allocation.
        string labels = Write("huge-labels", Pack(IdxLabels(new byte[100], claimed: 1_000_000_000)));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(labels), "huge-labels", "1,000,000,000 labels", "truncated");
    }

    [Fact]
    public void Gzipped_claim_the_compressed_size_could_hold_still_allocates_only_what_arrives()
    {
        // 1 MB of incompressible labels could plausibly inflate to 500 MB, so only reading in bounded, growing
        // chunks keeps a lying header from costing 500 MB.
        string p = Write("liar.gz", Gzip(IdxLabels(Random(1 << 20, 6), claimed: 500_000_000)));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(p), "liar.gz", "truncated", "500,000,000 labels", "ends after 1,048,576");
    }

    [Fact]
    public void Idx_rejects_trailing_data()
    {
        var raw = IdxLabels(new byte[5]);
        string p = Write("long", [.. raw, 1, 2, 3]);
        Rejects<InvalidDataException>(() => Idx.ReadLabels(p), "3 bytes too many");
        string g = Write("long.gz", Gzip([.. raw, 1, 2, 3]));
        Rejects<InvalidDataException>(() => Idx.ReadLabels(g), "more data follows");
    }

    // ---------- MNIST-format folders ----------

    string MnistFolder(string name, int train, int test, bool gz, Func<int, byte[]>? trainLabels = null, int? testLabelCount = null)
    {
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        void Put(string file, byte[] raw) => File.WriteAllBytes(Path.Combine(folder, file + (gz ? ".gz" : "")), gz ? Gzip(raw) : raw);
        Put("train-images-idx3-ubyte", IdxImages(train, 4, 4, Random(train * 16, 10)));
        Put("train-labels-idx1-ubyte", IdxLabels(trainLabels?.Invoke(train) ?? Random(train, 11, 10)));
        Put("t10k-images-idx3-ubyte", IdxImages(test, 4, 4, Random(test * 16, 12)));
        Put("t10k-labels-idx1-ubyte", IdxLabels(Random(testLabelCount ?? test, 13, 10)));
        return folder;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Mnist_format_folder_loads_as_a_train_test_pair(bool gz)
    {
        var data = Mnist.Load(MnistFolder("fashion", 30, 8, gz), "fashion");
        Assert.Equal(("fashion/train", 30, 1, 4, 4), (data.Train.Name, data.Train.Count, data.Train.Channels, data.Train.Height, data.Train.Width));
        Assert.Equal(8, data.Test.Count);
        Assert.Equal(Random(30 * 16, 10), data.Train.Pixels);
        Assert.Equal(Random(30, 11, 10), data.Train.Labels);
        Assert.Equal(Random(8, 13, 10), data.Test.Labels);
    }

    [Fact]
    public void Mnist_missing_files_are_listed_with_where_they_were_looked_for()
    {
        string folder = MnistFolder("partial", 3, 3, gz: true);
        File.Delete(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"));
        File.Delete(Path.Combine(folder, "train-images-idx3-ubyte.gz"));
        var e = Assert.Throws<FileNotFoundException>(() => Mnist.Load(folder));
        Assert.Contains(folder, e.Message);
        Assert.Contains("train-images-idx3-ubyte, t10k-labels-idx1-ubyte", e.Message);
        Assert.Contains("train-images-idx3-ubyte.gz", e.Message);
    }

    [Fact]
    public void Mnist_rejects_label_count_mismatch_and_labels_out_of_range()
    {
        var e = Rejects<InvalidDataException>(() => Mnist.Load(MnistFolder("mismatch", 5, 4, gz: false, testLabelCount: 3)), "3 labels for 4 images");
        Assert.Contains("t10k-labels-idx1-ubyte", e.Message);
        Rejects<InvalidDataException>(() => Mnist.Load(MnistFolder("range", 5, 4, gz: true, trainLabels: n => [1, 2, 10, 3, 4])),
            "train-labels-idx1-ubyte.gz", "label 10 at index 2", "10 classes");
    }

    [Fact]
    public void Real_mnist_has_the_published_label_counts()
    {
        // data/mnist ships with the repository, so this runs on every clone.
        string root = DatasetStore.RepositoryRoot() ?? throw new InvalidOperationException("no Backprop.slnx above the test folder");
        string folder = Path.Combine(root, "data", "mnist");
        Assert.True(Mnist.IsComplete(folder), $"{folder} should hold the four MNIST files");
        var data = Mnist.Load(folder);
        Assert.Equal([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], data.Train.ClassCounts());
        Assert.Equal([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], data.Test.ClassCounts());
        Assert.Equal((60000, 28, 28), (data.Train.Count, data.Train.Height, data.Train.Width));
        var splits = DatasetSplits.Mnist(data);
        Assert.Equal((55000, 5000, 10000), (splits.Train.Count, splits.Validation.Count, splits.Test.Count));
        Assert.Equal(data.Train.Labels[55000..], splits.Validation.Labels);
    }

    // ---------- CIFAR-10 ----------

    static (byte[] Batch, byte[] Labels, byte[] Pixels) CifarBatch(int records, int seed)
    {
        var labels = Random(records, seed, 10);
        var pixels = Random(records * 3072, seed + 100);
        var b = new byte[records * Cifar10.Record];
        for (int r = 0; r < records; r++)
        {
            b[r * Cifar10.Record] = labels[r];
            pixels.AsSpan(r * 3072, 3072).CopyTo(b.AsSpan(r * Cifar10.Record + 1));
        }
        return (b, labels, pixels);
    }

    static readonly string[] Batches = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
    const string Meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

    /// <summary>A small cifar-10-binary.tar.gz (batches of 3 records, test of 2) in the official layout, entries in shuffled order.</summary>
    static byte[] CifarTarGz(Func<string, byte[], byte[]>? edit = null, string? skip = null)
    {
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            w.WriteEntry(new UstarTarEntry(TarEntryType.Directory, "cifar-10-batches-bin/"));
            foreach (var name in new[] { "data_batch_4.bin", "batches.meta.txt", "data_batch_1.bin", "test_batch.bin", "data_batch_2.bin", "data_batch_5.bin", "data_batch_3.bin" })
            {
                if (name == skip) continue;
                byte[] content = name == "batches.meta.txt" ? System.Text.Encoding.ASCII.GetBytes(Meta)
                    : CifarBatch(name == "test_batch.bin" ? 2 : 3, Array.IndexOf(Batches, name)).Batch;
                content = edit?.Invoke(name, content) ?? content;
                w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "cifar-10-batches-bin/" + name) { DataStream = new MemoryStream(content) });
            }
        }
        return Gzip(tar.ToArray());
    }

    static void AssertTinyCifar(DatasetPair data)
    {
        Assert.Equal(15, data.Train.Count);
        Assert.Equal(2, data.Test.Count);
        Assert.Equal((3, 32, 32), (data.Train.Channels, data.Train.Height, data.Train.Width));
        Assert.Equal(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"], data.Train.ClassNames);
        for (int b = 0; b < 5; b++)
        {
            var (_, labels, pixels) = CifarBatch(3, b);
            Assert.Equal(labels, data.Train.Labels[(b * 3)..(b * 3 + 3)]);
            Assert.Equal(pixels, data.Train.Pixels[(b * 3 * 3072)..((b + 1) * 3 * 3072)]);
        }
        var test = CifarBatch(2, 5);
        Assert.Equal(test.Labels, data.Test.Labels);
        Assert.Equal(test.Pixels, data.Test.Pixels);
    }

    [Fact]
    public void Cifar10_tar_gz_is_read_directly_in_batch_order()
    {
        string p = Write("cifar-10-binary.tar.gz", CifarTarGz());
        AssertTinyCifar(Cifar10.Load(p));
        AssertTinyCifar(Cifar10.Load(dir));   // a folder holding the archive
    }

    [Fact]
    public void Cifar10_unpacked_folder_loads_from_itself_or_its_parent()
    {
        using (var gz = new GZipStream(new MemoryStream(CifarTarGz()), CompressionMode.Decompress))
            TarFile.ExtractToDirectory(gz, dir, overwriteFiles: false);
        AssertTinyCifar(Cifar10.Load(Path.Combine(dir, "cifar-10-batches-bin")));
        AssertTinyCifar(Cifar10.Load(dir));
    }

    [Fact]
    public void Cifar10_rejects_truncated_archives_and_batches()
    {
        var gz = CifarTarGz();
        string cut = Write("cut.tar.gz", gz[..(gz.Length * 2 / 3)]);
        Rejects<InvalidDataException>(() => Cifar10.Load(cut), "cut.tar.gz");
        string shortBatch = Write("short/cifar-10-binary.tar.gz", CifarTarGz((name, b) => name == "data_batch_3.bin" ? b[..^100] : b));
        Rejects<InvalidDataException>(() => Cifar10.Load(shortBatch), "data_batch_3.bin", "not a whole number of 3073-byte records");
    }

    [Fact]
    public void Cifar10_rejects_a_file_that_is_not_a_gzipped_tar()
    {
        string p = Write("fake/cifar-10-binary.tar.gz", IdxLabels(new byte[100]));
        Rejects<InvalidDataException>(() => Cifar10.Load(p), "fake", "not a readable cifar-10-binary.tar.gz");
    }

    [Fact]
    public void Cifar10_rejects_labels_out_of_range_and_names_missing_batches()
    {
        string bad = Write("bad/cifar-10-binary.tar.gz", CifarTarGz((name, b) => { if (name == "test_batch.bin") b[Cifar10.Record] = 10; return b; }));
        Rejects<InvalidDataException>(() => Cifar10.Load(bad), "test_batch.bin record 1 has label 10");
        string missing = Write("missing/cifar-10-binary.tar.gz", CifarTarGz(skip: "data_batch_4.bin"));
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.Load(missing));   // an archive without its batches is a bad archive
        Assert.Contains("missing data_batch_4.bin", e.Message);
        var none = Assert.Throws<FileNotFoundException>(() => Cifar10.Load(Path.Combine(dir, "nowhere")));
        Assert.Contains("cifar-10-binary.tar.gz", none.Message);
    }

    [Fact]
    public void Cifar10_tar_header_claiming_a_billion_records_fails_without_a_huge_allocation()
    {
        // Patch the first batch entry's size field (GNU base-256: 0x80 then big-endian) to 10⁹ records and fix the checksum.
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Gnu, leaveOpen: true))
            w.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, "cifar-10-batches-bin/data_batch_1.bin") { DataStream = new MemoryStream(CifarBatch(1, 0).Batch) });
        var t = tar.ToArray();
        var size = t.AsSpan(124, 12);
        size.Clear();
        size[0] = 0x80;
        BinaryPrimitives.WriteInt64BigEndian(size[4..], 1_000_000_000L * Cifar10.Record);
        t.AsSpan(148, 8).Fill((byte)' ');
        int sum = 0;
        foreach (byte b in t.AsSpan(0, 512)) sum += b;
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(t, 148);
        string p = Write("huge/cifar-10-binary.tar.gz", Gzip(t));
        Rejects<InvalidDataException>(() => Cifar10.Load(p), "data_batch_1.bin", "1,000,000,000 records");
    }

    [Fact]
    public void Cifar10_classic_split_is_49000_1000_1000_in_file_order()
    {
        var train = new ImageDataset("t", new byte[50_000 * 3], Random(50_000, 20, 10), 3, 1, 1, Cifar10.DefaultClassNames);
        var test = new ImageDataset("s", new byte[10_000 * 3], Random(10_000, 21, 10), 3, 1, 1, Cifar10.DefaultClassNames);
        var s = DatasetSplits.Cifar10(new DatasetPair(train, test));
        Assert.Equal((49_000, 1_000, 1_000), (s.Train.Count, s.Validation.Count, s.Test.Count));
        Assert.Equal(train.Labels[49_000..], s.Validation.Labels);
        Assert.Equal(test.Labels[..1_000], s.Test.Labels);
    }

    // ---------- preprocessing ----------

    static ImageDataset Images(string name, byte[] pixels, int channels, int side) =>
        new(name, pixels, new byte[pixels.Length / (channels * side * side)], channels, side, side, ["only"]);

    [Fact]
    public void Scale_maps_bytes_to_0_1_and_keeps_the_nchw_shape_when_asked()
    {
        var d = Images("d", [0, 51, 255, 128, 1, 2, 3, 4], 2, 1);
        var p = Preprocessor.Fit(d, Normalization.Scale);
        var x = p.Apply(d, DType.Float64);
        Assert.Equal([4, 2], x.Shape.ToArray());
        Assert.Equal([0, 0.2, 1, 128 / 255.0], x.ToDoubleArray()[..4], new Tolerance(1e-7));
        Assert.Equal([4, 2, 1, 1], p.Apply(d, flatten: false).Shape.ToArray());
    }

    [Fact]
    public void Mean_image_comes_from_the_training_split_only()
    {
        var train = Images("train", [10, 20, 30, 40, 50, 60], 1, 1);       // 6 images, mean 35
        var test = Images("test", [200, 250], 1, 1);
        var p = Preprocessor.Fit(train, Normalization.MeanImage, scale01: false);
        Assert.Equal([165, 215], p.Apply(test).ToDoubleArray());
        Assert.Equal([-25, -15, -5, 5, 15, 25], p.Apply(train).ToDoubleArray());
        Assert.Equal([35f], p.Mean());

        var t2 = Images("t2", Random(40 * 3 * 4, 30), 3, 2);
        var v2 = Images("v2", Random(9 * 3 * 4, 31), 3, 2);
        var p2 = Preprocessor.Fit(t2, Normalization.MeanImage);
        var xt = p2.Apply(t2, DType.Float64).ToDoubleArray();
        var xv = p2.Apply(v2, DType.Float64).ToDoubleArray();
        for (int j = 0; j < 12; j++)
        {
            double mean = 0;
            for (int i = 0; i < 40; i++) mean += t2.Pixels[i * 12 + j] / 255.0 / 40;
            double colSum = 0;
            for (int i = 0; i < 40; i++) colSum += xt[i * 12 + j];
            Assert.True(Math.Abs(colSum) < 1e-4, $"training column {j} sums to {colSum}");
            for (int i = 0; i < 9; i++) Close(v2.Pixels[i * 12 + j] / 255.0 - mean, xv[i * 12 + j], 1e-6, $"val[{i},{j}]");
        }
    }

    [Fact]
    public void Per_channel_normalisation_uses_training_mean_and_std()
    {
        var train = Images("train", Random(50 * 3 * 9, 40), 3, 3);
        var other = Images("other", Random(7 * 3 * 9, 41), 3, 3);
        var p = Preprocessor.Fit(train, Normalization.PerChannel);
        var xt = p.Apply(train, DType.Float64).ToDoubleArray();
        var xo = p.Apply(other, DType.Float64).ToDoubleArray();
        for (int c = 0; c < 3; c++)
        {
            double s = 0, s2 = 0, n = 50 * 9;
            for (int i = 0; i < 50; i++) for (int k = 0; k < 9; k++) { double v = train.Pixels[i * 27 + c * 9 + k]; s += v; s2 += v * v; }
            double mean = s / n, std = Math.Sqrt(s2 / n - mean * mean);
            double m = 0, m2 = 0;
            for (int i = 0; i < 50; i++) for (int k = 0; k < 9; k++) { double v = xt[i * 27 + c * 9 + k]; m += v / n; m2 += v * v / n; }
            Close(0, m, 1e-5, $"channel {c} mean");
            Close(1, m2, 1e-5, $"channel {c} variance");
            for (int i = 0; i < 7; i++) for (int k = 0; k < 9; k++)
                Close((other.Pixels[i * 27 + c * 9 + k] - mean) / std, xo[i * 27 + c * 9 + k], 1e-5, "other split");
        }
    }

    static void Close(double expected, double actual, double tol, string what) => Helpers.Close(expected, actual, tol, what);

    sealed class Tolerance(double tol) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(double v) => 0;
    }

    // ---------- DataLoader ----------

    static (Tensor X, int[] Y) Numbered(int n)
    {
        var x = new float[n * 2];
        var y = new int[n];
        for (int i = 0; i < n; i++) { x[2 * i] = i; x[2 * i + 1] = -i; y[i] = i; }
        return (Tensor.From(x, [n, 2]), y);
    }

    static List<int[]> Epoch(DataLoader loader)
    {
        var epoch = new List<int[]>();
        foreach (var (x, y) in loader)
        {
            var v = x.ToFloatArray();
            for (int i = 0; i < y.Length; i++) Assert.Equal((float)y[i], v[2 * i]);   // inputs travel with their labels
            epoch.Add(y);
        }
        return epoch;
    }

    [Fact]
    public void Same_seed_gives_the_same_batches_and_each_epoch_reshuffles()
    {
        var (x, y) = Numbered(103);
        var a = new DataLoader(x, y, 10, shuffle: true, generator: new Generator(7));
        var b = new DataLoader(x, y, 10, shuffle: true, generator: new Generator(7));
        var a1 = Epoch(a); var a2 = Epoch(a);
        Assert.Equal(a1, Epoch(b));
        Assert.Equal(a2, Epoch(b));
        Assert.NotEqual(a1.SelectMany(v => v), a2.SelectMany(v => v));
        Assert.NotEqual(a1, Epoch(new DataLoader(x, y, 10, shuffle: true, generator: new Generator(8))));
    }

    [Fact]
    public void Every_sample_is_seen_once_per_epoch()
    {
        var (x, y) = Numbered(103);
        var loader = new DataLoader(x, y, 10, shuffle: true, generator: new Generator(1));
        for (int e = 0; e < 3; e++)
        {
            var batches = Epoch(loader);
            Assert.Equal(11, batches.Count);
            Assert.Equal(3, batches[^1].Length);
            Assert.Equal(Enumerable.Range(0, 103), batches.SelectMany(v => v).Order());
        }
    }

    [Fact]
    public void Drop_last_skips_the_incomplete_batch()
    {
        var (x, y) = Numbered(103);
        var loader = new DataLoader(x, y, 10, shuffle: true, generator: new Generator(2), dropLast: true);
        Assert.Equal(10, loader.Count);
        var batches = Epoch(loader);
        Assert.Equal(10, batches.Count);
        Assert.All(batches, b => Assert.Equal(10, b.Length));
        Assert.Equal(100, batches.SelectMany(v => v).Distinct().Count());
    }

    [Fact]
    public void Without_shuffle_batches_follow_dataset_order_in_float64()
    {
        var (x, y) = Numbered(5);
        var batches = new DataLoader(x.To(DType.Float64), y, 2).ToList();
        Assert.Equal([[0, 1], [2, 3], [4]], batches.Select(b => b.Y));
        Assert.Equal(DType.Float64, batches[0].X.DType);
        Assert.Equal([2, 2], batches[0].X.Shape.ToArray());
        Assert.Throws<ArgumentException>(() => new DataLoader(x, y, 2, shuffle: true));
    }

    // ---------- resolution and download ----------

    sealed class FakeHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        public List<string> Requests { get; } = [];
        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken ct)
        {
            Requests.Add(request.RequestUri!.ToString());
            return respond(request);
        }
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => Task.FromResult(Send(request, ct));
    }

    static FakeHandler Offline() =>
        new(_ => throw new HttpRequestException("Name or service not known (ossci-datasets.s3.amazonaws.com:443)", new SocketException((int)SocketError.HostNotFound)));

    [Fact]
    public void Offline_mnist_download_says_so_and_names_the_folder_to_fill()
    {
        var offline = Offline();
        string cache = Path.Combine(dir, "cache", "mnist");
        var e = Assert.Throws<IOException>(() => new DatasetStore(offline, Path.Combine(dir, "cache")).EnsureMnist(cache));
        Assert.Contains("appears to be offline", e.Message);
        Assert.Contains(cache, e.Message);
        Assert.Contains("train-images-idx3-ubyte.gz", e.Message);
        Assert.Contains("--data", e.Message);
        Assert.Equal(2, offline.Requests.Count);   // both mirrors tried for the first file, then it gives up
        Assert.True(!Directory.Exists(cache) || Directory.GetFiles(cache).Length == 0, "nothing half-downloaded is left behind");
    }

    [Fact]
    public void Offline_cifar10_download_says_so_and_names_the_folder_to_fill()
    {
        string cache = Path.Combine(dir, "cache", "cifar10");
        var e = Assert.Throws<IOException>(() => new DatasetStore(Offline()).EnsureCifar10(cache));
        Assert.Contains("appears to be offline", e.Message);
        Assert.Contains(cache, e.Message);
        Assert.Contains("cifar-10-binary.tar.gz", e.Message);
        Assert.Empty(Directory.GetFiles(cache));
    }

    // A body that sends a few bytes and then nothing: the download must give up after the idle timeout, not hang.
    sealed class StallingStream : Stream
    {
        int sent;
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken token = default)
        {
            if (sent++ == 0) { buffer.Span[0] = 0x1F; return 1; }
            await Task.Delay(Timeout.Infinite, token);
            return 0;
        }
        public override bool CanRead => true; public override bool CanSeek => false; public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException(); public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override void Flush() { } public override long Seek(long o, SeekOrigin s) => throw new NotSupportedException();
        public override void SetLength(long v) => throw new NotSupportedException(); public override void Write(byte[] b, int o, int c) => throw new NotSupportedException();
    }

    [Fact]
    public void A_download_whose_body_stalls_fails_after_the_idle_timeout()
    {
        var stalling = new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(new StallingStream()) });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<IOException>(() => new DatasetStore(stalling) { Timeout = TimeSpan.FromMilliseconds(300) }.EnsureMnist(Path.Combine(dir, "stall")));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Contains("no data", e.InnerException?.Message ?? e.Message);
    }

    [Fact]
    public void A_download_larger_than_the_dataset_is_cut_off()
    {
        var huge = new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(new byte[25_000_000]) });
        var e = Assert.Throws<IOException>(() => new DatasetStore(huge).EnsureMnist(Path.Combine(dir, "huge")));
        Assert.Contains("more than the dataset", e.InnerException?.Message ?? e.Message);
    }

    [Fact]
    public void Downloads_are_kept_only_when_the_md5_matches()
    {
        // A fake mirror serving the repository's MNIST: verified, written to the cache, loadable.
        string repo = Path.Combine(DatasetStore.RepositoryRoot()!, "data", "mnist");
        var mirror = new FakeHandler(r => new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = new ByteArrayContent(File.ReadAllBytes(Path.Combine(repo, Path.GetFileName(r.RequestUri!.LocalPath)))),
        });
        string good = new DatasetStore(mirror).EnsureMnist(Path.Combine(dir, "good"));
        Assert.Equal(4, mirror.Requests.Count);
        Assert.Equal(10_000, Mnist.Load(good).Test.Count);

        // A mirror serving well-formed but wrong files: refused with the MD5 named, nothing kept.
        var wrong = new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(Gzip(IdxLabels(new byte[3]))) });
        string bad = Path.Combine(dir, "bad");
        var e = Assert.Throws<IOException>(() => new DatasetStore(wrong).EnsureMnist(bad));
        Assert.Contains("download failed", e.Message);
        Assert.Contains("not the published 6bbc9ace898e44ae57da46a324031adb", e.Message);
        Assert.Empty(Directory.Exists(bad) ? Directory.GetFiles(bad) : []);

        var notFound = new FakeHandler(_ => new HttpResponseMessage(HttpStatusCode.NotFound));
        var c = Assert.Throws<IOException>(() => new DatasetStore(notFound).EnsureCifar10(Path.Combine(dir, "c")));
        Assert.Contains("404", c.Message);
        Assert.DoesNotContain("offline", c.Message);
    }

    [Fact]
    public void Explicit_data_folder_must_exist()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => new DatasetStore(Offline()).Mnist(Path.Combine(dir, "absent")));
        Assert.Contains(Path.Combine(dir, "absent"), e.Message);
    }
}
