using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Backprop.Data;

namespace Backprop.Tests;

/// <summary>Hostile CIFAR-10 archives and folders: one InvalidDataException naming the file, no crash, no hang, no big allocation.</summary>
public class CifarHostileTests
{
    const int Record = 3073;

    // A raw ustar header block: name, octal size, type flag, and its checksum.
    static byte[] TarHeader(string name, long size, char type)
    {
        var h = new byte[512];
        void Put(int at, string s) => Encoding.ASCII.GetBytes(s).CopyTo(h, at);
        Put(0, name);
        Put(100, "0000644\0"); Put(108, "0000000\0"); Put(116, "0000000\0");
        Put(124, Convert.ToString(size, 8).PadLeft(11, '0') + "\0");
        Put(136, "00000000000\0");
        h[156] = (byte)type;
        Put(257, "ustar\0"); Put(263, "00");
        Put(148, "        ");
        int sum = h.Sum(b => b);
        Put(148, Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ");
        return h;
    }

    static string Archive(params byte[][] blocks)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("bp-cifar-").FullName, Cifar10.Archive);
        using (var f = File.Create(path))
        using (var gz = new GZipStream(f, CompressionLevel.Fastest))
            foreach (var b in blocks) gz.Write(b);
        return path;
    }

    [Fact]
    public void A_sparse_entry_is_refused_with_InvalidDataException() =>
        Assert.Throws<InvalidDataException>(() => Cifar10.Load(Archive(TarHeader("cifar-10-batches-bin/data_batch_1.bin", Record, 'S'), new byte[1024])));

    [Fact]
    public void A_long_name_entry_with_an_absurd_size_is_refused_with_InvalidDataException() =>
        Assert.Throws<InvalidDataException>(() => Cifar10.Load(Archive(TarHeader("././@LongLink", 1L << 32, 'L'), new byte[1024])));

    [Fact]
    public void A_tiny_archive_declaring_a_large_batch_is_refused_without_allocating_the_declaration()
    {
        string path = Archive(TarHeader("cifar-10-batches-bin/data_batch_1.bin", 10_000L * Record, '0'));
        Assert.True(new FileInfo(path).Length < 200);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.Load(path));
        Assert.Contains("data_batch_1.bin", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8_000_000, "the declared size was allocated");
    }

    static string Folder()
    {
        string dir = Path.Combine(Directory.CreateTempSubdirectory("bp-cifar-dir-").FullName, Cifar10.Folder);
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" })
            File.WriteAllBytes(Path.Combine(dir, name), new byte[Record]);
        return dir;
    }

    [Fact]
    public void A_batch_that_links_to_dev_zero_is_refused()
    {
        string dir = Folder();
        File.Delete(Path.Combine(dir, "data_batch_1.bin"));
        File.CreateSymbolicLink(Path.Combine(dir, "data_batch_1.bin"), "/dev/zero");
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.Load(dir));
        Assert.Contains("data_batch_1.bin", e.Message);
    }

    [Fact]
    public async Task A_fifo_named_like_the_class_list_is_refused_without_blocking()
    {
        string dir = Folder();
        using (var mk = Process.Start("mkfifo", [Path.Combine(dir, "batches.meta.txt")])) await mk.WaitForExitAsync();
        var load = Task.Run(() => Cifar10.Load(dir));
        var finished = await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.Same(load, finished);
        await Assert.ThrowsAsync<InvalidDataException>(() => load);
    }

    [Fact]
    public void A_valid_tiny_folder_still_loads()
    {
        var pair = Cifar10.Load(Folder());
        Assert.Equal(5, pair.Train.Count);
        Assert.Equal(1, pair.Test.Count);
    }
}

/// <summary>A gzip IDX file of zeros allocates its payload once, not three times over by buffer doubling.</summary>
public class IdxAllocationTests
{
    [Fact]
    public void A_zero_filled_gzip_payload_is_read_into_one_buffer_of_its_size()
    {
        const int n = 2000, side = 28;
        var raw = new byte[16 + n * side * side];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(raw, Idx.ImageMagic);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(4), n);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(8), side);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(12), side);
        string path = Path.Combine(Directory.CreateTempSubdirectory("bp-idx-").FullName, "zeros-idx3-ubyte.gz");
        using (var f = File.Create(path))
        using (var gz = new GZipStream(f, CompressionLevel.Optimal)) gz.Write(raw);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (pixels, count, _, _) = Idx.ReadImages(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(n, count);
        Assert.True(allocated < 1.3 * pixels.Length + 200_000, $"{allocated:N0} bytes allocated for a {pixels.Length:N0}-byte payload");
    }
}

/// <summary>The fuzz suite that stays: a few hundred mutated files per reader in every CI run (<c>backprop fuzz</c> runs thousands).</summary>
public class ReaderFuzzTests
{
    public static TheoryData<string> ReaderNames() => new(Cli.FuzzCommand.Targets.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(ReaderNames))]
    public void Three_hundred_mutations_per_reader_load_or_raise_the_documented_error_in_time_and_bounded_memory(string reader)
    {
        var report = Diagnostics.ReaderFuzz.Run(Cli.FuzzCommand.Targets.Single(t => t.Name == reader), 300, seed: 20261130);
        Assert.True(report.Clean, $"{reader}: {report.FirstFailure}");
        Assert.True(report.Refused > 0);
    }
}
