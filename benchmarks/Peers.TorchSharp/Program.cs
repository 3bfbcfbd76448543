using System.Globalization;
using System.Text;
using Peers.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

// The issue-6 workloads on TorchSharp-cpu, so Backprop's figures can be read as ratios measured in one run.
// Usage: Peers.TorchSharp [--workload W1|W2|W3|W4|W5|W6|W7|W8|W9|W10] [--threads N] [--reps N] [--json]
string? only = null;
int threads = 2, reps = 3;
bool json = false;
for (int i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--workload": only = args[++i].ToUpperInvariant(); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--reps": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--json": json = true; break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'\nusage: Peers.TorchSharp [--workload W1|W2|W3|W4] [--threads N] [--reps N] [--json]");
            return 2;
    }
if (only is not null && only is not ("W1" or "W2" or "W3" or "W4" or "W5" or "W6" or "W7" or "W8" or "W9" or "W10")) { Console.Error.WriteLine($"--workload: unknown '{only}' (W1, W2, W3, W4, W5, W6, W7, W8, W9, W10)"); return 2; }
bool Runs(string w) => only is null || only == w;

set_num_threads(threads);
manual_seed(42);
string root = RepositoryRoot();
Log($"TorchSharp-cpu, libtorch {__version__}, {get_num_threads()} threads, {reps} repetitions after a warm-up; {LoadAverage()}");

