using System.CommandLine;
using System.Diagnostics;
using Backprop.Distributed;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>
/// <c>mpiexec -n N backprop distributed-check</c>: checks an MPI job before it trains — data-parallel steps against one
/// process stepping on the whole batch (an even split and an uneven one), the ranks' weights bitwise equal after every
/// step — and measures the all-reduce's latency and bandwidth (the figures docs/distributed.md's cost model uses).
/// </summary>
internal static class DistributedCheckCommand
{
    const int Samples = 128, Features = 20, Classes = 10, Steps = 100;

    public static Command Create()
    {
        var cmd = new Command("distributed-check", "Check an MPI job (run under mpiexec -n N): data-parallel steps equal one process's, and all-reduce latency and bandwidth")
            { Distribution.Timeout };
        cmd.SetAction(r =>
        {
            double seconds = r.GetValue(Distribution.Timeout) ?? 30;
            using var group = MpiProcessGroup.Start(TimeSpan.FromSeconds(seconds));
            ConsoleOutput.Muted = group.Rank != 0;
            try { return Run(group); }
            finally { ConsoleOutput.Muted = false; }
        });
        return cmd;
    }

    static int Run(MpiProcessGroup group)
    {
        int p = group.Size;
        if (p > Samples / 2) throw new ArgumentException($"distributed-check: {p} ranks; it checks up to {Samples / 2} (two of its {Samples} samples per rank)");
        ConsoleOutput.Line($"distributed-check: {p} ranks, {group.LibraryVersion}");
        // Every rank builds the same data; the reference is one process training on all of it.
        var data = Tensor.Normal([Samples, Features], 0, 1, new Generator(1));
        var g = new Generator(2);
        var labels = Enumerable.Range(0, Samples).Select(_ => g.NextInt(Classes)).ToArray();
        var reference = Train(LocalGroup.Instance, data, labels, 0, Samples);
        bool ok = true;
        foreach (var (name, split) in new (string, Func<int, int>)[]
        {
            ("even", r => Samples * r / p),
            ("uneven", r => r == 0 ? 0 : Samples * r / p - 1),   // two ranks: 63 + 65
        })
        {
            int lo = split(group.Rank), hi = group.Rank == p - 1 ? Samples : split(group.Rank + 1);
            var sizes = new double[p];
            group.AllGather([hi - lo], sizes);
            var mine = Train(group, data, labels, lo, hi);
            // The worst relative difference of any parameter, over the ranks (each compares its replica).
            var worst = new double[2];
            for (int k = 0; k < 2; k++) worst[k] = RelativeDifference(mine[k], reference[k]);
            var all = new double[2 * p];
            group.AllGather(worst, all);
            double afterOne = Enumerable.Range(0, p).Max(r => all[2 * r]), afterAll = Enumerable.Range(0, p).Max(r => all[2 * r + 1]);
            bool pass = afterOne <= 1e-6 && afterAll <= 1e-4;
            ok &= pass;
            ConsoleOutput.Line($"{name} split {string.Join(" + ", sizes)}: max relative difference from one process on {Samples} samples " +
                $"after 1 step {afterOne:E2} (≤ 1e-6), after {Steps} steps {afterAll:E2} (≤ 1e-4); ranks bitwise equal after every step: {(pass ? "ok" : "FAILED")}");
        }
        Measure(group);
        return ok ? 0 : 1;
    }

    // A 20-32-10 MLP (no dropout: the ranks must compute alike) trained with SGD momentum on rows [lo, hi) of the data,
    // its parameters taken after the first step and after the last.
    static Dictionary<string, float[]>[] Train(IProcessGroup group, Tensor data, int[] labels, int lo, int hi)
    {
        var model = new Sequential(new Linear(Features, 32, new Generator(3)), new ReLU(), new Linear(32, Classes, new Generator(4)));
        if (group.Rank != 0)   // rank 0's initialisation must win the broadcast: start the others elsewhere
            foreach (var t in model.Parameters()) t.CopyFrom(Tensor.Normal(t.Shape, 0, 1, new Generator(99)));
        var trainer = new Trainer(model, new Sgd(model.Parameters(), 0.05, momentum: 0.9), (y, t) => y.CrossEntropy(t))
        {
            DataParallel = group.Size > 1 ? new DataParallel(group, model) : null,
            CheckReplicasEveryStep = group.Size > 1,
        };
        var batch = (data.Narrow(0, lo, hi - lo).Contiguous(), labels[lo..hi]);
        var snapshots = new Dictionary<string, float[]>[2];
        trainer.RunEpoch(1, [batch]);
        snapshots[0] = model.NamedParameters().ToDictionary(n => n.Name, n => n.Parameter.ToFloatArray());
        trainer.RunEpoch(2, Enumerable.Repeat(batch, Steps - 1).ToArray());
        snapshots[1] = model.NamedParameters().ToDictionary(n => n.Name, n => n.Parameter.ToFloatArray());
        return snapshots;
    }

    static double RelativeDifference(Dictionary<string, float[]> a, Dictionary<string, float[]> b) =>
        a.Keys.Max(k => a[k].Zip(b[k], (x, y) => Math.Abs(x - y)).Max() / Math.Max(b[k].Max(v => Math.Abs(v)), 1e-30));

    // Latency: median time of a one-double all-reduce. Bandwidth: the ring's bus bandwidth, 2(p − 1)/p × bytes / time.
    static void Measure(MpiProcessGroup group)
    {
        var one = new double[1];
        var times = new double[1000];
        for (int i = 0; i < times.Length; i++)
        {
            var t = Stopwatch.GetTimestamp();
            group.AllReduceSum(one);
            times[i] = Stopwatch.GetElapsedTime(t).TotalSeconds;
        }
        Array.Sort(times);
        ConsoleOutput.Line($"all-reduce latency (8 bytes, median of {times.Length}): {times[times.Length / 2] * 1e6:F1} µs");
        int p = group.Size;
        foreach (int megabytes in new[] { 1, 16, 64 })
        {
            var buffer = new float[megabytes << 18];
            var runs = new double[5];
            for (int i = 0; i < runs.Length; i++)
            {
                var t = Stopwatch.GetTimestamp();
                group.AllReduceSum(buffer);
                runs[i] = Stopwatch.GetElapsedTime(t).TotalSeconds;
            }
            Array.Sort(runs);
            double seconds = runs[runs.Length / 2], bytes = buffer.Length * 4.0;
            ConsoleOutput.Line($"all-reduce {megabytes} MB (float32, median of {runs.Length}): {seconds * 1e3:F2} ms, " +
                $"algorithm bandwidth {bytes / seconds / 1e9:F2} GB/s, bus bandwidth {2.0 * (p - 1) / p * bytes / seconds / 1e9:F2} GB/s");
        }
    }
}
