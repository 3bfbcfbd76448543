using System.IO.Compression;
using System.Security.Cryptography;

namespace Backprop.Data;

/// <summary>
/// Finds datasets on disk and, where they are missing and the machine is online, downloads them from the
/// datasets' official mirrors into a cache folder (<c>BACKPROP_DATA</c>, else <c>~/.cache/backprop</c>),
/// verifying checksums. Offline, it says so and names the folder to fill by hand.
/// </summary>
/// <param name="handler">HTTP handler for downloads (tests pass one that fails, to check the offline message).</param>
/// <param name="cacheRoot">Cache folder [default: <see cref="CacheRoot"/>].</param>
/// <param name="repositoryRoot">Where data/mnist and ../shared are looked for [default: <see cref="RepositoryRoot"/>].</param>
public sealed class DatasetStore(HttpMessageHandler? handler = null, string? cacheRoot = null, string? repositoryRoot = null)
{
    readonly string cache = cacheRoot ?? CacheRoot;
    readonly string? root = repositoryRoot ?? RepositoryRoot();

    static readonly string[] MnistMirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"];
    const string CifarUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
    const string CifarMd5 = "c32a1d4ab5d03f1284b67883e8d87530";   // of the official archive

    /// <summary>The cache root: <c>BACKPROP_DATA</c> if set, else <c>~/.cache/backprop</c>.</summary>
    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("BACKPROP_DATA") is { Length: > 0 } d ? d
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "backprop");

    /// <summary>The repository root (the folder holding Backprop.slnx) above the working or program folder, if any.</summary>
    public static string? RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Backprop.slnx"))) return d.FullName;
        return null;
    }

    /// <summary>MNIST-format data: <paramref name="dataDir"/> if given, else the repository's data/mnist, else the cache (downloading if needed).</summary>
    public DatasetPair Mnist(string? dataDir)
    {
        if (dataDir is not null) return Data.Mnist.Load(RequireFolder(dataDir), Path.GetFileName(Path.GetFullPath(dataDir).TrimEnd('/')));
        if (root is not null && Data.Mnist.IsComplete(Path.Combine(root, "data", "mnist")))
            return Data.Mnist.Load(Path.Combine(root, "data", "mnist"));
        string folder = Path.Combine(cache, "mnist");
        if (!Data.Mnist.IsComplete(folder)) DownloadMnist(folder);
        return Data.Mnist.Load(folder);
    }

    /// <summary>CIFAR-10: <paramref name="dataDir"/> if given, else ../shared/datasets/cifar10 beside the repository, else the cache (downloading if needed).</summary>
    public DatasetPair Cifar10(string? dataDir)
    {
        if (dataDir is not null)
            return Data.Cifar10.Load(File.Exists(dataDir) ? dataDir : RequireFolder(dataDir));
        if (root is not null && Data.Cifar10.Locate(Path.Combine(root, "..", "shared", "datasets", "cifar10")) is string shared)
            return Data.Cifar10.Load(shared);
        string folder = Path.Combine(cache, "cifar10");
        if (Data.Cifar10.Locate(folder) is null) DownloadCifar10(folder);
        return Data.Cifar10.Load(folder);
    }

    static string RequireFolder(string dir) =>
        Directory.Exists(dir) ? dir : throw new DirectoryNotFoundException($"--data: folder {dir} does not exist");

    void DownloadMnist(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in Data.Mnist.Files)
        {
            if (Data.Mnist.Find(folder, file) is not null) continue;
            Exception? last = null;
            foreach (var mirror in MnistMirrors)
            {
                try
                {
                    var bytes = Fetch(mirror + file + ".gz");
                    using (var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
                        Verify(file, Md5Of(gz), Data.Mnist.Md5[file]);
                    WriteAtomically(Path.Combine(folder, file + ".gz"), bytes);
                    last = null;
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidDataException) { last = e; }
            }
            if (last is not null) throw Offline("MNIST", folder, last);
        }
    }

    void DownloadCifar10(string folder)
    {
        Directory.CreateDirectory(folder);
        try
        {
            var bytes = Fetch(CifarUrl);
            Verify(Data.Cifar10.Archive, Convert.ToHexStringLower(MD5.HashData(bytes)), CifarMd5);
            WriteAtomically(Path.Combine(folder, Data.Cifar10.Archive), bytes);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidDataException)
        {
            throw Offline("CIFAR-10", folder, e);
        }
    }

    byte[] Fetch(string url)
    {
        using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.Timeout = TimeSpan.FromSeconds(30);
        return http.GetByteArrayAsync(url).GetAwaiter().GetResult();
    }

    static string Md5Of(Stream s) => Convert.ToHexStringLower(MD5.HashData(s));

    static void Verify(string file, string actual, string expected)
    {
        if (actual != expected) throw new InvalidDataException($"{file}: MD5 {actual} does not match the published {expected}");
    }

    static void WriteAtomically(string path, byte[] bytes)
    {
        string tmp = path + ".part";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    static IOException Offline(string dataset, string folder, Exception cause) => new(
        $"{dataset} is not on this machine and could not be downloaded ({cause.Message}); the machine appears to be offline. " +
        $"Put the files in {folder} or pass --data DIR.", cause);
}
