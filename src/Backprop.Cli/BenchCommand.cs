using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Backprop.Data;
using Backprop.Models;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Training;

using Backprop.Kernels;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop bench</c>: the performance workloads of the project (W1–W4), each the median of several
/// repetitions after a warm-up, with min–max, plus managed bytes allocated per training step.
/// </summary>
internal static class BenchCommand
{
    public sealed record Row(string Workload, string Unit, double Median, double Min, double Max, string? Shape = null, string? Note = null);

    static readonly string[] GemmShapes = ["256x256@256x256", "512x512@512x512", "1024x1024@1024x1024", "2048x2048@2048x2048",
        "16x784@784x50", "128x784@784x1024", "128x1024@1024x1024"];

    public static Command Create()
    {
        var workload = new Option<string?>("--workload") { Description = "W1 | W2 | W3 | W4 | W5 | W6 | W7 | W8 | W9 | W10 | alloc [default: all]" };
        var json = new Option<bool>("--json") { Description = "Print the rows as a JSON array" };
        var reps = new Option<int>("--repetitions") { Description = "Measured repetitions per workload (after one warm-up) [default: 3]", DefaultValueFactory = _ => 3 };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads [default: all cores]" };
        var compare = new Option<bool>("--compare") { Description = "Also run the TorchSharp peer (benchmarks/Peers.TorchSharp) workload by workload and print the ratios" };
        var peer = new Option<string?>("--peer") { Description = "Path to Peers.TorchSharp.dll [default: benchmarks/Peers.TorchSharp/bin/Release/net10.0 in the repo]" };
        var isa = new Option<string?>("--isa") { Description = "Run every kernel on a narrower vector path: vector512 | vector256 | vector128 | scalar [default: the widest the CPU runs]" };
        var cmd = new Command("bench", "Run the performance workloads (W1 classic MLP, W2 wide MLP, W3 two-layer CIFAR — each by the Trainer and by a plain loop — W4 GEMM, W5 batch-1 inference latency, W6/W7 CNN training, W8 CNN inference, W9 Conv2d, W10 MaxPool2d, alloc)") { workload, json, reps, threads, compare, peer, isa };
        cmd.SetAction(r =>
        {
            if (r.GetValue(isa) is string level)
            {
                InstructionSets.Forced = Enum.TryParse<InstructionSet>(level, ignoreCase: true, out var forced) && forced != InstructionSet.Auto ? forced
                    : throw new ArgumentException($"--isa: '{level}' is not one of vector512, vector256, vector128, scalar");
                if (RuntimeSwitch(forced) is { } setting && Environment.GetEnvironmentVariable(setting.Name) is null) return Relaunch(setting);
            }
            if (!r.GetValue(json))
                Console.WriteLine($"cpu: {InstructionSets.CpuName()}, {Environment.ProcessorCount} cores; vectors: {InstructionSets.Runtime}; matrix kernels: {InstructionSets.Active}" +
                    $"{(InstructionSets.Forced == InstructionSet.Auto ? "" : " (capped by --isa)")}; measured multiply-add peak {InstructionSets.MeasurePeak():N0} GFLOP/s per core (float32, this path)");
            using var scope = r.GetValue(threads) is int t ? Parallelism.Use(t) : null;   // this run's kernels only, no process-wide setting
            int n = r.GetValue(reps);
            if (n < 1) throw new ArgumentException("--repetitions: must be at least 1");
            if (r.GetValue(compare)) return Compare(r.GetValue(workload)?.ToUpperInvariant(), n, Parallelism.MaxThreads, r.GetValue(peer));
            var rows = Run(r.GetValue(workload)?.ToUpperInvariant(), n, r.GetValue(json) ? null : Print);
            if (r.GetValue(json)) WriteJson(Console.OpenStandardOutput(), rows);
            return 0;
        });
        return cmd;
    }

