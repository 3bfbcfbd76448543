using System.IO.Compression;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Backprop.Data;

/// <summary>
/// Finds datasets on disk and, where they are missing, downloads them from the datasets' official mirrors into
/// a cache folder (<c>BACKPROP_DATA</c>, else <c>~/.cache/backprop</c>), verifying MD5s before anything is kept.
/// Offline, it says so and names the folder to fill by hand. The HTTP handler and cache root are injectable so
/// tests never touch the network or the user's cache.
/// </summary>
public sealed class DatasetStore(HttpMessageHandler? handler = null, string? cacheRoot = null)
{
    static readonly string[] MnistMirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"];
    static readonly string[] CifarUrls = ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"];
    const string CifarMd5 = "c32a1d4ab5d03f1284b67883e8d87530";   // of the official archive

    /// <summary>How long to wait for a mirror to answer (connect and headers); the body may take longer.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The cache root: the constructor's, else <c>BACKPROP_DATA</c> if set, else <c>~/.cache/backprop</c>.</summary>
    public string CacheRoot => cacheRoot ?? DefaultCacheRoot;

    public static string DefaultCacheRoot =>
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

    /// <summary>
    /// MNIST-format data: <paramref name="dataDir"/> if given (any MNIST-format folder, named after it), else the
    /// repository's data/mnist, else <c>&lt;cache&gt;/mnist</c>, downloading the missing files there.
    /// </summary>
    public DatasetPair Mnist(string? dataDir = null)
    {
        if (dataDir is not null) return Data.Mnist.Load(RequireFolder(dataDir), Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDir))));
        if (RepositoryRoot() is string root && Data.Mnist.IsComplete(Path.Combine(root, "data", "mnist")))
            return Data.Mnist.Load(Path.Combine(root, "data", "mnist"));
        return Data.Mnist.Load(EnsureMnist(Path.Combine(CacheRoot, "mnist")));
    }

    /// <summary>
    /// CIFAR-10: <paramref name="dataDir"/> if given (the archive, the batches folder or a folder holding either),
    /// else ../shared/datasets/cifar10 beside the repository (this project's development copy), else
    /// <c>&lt;cache&gt;/cifar10</c>, downloading the official archive there.
    /// </summary>
    public DatasetPair Cifar10(string? dataDir = null)
    {
        if (dataDir is not null)
            return Data.Cifar10.Load(File.Exists(dataDir) ? dataDir : RequireFolder(dataDir));
        if (RepositoryRoot() is string root && Data.Cifar10.Locate(Path.Combine(root, "..", "shared", "datasets", "cifar10")) is string shared)
            return Data.Cifar10.Load(shared);
        return Data.Cifar10.Load(EnsureCifar10(Path.Combine(CacheRoot, "cifar10")));
    }

    static string RequireFolder(string dir) =>
        Directory.Exists(dir) ? dir : throw new DirectoryNotFoundException($"--data: folder {Path.GetFullPath(dir)} does not exist");

    /// <summary>Downloads the MNIST files <paramref name="folder"/> lacks (each checked against its published MD5); returns the folder.</summary>
    public string EnsureMnist(string folder)
    {
        if (Data.Mnist.IsComplete(folder)) return folder;
        using var http = Client();
        foreach (var file in Data.Mnist.Missing(folder))
        {
            var failures = new List<Exception>();
            foreach (var mirror in MnistMirrors)
            {
                try
                {
                    var bytes = Fetch(http, mirror + file + ".gz");
                    using (var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
                        Verify(mirror + file + ".gz", "decompressed", Convert.ToHexStringLower(MD5.HashData(gz)), Data.Mnist.Md5[file]);
                    Directory.CreateDirectory(folder);
                    string part = Path.Combine(folder, file + ".gz.part");
                    File.WriteAllBytes(part, bytes);
                    File.Move(part, Path.Combine(folder, file + ".gz"), overwrite: true);
                    failures.Clear();
                    break;
                }
                catch (Exception e) when (IsDownloadFailure(e)) { failures.Add(e); }
            }
            if (failures.Count > 0) throw NotDownloaded("MNIST", folder, Data.Mnist.Missing(folder).ConvertAll(f => f + ".gz"), failures);
        }
        return folder;
    }

    /// <summary>Downloads the official CIFAR-10 archive into <paramref name="folder"/> unless CIFAR-10 is already there (MD5-checked); returns the folder.</summary>
    public string EnsureCifar10(string folder)
    {
        if (Data.Cifar10.Locate(folder) is not null) return folder;
        using var http = Client();
        var failures = new List<Exception>();
        foreach (var url in CifarUrls)
        {
            string part = Path.Combine(folder, Data.Cifar10.Archive + ".part");
            try
            {
                Directory.CreateDirectory(folder);
                // 163 MiB: streamed to disk and hashed on the way, never held in memory.
                using (var response = Send(http, url))
                using (var body = response.Content.ReadAsStream())
                using (var file = File.Create(part))
                using (var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5))
                {
                    CopyBounded(body, (buffer, n) => { md5.AppendData(buffer, 0, n); file.Write(buffer, 0, n); }, MaxCifarBytes, url);
                    Verify(url, "archive", Convert.ToHexStringLower(md5.GetHashAndReset()), CifarMd5);
                }
                File.Move(part, Path.Combine(folder, Data.Cifar10.Archive), overwrite: true);
                return folder;
            }
            catch (Exception e) when (IsDownloadFailure(e))
            {
                failures.Add(e);
                File.Delete(part);
            }
        }
        throw NotDownloaded("CIFAR-10", folder, [Data.Cifar10.Archive + $" (or its unpacked {Data.Cifar10.Folder}/)"], failures);
    }

    HttpClient Client()
    {
        var http = handler is null ? new HttpClient(new SocketsHttpHandler { ConnectTimeout = Timeout }) : new HttpClient(handler, disposeHandler: false);
        http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;   // the per-request token below bounds the wait for headers
        return http;
    }

    HttpResponseMessage Send(HttpClient http, string url)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var response = http.Send(new HttpRequestMessage(HttpMethod.Get, url), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        try { response.EnsureSuccessStatusCode(); }
        catch { response.Dispose(); throw; }
        return response;
    }

    byte[] Fetch(HttpClient http, string url)
    {
        using var response = Send(http, url);
        using var body = response.Content.ReadAsStream();
        var ms = new MemoryStream();
        CopyBounded(body, (buffer, n) => ms.Write(buffer, 0, n), MaxMnistFileBytes, url);
        return ms.ToArray();
    }

    // The published files are 170,052,171 bytes (CIFAR-10) and at most 9,912,422 (MNIST): anything far larger is not them.
    const long MaxCifarBytes = 200_000_000, MaxMnistFileBytes = 20_000_000;

    /// <summary>
    /// Copies a response body chunk by chunk, each read bounded by <see cref="Timeout"/> (a body that stalls fails
    /// instead of blocking forever) and the total by <paramref name="maxBytes"/>.
    /// </summary>
    void CopyBounded(Stream body, Action<byte[], int> sink, long maxBytes, string url)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        while (true)
        {
            int n;
            using (var idle = new CancellationTokenSource(Timeout))
            {
                try { n = body.ReadAsync(buffer, idle.Token).AsTask().GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { throw new IOException($"{url}: no data for {Timeout.TotalSeconds:0} s after {total:N0} bytes; giving up"); }
            }
            if (n == 0) return;
            total += n;
            if (total > maxBytes) throw new InvalidDataException($"{url}: the download passed {maxBytes:N0} bytes, more than the dataset's files; refusing the rest");
            sink(buffer, n);
        }
    }

    static bool IsDownloadFailure(Exception e) => e is HttpRequestException or TaskCanceledException or OperationCanceledException or InvalidDataException or IOException;

    // Name resolution or connection failures and timeouts mean no network; anything else (404, bad MD5) is the mirror's fault.
    static bool LooksOffline(Exception e) =>
        e is TaskCanceledException or OperationCanceledException
        || e is HttpRequestException { StatusCode: null } && (e.InnerException is SocketException or IOException or null);

    static void Verify(string source, string what, string actual, string expected)
    {
        if (actual != expected) throw new InvalidDataException($"{source}: MD5 of the {what} file is {actual}, not the published {expected}");
    }

    static IOException NotDownloaded(string dataset, string folder, IEnumerable<string> files, List<Exception> failures)
    {
        string why = failures.TrueForAll(LooksOffline)
            ? "the machine appears to be offline"
            : "the download failed";
        string details = string.Join("; ", failures.ConvertAll(e => e.Message));
        return new IOException(
            $"{dataset} is not on this machine and could not be downloaded: {why} ({details}). " +
            $"Put {string.Join(", ", files)} in {Path.GetFullPath(folder)}, or pass --data DIR.", failures[^1]);
    }
}
