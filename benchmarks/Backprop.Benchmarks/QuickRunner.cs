using System.Diagnostics;
using Backprop.Kernels;

namespace Backprop.Benchmarks;

/// <summary>
/// Stopwatch GFLOP/s for tuning: per shape, warm up, then time ≥ 5 runs of enough calls to last ~0.1 s and
/// print median (min–max). Options: --shape MxK@KxN (repeatable), --runs N, --threads N[,N…] (interleaved),
/// --ta / --tb (transposed operand storage), --double,
/// --paths Vector512,Vector256,Scalar (interleaved), --cpu (CPU time), --peak / --cpu-peak (microkernels alone).
/// </summary>
public static class QuickRunner
{
    // --cpu: divide by process CPU time instead of wall time, so time spent descheduled by a busy neighbour
    // does not count (for tuning on a shared machine; with N threads it reports GFLOP/s per busy core).
    static bool cpuTime;

    static double Seconds(Stopwatch sw, TimeSpan cpu0) =>
        cpuTime ? (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds : sw.Elapsed.TotalSeconds;

    public static void Run(string[] args)
    {
        var shapes = new List<(int M, int K, int N)>();
        int runs = 7;
        bool ta = false, tb = false, dbl = false;
        GemmPath[] paths = [GemmPath.Auto];
        int[] threadCounts = [Parallelism.MaxThreads];
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shape": shapes.Add(GemmShapes.Parse(args[++i])); break;
                case "--runs": runs = int.Parse(args[++i]); break;
                case "--threads": threadCounts = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--ta": ta = true; break;
                case "--tb": tb = true; break;
                case "--double": dbl = true; break;
                case "--cpu": cpuTime = true; break;
                case "--peak": Peak(runs); return;
                case "--cpu-peak": cpuTime = true; Peak(runs); return;
                case "--paths": paths = args[++i].Split(',').Select(Enum.Parse<GemmPath>).ToArray(); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (shapes.Count == 0) shapes.AddRange(GemmShapes.All);
        var variants = paths.SelectMany(p => threadCounts.Select(t => (Path: p, Threads: t))).ToArray();
        Console.WriteLine($"{(dbl ? "float64" : "float32")} transA={ta} transB={tb} {(cpuTime ? "CPU" : "wall")} time, default path {Gemm.PathFor<float>()}");
        foreach (var s in shapes)
        {
            var results = dbl ? Measure<double>(s, ta, tb, runs, variants) : Measure<float>(s, ta, tb, runs, variants);
            for (int v = 0; v < variants.Length; v++)
            {
                var g = results[v];
                string tag = $" {variants[v].Path} t{variants[v].Threads}";
                Console.WriteLine($"{GemmShapes.Name(s) + tag,-36} {g[runs / 2],8:F1} GFLOP/s  ({g[0]:F1}–{g[^1]:F1})");
            }
        }
    }

    /// <summary>The microkernels alone on L1-resident panels: the ceiling for everything around them.</summary>
    static unsafe void Peak(int runs)
    {
        float* a = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(64 * 1024, 64);
        float* b = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(64 * 1024, 64);
        float* c = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(64 * 1024, 64);
        new Span<float>(a, 16384).Fill(0.001f); new Span<float>(b, 16384).Fill(0.001f); new Span<float>(c, 16384).Clear();
        string[] names = ["512x8", "256x6", "scalar4x4"];
        var g = names.Select(_ => new double[runs]).ToArray();
        for (int r = 0; r < runs; r++)
        {
            g[0][r] = Time<MicroKernels.K512x8<float>>(a, b, c);
            g[1][r] = Time<MicroKernels.K256x6<float>>(a, b, c);
            g[2][r] = Time<MicroKernels.Scalar4x4<float>>(a, b, c);
        }
        for (int v = 0; v < names.Length; v++)
        {
            Array.Sort(g[v]);
            Console.WriteLine($"kernel {names[v],-8} {g[v][runs / 2],8:F1} GFLOP/s  ({g[v][0]:F1}–{g[v][^1]:F1})");
        }
    }

    static unsafe double Time<TK>(float* a, float* b, float* c) where TK : struct, IMicroKernel<float>
    {
        const int kc = 256, calls = 20000;
        var cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) TK.Run(kc, a, b, TK.NR, c, TK.NR, true);
        return 2.0 * TK.MR * TK.NR * kc * calls / Seconds(sw, cpu0) / 1e9;
    }

    // Variants are interleaved run by run, so a noisy neighbour slows them alike.
    static double[][] Measure<T>((int M, int K, int N) s, bool ta, bool tb, int runs, (GemmPath Path, int Threads)[] variants)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rng = new Random(1);
        T[] a = new T[s.M * s.K], b = new T[s.K * s.N], c = new T[s.M * s.N];
        for (int i = 0; i < a.Length; i++) a[i] = T.CreateChecked(rng.NextDouble());
        for (int i = 0; i < b.Length; i++) b[i] = T.CreateChecked(rng.NextDouble());

        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (sw.Elapsed.TotalSeconds < 0.3 || calls < 3) { Gemm.Multiply<T>(a, ta, b, tb, c, s.M, s.N, s.K, false); calls++; }
        int perRun = Math.Max(1, (int)(calls * 0.1 / sw.Elapsed.TotalSeconds));

        var gflops = variants.Select(_ => new double[runs]).ToArray();
        for (int r = 0; r < runs; r++)
            for (int v = 0; v < variants.Length; v++)
            {
                Gemm.ForcedPath = variants[v].Path;
                Parallelism.MaxThreads = variants[v].Threads;
                Gemm.Multiply<T>(a, ta, b, tb, c, s.M, s.N, s.K, false);
                var cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
                sw.Restart();
                for (int i = 0; i < perRun; i++) Gemm.Multiply<T>(a, ta, b, tb, c, s.M, s.N, s.K, false);
                gflops[v][r] = GemmShapes.Flops(s) * perRun / Seconds(sw, cpu0) / 1e9;
            }
        foreach (var g in gflops) Array.Sort(g);
        return gflops;
    }
}