    // --isa caps the matrix kernels in this process, but TensorPrimitives and the other hand-written kernels take the widest
    // vectors the runtime accelerates. So a narrower path runs the command again in a process whose runtime stops there,
    // and every kernel is measured at that width: 256 bits as on an AVX2 CPU (no AVX-512 instructions at all), 128 bits
    // with fused multiply-adds as on Arm64's NEON (DOTNET_EnableAVX=0 gives SSE without them), scalar code as without
    // any SIMD.
    static (string Name, string Value)? RuntimeSwitch(InstructionSet path) => path <= InstructionSets.Runtime ? null : path switch
    {
        InstructionSet.Vector256 => ("DOTNET_EnableAVX512", "0"),
        InstructionSet.Vector128 => ("DOTNET_PreferredVectorBitWidth", "128"),
        _ => ("DOTNET_EnableHWIntrinsic", "0"),
    };

    static int Relaunch((string Name, string Value) setting)
    {
        var info = new System.Diagnostics.ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { UseShellExecute = false };
        var args = Environment.GetCommandLineArgs();   // under the dotnet host, [0] is the CLI's assembly; as an executable, itself
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet") info.ArgumentList.Add(args[0]);
        foreach (var a in args.Skip(1)) info.ArgumentList.Add(a);
        info.Environment[setting.Name] = setting.Value;
        Console.Error.WriteLine($"bench: running again with {setting.Name}={setting.Value}, so every kernel takes the narrower path");
        using var child = System.Diagnostics.Process.Start(info) ?? throw new InvalidOperationException($"bench: could not start {info.FileName}");
        child.WaitForExit();
        return child.ExitCode;
    }

    // Units of time (lower is better): the ratio is theirs over ours.
    static bool IsTime(string unit) => unit.StartsWith("s/", StringComparison.Ordinal) || unit.StartsWith("µs/", StringComparison.Ordinal);

    static void Print(Row row) => Console.WriteLine(
        $"{row.Workload,-6} {row.Shape ?? "",-22} median {row.Median,12:N1} {row.Unit,-14} {(double.IsNaN(row.Min) ? "" : $"(min {row.Min:N1}, max {row.Max:N1})")}{(row.Note is null ? "" : "  " + row.Note)}");