var results = new List<Result>();
if (Runs("W1") || Runs("W2"))
{
    var load = System.Diagnostics.Stopwatch.StartNew();
    var mnist = Data.Mnist(Path.Combine(root, "data", "mnist"));
    Log($"MNIST: {mnist.Count} × {mnist.Features} loaded in {load.Elapsed.TotalSeconds:F1} s");
    using var x = tensor(mnist.X, [mnist.Count, mnist.Features]);
    using var y = tensor(mnist.Y, [mnist.Count]);
    if (Runs("W1")) results.Add(Epochs("W1", x, y, [784, 50, 10], batch: 16, lr: 0.1, momentum: 0, warmUpSteps: 500));
    if (Runs("W2")) results.Add(Epochs("W2", x, y, [784, 1024, 1024, 10], batch: 128, lr: 0.05, momentum: 0.9, warmUpSteps: 40));
}
if (Runs("W5")) results.Add(Repeat("W5", "µs/call", "784-1024-1024-10 b1", () => Workloads.BatchOneLatency([784, 1024, 1024, 10], 2000)));
if (Runs("W3"))
{
    const int Count = 49_000;
    string archive = Path.GetFullPath(Path.Combine(root, "..", "shared", "datasets", "cifar10", "cifar-10-binary.tar.gz"));
    var load = System.Diagnostics.Stopwatch.StartNew();
    Dataset cifar;
    try { cifar = Data.Cifar10(archive, Count); }
    catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
    {
        Log($"W3: cannot read {archive} ({e.Message}); using random data of the same shape");
        cifar = Data.Random(Count, 3072, 10, seed: 42);
    }
    Log($"W3: {cifar.Count} × {cifar.Features} {cifar.Source} inputs loaded in {load.Elapsed.TotalSeconds:F1} s");
    using var x = tensor(cifar.X, [cifar.Count, cifar.Features]);
    using var y = tensor(cifar.Y, [cifar.Count]);
    Workloads.TwoLayer(x, y, iterations: 100);
    var seconds = new List<double>();
    for (int r = 0; r < reps; r++)
    {
        var (s, loss) = Workloads.TwoLayer(x, y, iterations: 1000);
        seconds.Add(s);
        Log($"W3 rep {r + 1}: {s:F3} s per 1000 iterations on {cifar.Source} data, last loss {loss:F4}, RSS {Rss()}");
    }
    results.Add(Result.Of("W3", "s/1000 iters", seconds, data: cifar.Source));
    results.Add(Result.Of("W3", "iters/s", seconds.Select(s => 1000 / s).ToList(), data: cifar.Source));
}
if (Runs("W4"))
    foreach (var (m, k, n) in new[] { (256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (16, 784, 50), (128, 784, 1024), (128, 1024, 1024) })
    {
        var r = Result.Of("W4", "GFLOP/s", Workloads.Gemm(m, k, n, reps), shape: $"{m}x{k}@{k}x{n}");
        results.Add(r);
        Log($"W4 {r.Shape}: {r.Median:F1} GFLOP/s");
    }
if (Runs("W6") || Runs("W8"))
{
    var mnist = Data.Mnist(Path.Combine(root, "data", "mnist"));
    using var x = tensor(mnist.X, [mnist.Count, 1, 28, 28]);
    using var y = tensor(mnist.Y, [mnist.Count]);
    if (Runs("W6")) results.Add(Repeat("W6", "samples/s", "mnist-cnn b64", () => Workloads.CnnTraining(Cnn.Mnist, x, y, 64, 150)));
    if (Runs("W8")) results.Add(Repeat("W8", "samples/s", "mnist-cnn b256", () => Workloads.CnnInference(Cnn.Mnist, x, 256, 40)));
}
if (Runs("W7") || Runs("W8"))
{
    using var x = randn(256 * 15, 3, 32, 32);   // random data of CIFAR-10's shape, as Backprop's side uses
    using var y = arange(256 * 15).remainder(10);
    if (Runs("W7")) results.Add(Repeat("W7", "samples/s", "cifar10-cnn b256", () => Workloads.CnnTraining(Cnn.Cifar, x, y, 256, 12)));
    if (Runs("W8")) results.Add(Repeat("W8", "samples/s", "cifar10-cnn b256", () => Workloads.CnnInference(Cnn.Cifar, x, 256, 12)));
}
if (Runs("W9"))
{
    results.Add(Repeat("W9", "GFLOP/s", "64x32x32x32 k64 3x3", () => Workloads.ConvPass(64, 32, 32, 64, 3, 1, 5)));
    results.Add(Repeat("W9", "GFLOP/s", "64x1x28x28 k32 5x5", () => Workloads.ConvPass(64, 1, 28, 32, 5, 2, 20)));
}
if (Runs("W10")) results.Add(Repeat("W10", "GB/s", "64x64x32x32 2x2", () => Workloads.PoolPass(64, 64, 32, 30)));

Log($"done; {LoadAverage()}");
Console.Write(json ? Json(results) : Table(results));
return 0;

Result Epochs(string name, Tensor x, Tensor y, int[] sizes, int batch, double lr, double momentum, int warmUpSteps)
{
    Workloads.MlpEpoch(x, y, sizes, batch, lr, momentum, warmUpSteps);
    var rates = new List<double>();
    for (int r = 0; r < reps; r++)
    {
        var (s, loss) = Workloads.MlpEpoch(x, y, sizes, batch, lr, momentum);
        rates.Add(x.shape[0] / s);
        Log($"{name} rep {r + 1}: {s:F3} s per epoch ({x.shape[0] / s:F0} samples/s), last loss {loss:F4}, RSS {Rss()}");
    }
    return Result.Of(name, "samples/s", rates);
}

Result Repeat(string name, string unit, string shape, Func<double> run)
{
    run();   // warm-up
    var values = new List<double>();
    for (int r = 0; r < reps; r++) { values.Add(run()); Log($"{name} {shape} rep {r + 1}: {values[^1]:F1} {unit}, RSS {Rss()}"); }
    return Result.Of(name, unit, values, shape: shape);
}

// Resident set size: it should stay flat across repetitions if the dispose scopes free libtorch's tensors.
static string Rss() => $"{Environment.WorkingSet >> 20} MiB";

// The machine is shared: a load average above the core count means other work competed with these timings.
static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? $"load average {string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3))} on {Environment.ProcessorCount} cores" : "";

static void Log(string line) => Console.Error.WriteLine(line);

static string RepositoryRoot()
{
    foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Backprop.slnx"))) return dir.FullName;
    throw new DirectoryNotFoundException("cannot find the repository root (Backprop.slnx) above the current or program folder");
}

static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

static string Json(List<Result> results)
{
    var sb = new StringBuilder("[");
    for (int i = 0; i < results.Count; i++)
    {
        var r = results[i];
        sb.Append(i == 0 ? "\n  " : ",\n  ").Append($"{{\"workload\": \"{r.Workload}\"");
        if (r.Shape is not null) sb.Append($", \"shape\": \"{r.Shape}\"");
        sb.Append($", \"unit\": \"{r.Unit}\", \"median\": {Num(r.Median)}, \"min\": {Num(r.Min)}, \"max\": {Num(r.Max)}");
        if (r.Data is not null) sb.Append($", \"data\": \"{r.Data}\"");
        sb.Append('}');
    }
    return sb.Append("\n]\n").ToString();
}

static string Table(List<Result> results)
{
    var sb = new StringBuilder();
    sb.AppendLine($"{"workload",-8} {"shape",-22} {"unit",-14} {"median",12} {"min",12} {"max",12}");
    foreach (var r in results)
        sb.AppendLine($"{r.Workload,-8} {r.Shape ?? r.Data ?? "",-22} {r.Unit,-14} {Num(r.Median),12} {Num(r.Min),12} {Num(r.Max),12}");
    return sb.ToString();
}