    public static List<Row> Run(string? only, int repetitions, Action<Row>? report)
    {
        var rows = new List<Row>();
        // Arithmetic rates (GEMM, convolutions) also as a share of the machine's peak on the threads in use, measured once.
        double peak = 0;
        int threads = Math.Min(Parallelism.MaxThreads, Environment.ProcessorCount);
        void Add(Row r)
        {
            if (r.Unit == "GFLOP/s" && r.Note is null)
            {
                if (peak == 0) peak = InstructionSets.MeasurePeak();
                r = r with { Note = $"{100 * r.Median / (threads * peak):0}% of {threads} × {peak:0} GFLOP/s, the measured peak" };
            }
            rows.Add(r);
            report?.Invoke(r);
        }
        bool Want(string w) => only is null || only == w;
        // The Trainer and a plain user loop (ZeroGrad → Forward → loss → Backward → Step, nothing else), interleaved
        // repetition by repetition so both see the same machine; the plain row's note gives plain ÷ Trainer speed.
        void AddPair(string name, string unit, int reps, Func<bool, double> run, string? note = null)
        {
            run(false); run(true);   // warm-up: JIT, caches
            var trainer = new double[reps]; var plain = new double[reps];
            for (int i = 0; i < reps; i++) { trainer[i] = run(false); plain[i] = run(true); }
            var t = Summarise(name, unit, trainer) with { Note = note };
            var p = Summarise(name + "-plain", unit, plain);
            double speed = IsTime(unit) ? t.Median / p.Median : p.Median / t.Median;
            Add(t);
            Add(p with { Note = $"plain loop at {speed:0.00}× the Trainer's speed" });
        }
        if (Want("W1") || Want("W2") || Want("ALLOC"))
        {
            var train = Mnist();
            if (Want("W1")) AddPair("W1", "samples/s", repetitions, plain => MlpEpoch(train, [50], 16, 0.1, 0, new Generator(1), plain));
            if (Want("W2")) AddPair("W2", "samples/s", repetitions, plain => MlpEpoch(train, [1024, 1024], 128, 0.05, 0.9, new Generator(2), plain));
            if (Want("ALLOC"))
            {
                Add(new Row("alloc-W1", "bytes/step", AllocatedPerStep(train, [50], 16, 0.1, 0), 0, 0) with { Min = double.NaN, Max = double.NaN });
                Add(new Row("alloc-W2", "bytes/step", AllocatedPerStep(train, [1024, 1024], 128, 0.05, 0.9), 0, 0) with { Min = double.NaN, Max = double.NaN });
            }
        }
        if (Want("W5")) Add(Measure("W5", "µs/call", repetitions, () => BatchOneLatency(Mlp.Create(784, [1024, 1024], 10, new Generator(12)), 784, 2000), v => v) with { Shape = "784-1024-1024-10 b1" });
        if (Want("W3"))
        {
            var (x, y, note) = Cifar();
            AddPair("W3", "s/1000 iters", repetitions, plain => TwoLayerCifar(x, y, 1000, plain), note);
        }
        if (Want("W4"))
            foreach (var shape in GemmShapes) Add(Gemm(shape, repetitions));
        if (Want("W6") || Want("W8"))
        {
            var train = Mnist();
            if (Want("W6")) Add(Measure("W6", "samples/s", repetitions, () => CnnTraining(MnistCnn(new Generator(7)), train.X, train.Y, 64, 150), v => v) with { Shape = "mnist-cnn b64" });
            if (Want("W8")) Add(Measure("W8", "samples/s", repetitions, () => CnnInference(MnistCnn(new Generator(8)), train.X, 256, 40), v => v) with { Shape = "mnist-cnn b256" });
        }
        if (Want("W7") || Want("W8"))
        {
            var g = new Generator(9);   // random data of CIFAR-10's shape: the speed does not depend on the values
            var x = Tensor.Normal([256 * 15, 3072], 0, 1, g);
            var y = Enumerable.Range(0, x.Size(0)).Select(i => i % 10).ToArray();
            if (Want("W7")) Add(Measure("W7", "samples/s", repetitions, () => CnnTraining(CifarCnn(new Generator(10)), x, y, 256, 12), v => v) with { Shape = "cifar10-cnn b256" });
            if (Want("W8")) Add(Measure("W8", "samples/s", repetitions, () => CnnInference(CifarCnn(new Generator(11)), x, 256, 12), v => v) with { Shape = "cifar10-cnn b256" });
        }
        if (Want("W9"))
        {
            Add(Measure("W9", "GFLOP/s", repetitions, () => ConvPass(64, 32, 32, 64, 3, 1, 5), v => v) with { Shape = "64x32x32x32 k64 3x3" });
            Add(Measure("W9", "GFLOP/s", repetitions, () => ConvPass(64, 1, 28, 32, 5, 2, 20), v => v) with { Shape = "64x1x28x28 k32 5x5" });
        }
        if (Want("W10")) Add(Measure("W10", "GB/s", repetitions, () => PoolPass(64, 64, 32, 30), v => v) with { Shape = "64x64x32x32 2x2" });
        return rows;
    }

    static Row Measure(string name, string unit, int repetitions, Func<double> run, Func<double, double> toUnit)
    {
        run();   // warm-up: JIT, caches
        return Summarise(name, unit, [.. Enumerable.Range(0, repetitions).Select(_ => toUnit(run()))]);
    }

    static Row Summarise(string name, string unit, double[] values)
    {
        var v = values.Order().ToArray();
        return new Row(name, unit, v[v.Length / 2], v[0], v[^1]);
    }

    static (Tensor X, int[] Y) Mnist()
    {
        var data = new DatasetStore().Mnist(null);
        return (Preprocessor.Fit(data.Train, Normalization.Scale).Apply(data.Train), data.Train.LabelsAsInts());
    }

    /// <summary>One epoch of SGD on all 60,000 training images, by the Trainer or a plain loop; returns samples/s.</summary>
    static double MlpEpoch((Tensor X, int[] Y) train, int[] hidden, int batch, double lr, double momentum, Generator g, bool plain)
    {
        var model = Mlp.Create(784, hidden, 10, g);
        var opt = new Sgd(model.Parameters(), lr, momentum);
        var loader = new DataLoader(train.X, train.Y, batch, shuffle: true, generator: g);
        var clock = Stopwatch.StartNew();
        if (plain) PlainLoop.Epoch(model, opt, loader, static (o, y) => o.CrossEntropy(y));
        else new Training.Trainer(model, opt, static (o, y) => o.CrossEntropy(y)).RunEpoch(1, loader);
        return train.Y.Length / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Managed bytes allocated per steady-state Trainer step (batches prepared beforehand), over the 40 steps after 20 of warm-up.</summary>
    static double AllocatedPerStep((Tensor X, int[] Y) train, int[] hidden, int batch, double lr, double momentum)
    {
        var g = new Generator(3);
        var model = Mlp.Create(784, hidden, 10, g);
        var opt = new Sgd(model.Parameters(), lr, momentum);
        var trainer = new Training.Trainer(model, opt, static (o, y) => o.CrossEntropy(y));
        var loader = new DataLoader(train.X.SliceRows(0, batch * 60), train.Y[..(batch * 60)], batch, shuffle: true, generator: g);
        var batches = loader.ToList();   // the permutation and the enumerator are not part of a step
        trainer.RunEpoch(1, batches[..20]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        trainer.RunEpoch(2, batches[20..]);
        return (GC.GetAllocatedBytesForCurrentThread() - before) / 40.0;
    }

    // The CNN presets' networks (benchmarks/Peers.TorchSharp builds the same ones).
    static Sequential MnistCnn(Generator g) => Cnn.Create(1, 28, 28, [32, 64], 10, g, kernel: 5, hidden: [1024], dropout: 0.5);
    static Sequential CifarCnn(Generator g) => Cnn.Create(3, 32, 32, [32, 128, 128], 10, g, kernel: 3, convsPerStage: 2, batchNorm: true, poolFirst: true,
        activation: Activation.Gelu, whiten: 2, style: CnnStyle.Airbench);   // the cifar10-cnn preset's net

    /// <summary>Training samples/s over <paramref name="steps"/> steps of SGD with momentum (after 3 warm-up steps).</summary>
    static double CnnTraining(Sequential model, Tensor x, int[] y, int batch, int steps)
    {
        var opt = new Sgd(model.Parameters(), 0.01, 0.9);
        var trainer = new Training.Trainer(model, opt, static (o, t) => o.CrossEntropy(t));
        var batches = new DataLoader(x.SliceRows(0, batch * (steps + 3)), y[..(batch * (steps + 3))], batch).ToList();
        trainer.RunEpoch(1, batches[..3]);
        var clock = Stopwatch.StartNew();
        trainer.RunEpoch(2, batches[3..]);
        return batch * steps / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Median latency in µs of one-sample inference (eval mode, no graph), as a service answering one request sees it.</summary>
    static double BatchOneLatency(Nn.Module model, int features, int calls)
    {
        model.Eval();
        var x = Tensor.Normal([1, features], 0, 1, new Generator(13));
        using var _ = Autograd.NoGrad();
        for (int i = 0; i < 200; i++) model.Forward(x);   // warm-up
        var times = new double[calls];
        for (int i = 0; i < calls; i++)
        {
            long t = System.Diagnostics.Stopwatch.GetTimestamp();
            model.Forward(x);
            times[i] = System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }
        Array.Sort(times);
        return times[calls / 2];
    }

    /// <summary>Inference samples/s (eval mode, no graph) over <paramref name="batches"/> batches.</summary>
    static double CnnInference(Sequential model, Tensor x, int batch, int batches)
    {
        model.Eval();
        using var _ = Autograd.NoGrad();
        model.Forward(x.SliceRows(0, batch));
        var clock = Stopwatch.StartNew();
        for (int b = 0; b < batches; b++) model.Forward(x.SliceRows(b % (x.Size(0) / batch) * batch, batch));
        return batch * batches / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Runs a kernel for half a second first, so the timed calls run the JIT's optimised code (tiered compilation).</summary>
    static void WarmUp(Action pass)
    {
        var clock = Stopwatch.StartNew();
        do pass(); while (clock.Elapsed.TotalSeconds < 0.5);
    }

    /// <summary>Conv2d forward + both gradients, in GFLOP/s (3 × 2·N·K·C·KH·KW·OH·OW per pass), stride 1.</summary>
    static double ConvPass(int n, int c, int hw, int k, int kernel, int pad, int calls)
    {
        var g = new Generator(12);
        var x = Tensor.Normal([n, c, hw, hw], 0, 1, g); x.RequiresGrad = true;
        var w = Tensor.Normal([k, c, kernel, kernel], 0, 0.1, g); w.RequiresGrad = true;
        var up = Tensor.Normal([n, k, hw + 2 * pad - kernel + 1, hw + 2 * pad - kernel + 1], 0, 1, g);
        double flop = 3 * 2.0 * n * k * c * kernel * kernel * up.Size(2) * up.Size(3);
        WarmUp(() => { x.Grad = null; w.Grad = null; x.Conv2d(w, padding: pad).Backward(up); });
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) { x.Grad = null; w.Grad = null; x.Conv2d(w, padding: pad).Backward(up); }
        return flop * calls / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>MaxPool2d 2×2 forward + backward in GB/s of tensor traffic (x and y read or written forward, gy and gx backward).</summary>
    static double PoolPass(int n, int c, int hw, int calls)
    {
        var g = new Generator(13);
        var x = Tensor.Normal([n, c, hw, hw], 0, 1, g); x.RequiresGrad = true;
        var up = Tensor.Normal([n, c, hw / 2, hw / 2], 0, 1, g);
        double bytes = 4.0 * 2 * (x.Length + up.Length);
        WarmUp(() => { x.Grad = null; x.MaxPool2d(2).Backward(up); });
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) { x.Grad = null; x.MaxPool2d(2).Backward(up); }
        return bytes * calls / clock.Elapsed.TotalSeconds / 1e9;
    }

    static (Tensor X, int[] Y, string Note) Cifar()
    {
        try
        {
            var data = new DatasetStore().Cifar10(null);
            var train = data.Train.Subset(0, 49000);
            return (Preprocessor.Fit(train, Normalization.MeanImage, scale01: false).Apply(train), train.LabelsAsInts(), "CIFAR-10");
        }
        catch (IOException e)
        {
            var g = new Generator(4);
            var y = new int[49000];
            for (int i = 0; i < y.Length; i++) y[i] = g.NextInt(10);
            return (Tensor.Normal([49000, 3072], 0, 60, g), y, $"random data of CIFAR-10's shape ({e.Message})");
        }
    }

    /// <summary>3072-100-10 ReLU, batch 200 drawn with replacement, loss + 0.25·(‖W1‖² + ‖W2‖²), SGD lr 1e-4, by the Trainer or a plain loop; returns seconds.</summary>
    static double TwoLayerCifar(Tensor x, int[] labels, int iterations, bool plain)
    {
        var g = new Generator(5);
        var l1 = new Linear(3072, 100, g, std: 1e-4);
        var l2 = new Linear(100, 10, g, std: 1e-4);
        var model = new Sequential(l1, new ReLU(), l2);
        var opt = new Sgd(model.Parameters(), 1e-4);
        var batches = DataLoader.WithReplacement(x, labels, 200, iterations, g);
        Tensor Loss(Tensor output, int[] y) => output.CrossEntropy(y) + Ops.L2Penalty(0.25, l1.Weight, l2.Weight);
        var clock = Stopwatch.StartNew();
        if (plain) PlainLoop.Epoch(model, opt, batches, Loss);
        else new Training.Trainer(model, opt, Loss).RunEpoch(1, batches);
        return clock.Elapsed.TotalSeconds;
    }

    static Row Gemm(string shape, int repetitions)
    {
        var parts = shape.Split('@');
        var a = parts[0].Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var b = parts[1].Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int m = a[0], k = a[1], n = b[1];
        var g = new Generator(6);
        var ta = Tensor.Uniform([m, k], -1, 1, g);
        var tb = Tensor.Uniform([k, n], -1, 1, g);
        var c = Tensor.Zeros([m, n]);   // written in place, as the peer's addmm_ does: the multiply alone is timed
        double flop = 2.0 * m * n * k;
        // enough calls that one measurement lasts ≥ 0.2 s
        var probe = Stopwatch.StartNew();
        Ops.MatMulInto(ta, tb, c);
        int calls = (int)Math.Clamp(0.2 / Math.Max(probe.Elapsed.TotalSeconds, 1e-7), 3, 1_000_000);
        return Measure("W4", "GFLOP/s", repetitions, () =>
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++) Ops.MatMulInto(ta, tb, c);
            return flop * calls / clock.Elapsed.TotalSeconds / 1e9;
        }, v => v) with { Shape = shape };
    }

    /// <summary>
    /// Runs each workload here and then in the peer process, alternating, so both sides see the same machine state;
    /// prints ours, the peer's and the ratio (higher is better for Backprop; for times the ratio is peer/ours).
    /// </summary>
    static int Compare(string? only, int repetitions, int threads, string? peerPath)
    {
        string dll = peerPath ?? Path.Combine(Data.DatasetStore.RepositoryRoot() ?? ".", "benchmarks", "Peers.TorchSharp", "bin", "Release", "net10.0", "Peers.TorchSharp.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"--compare: {dll} not found; build it first: dotnet build benchmarks/Peers.TorchSharp -c Release");
        var table = new List<(Row Ours, Row? Peer)>();
        foreach (var w in new[] { "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10" })
        {
            if (only is not null && only != w) continue;
            var ours = Run(w, repetitions, null);
            var theirs = RunPeer(dll, w, repetitions, threads);
            foreach (var o in ours)
                table.Add((o, theirs.FirstOrDefault(p => p.Workload == o.Workload && p.Unit == o.Unit && p.Shape == o.Shape)));
        }
        Console.WriteLine($"{"workload",-8} {"shape",-22} {"unit",-13} {"Backprop",12} {"TorchSharp",12} {"ratio",7}");
        foreach (var (o, p) in table)
        {
            double? ratio = p is null ? null : IsTime(o.Unit) ? p.Median / o.Median : o.Median / p.Median;
            Console.WriteLine($"{o.Workload,-8} {o.Shape ?? "",-22} {o.Unit,-13} {o.Median,12:N1} {(p is null ? "-" : p.Median.ToString("N1", CultureInfo.InvariantCulture)),12} {(ratio is double x ? x.ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-"),7}" +
                (o.Unit == "GFLOP/s" && o.Note is not null ? "  " + o.Note : ""));
        }
        return 0;
    }

    static List<Row> RunPeer(string dll, string workload, int repetitions, int threads)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false };
        foreach (var a in new[] { dll, "--json", "--workload", workload, "--reps", repetitions.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new IOException($"could not start {dll}");
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new IOException($"{dll} exited with code {p.ExitCode}");
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.EnumerateArray().Select(e => new Row(
            e.GetProperty("workload").GetString()!, e.GetProperty("unit").GetString()!,
            e.GetProperty("median").GetDouble(), e.GetProperty("min").GetDouble(), e.GetProperty("max").GetDouble(),
            e.TryGetProperty("shape", out var s) ? s.GetString() : null)).ToList();
    }

    public static void WriteJson(Stream stream, IEnumerable<Row> rows)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartArray();
        foreach (var r in rows)
        {
            w.WriteStartObject();
            w.WriteString("workload", r.Workload);
            if (r.Shape is not null) w.WriteString("shape", r.Shape);
            w.WriteString("unit", r.Unit);
            w.WriteNumber("median", Math.Round(r.Median, 3));
            if (double.IsFinite(r.Min)) w.WriteNumber("min", Math.Round(r.Min, 3)); else w.WriteNull("min");
            if (double.IsFinite(r.Max)) w.WriteNumber("max", Math.Round(r.Max, 3)); else w.WriteNull("max");
            if (r.Note is not null) w.WriteString("note", r.Note);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
