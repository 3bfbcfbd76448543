using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Backprop.Data;
using Backprop.Distributed;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Tests;

/// <summary>
/// Data-parallel training on MPI, end to end: two ranks started by MPICH's mpiexec (installed by .ci/run; these tests
/// need it: apt-get install mpich libmpich-dev).
/// </summary>
[Collection("console")]   // one MPI job at a time (each uses both cores), and some run the CLI in-process, redirecting Console
public sealed class DistributedTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-mpi-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll");

    static Process Start(params string[] args)
    {
        var mpiexec = new[] { "/usr/bin/mpiexec", "/usr/local/bin/mpiexec" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("mpiexec not found: these tests need MPICH (apt-get install mpich libmpich-dev; .ci/run installs it)");
        var info = new ProcessStartInfo(mpiexec) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-n", "2", "dotnet", Cli, .. args]) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    static (int Code, string Out, string Err) Mpi(params string[] args)
    {
        using var p = Start(args);
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(entireProcessTree: true); throw new TimeoutException($"mpiexec {string.Join(" ", args)} ran over 5 minutes"); }
        return (p.ExitCode, output.Result, error.Result);
    }

    [Fact]
    public void Two_ranks_step_as_one_process_on_the_whole_batch_even_and_uneven_splits()
    {
        var (code, output, err) = Mpi("distributed-check");
        Assert.True(code == 0, output + err);
        foreach (var split in new[] { "even split 64 + 64", "uneven split 63 + 65" })
        {
            var m = Regex.Match(output, Regex.Escape(split) + @": .* after 1 step (\S+) .* after 100 steps (\S+) .* every step: ok");
            Assert.True(m.Success, output);
            Assert.InRange(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), 0, 1e-6);
            Assert.InRange(double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), 0, 1e-4);
        }
        Assert.Matches(@"all-reduce latency \(8 bytes, median of 1000\): [\d.]+ µs", output);
        Assert.Matches(@"all-reduce 64 MB .* bus bandwidth [\d.]+ GB/s", output);
    }

    [Fact]
    public void Two_rank_training_matches_one_process_and_reports_its_scaling()
    {
        string[] common = ["train", "--hidden", "32", "--epochs", "2", "--lr-step", "1", "--seed", "5"];
        var (code, output, err) = Mpi([.. common, "--distributed", "--batch-size", "64", "--out", Path.Combine(dir, "two")]);
        Assert.True(code == 0, output + err);
        Assert.Contains("batch 64 per rank = 128 per step", output);
        Assert.Matches(@"scaling efficiency [\d.]+%; the ranks' weights agreed bitwise after every epoch", output);
        Assert.Single(Regex.Matches(output, "test accuracy:"));   // rank 0 alone reports
        var (single, singleOut, singleErr) = Helpers.RunCli([.. common, "--batch-size", "128", "--out", Path.Combine(dir, "one")]);
        Assert.True(single == 0, singleErr);
        double Accuracy(string text) => double.Parse(Regex.Match(text, @"test accuracy: ([\d.]+)%").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(Accuracy(output), Accuracy(singleOut) - 0.3, Accuracy(singleOut) + 0.3);
        Assert.True(File.Exists(Path.Combine(dir, "two", "model.safetensors")));
    }

    [Fact]
    public void A_batchnorm_cnn_with_augmentation_keeps_identical_replicas_at_every_step()
    {
        // BatchNorm's running statistics are per rank until rank 0's are broadcast after each step; augmentation draws
        // for the whole global batch on every rank. Either slip would make the replicas differ, which every step checks.
        var (code, output, err) = Mpi("train", "--distributed", "--check-replicas", "--model", "cnn", "--conv", "8,16", "--hidden", "", "--batchnorm",
            "--augment", "translate", "--epochs", "1", "--batch-size", "32", "--lr", "0.05", "--momentum", "0.9", "--out", Path.Combine(dir, "cnn"));
        Assert.True(code == 0, output + err);
        Assert.Contains("the ranks' weights agreed bitwise after every step", output);
        Assert.InRange(double.Parse(Regex.Match(output, @"test accuracy: ([\d.]+)%").Groups[1].Value, CultureInfo.InvariantCulture), 90, 100);
    }

    [Fact]
    public void A_two_rank_run_resumes_with_two_ranks_or_with_one()
    {
        string run = Path.Combine(dir, "resumable");
        string[] options = ["train", "--hidden", "32", "--epochs", "3", "--batch-size", "64", "--seed", "2"];
        var (code, output, err) = Mpi([.. options, "--distributed", "--out", run, "--stop-after", "1"]);
        Assert.True(code == 0, output + err);
        Assert.Contains("stopped after epoch 1 of 3", output);
        string copy = Path.Combine(dir, "resumable-copy");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(run)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));

        (code, output, err) = Mpi([.. options, "--distributed", "--resume", run]);
        Assert.True(code == 0, output + err);
        Assert.Contains("resuming after epoch 1", output);
        Assert.Contains("test accuracy:", output);
        // the same checkpoint in one process: global batch 64 instead of 128 from epoch 2 on, a valid continuation
        (code, output, err) = Helpers.RunCli([.. options, "--resume", copy]);
        Assert.True(code == 0, output + err);
        Assert.Contains("resuming after epoch 1", output);
        Assert.True(File.Exists(Path.Combine(copy, "model.safetensors")));
    }

    // Starts a long 2-rank run, waits until it trains, does `act` to rank 1's pid, and returns how the job ended.
    async Task<(int Code, double Seconds, string Said)> Disturb(Action<int> act, params string[] extra)
    {
        using var p = Start(["train", "--distributed", "--hidden", "256", "--epochs", "200", "--batch-size", "16", "--out", Path.Combine(dir, "long-run"), .. extra]);
        var output = p.StandardOutput.ReadToEndAsync();
        int victim = 0;
        var errors = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        while (victim == 0 && clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            // each rank names its pid on standard error when it starts
            var line = await p.StandardError.ReadLineAsync() ?? throw new InvalidOperationException("mpiexec ended before the ranks started: " + errors);
            errors.AppendLine(line);
            if (Regex.Match(line, @"rank 1 of 2 \(pid (\d+)") is { Success: true } m) victim = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        Assert.NotEqual(0, victim);
        await Task.Delay(3000);   // into the first epoch
        var rest = p.StandardError.ReadToEndAsync();
        act(victim);
        var since = Stopwatch.StartNew();
        bool ended = p.WaitForExit(TimeSpan.FromSeconds(60));
        if (!ended) p.Kill(entireProcessTree: true);
        Assert.True(ended, "the surviving rank was still running 60 s after the other was disturbed");
        return (p.ExitCode, since.Elapsed.TotalSeconds, errors + await rest + await output);
    }

    [Fact]
    public async Task Killing_one_rank_ends_the_other_with_an_error_within_a_minute()
    {
        var (code, seconds, said) = await Disturb(pid => Process.GetProcessById(pid).Kill());
        Assert.NotEqual(0, code);
        Assert.InRange(seconds, 0, 60);
        Assert.Contains("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", said);   // MPICH's launcher ends the job and says why
    }

    [Fact]
    public async Task A_hung_rank_makes_the_other_abort_the_job_after_the_timeout()
    {
        // SIGSTOP: the rank stays alive but never answers; the launcher sees nothing wrong, the watchdog does.
        var (code, seconds, said) = await Disturb(pid => Process.Start("kill", ["-STOP", pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit(), "--timeout", "5");
        Assert.NotEqual(0, code);
        Assert.InRange(seconds, 4, 60);
        Assert.Contains("rank 0 of 2: no answer from the other ranks for 5 s", said);
    }

    [Fact]
    public void The_binding_uses_mpich_headers_handle_values()
    {
        const string header = "/usr/include/x86_64-linux-gnu/mpich/mpi.h";
        Assert.True(File.Exists(header), $"{header} is missing: apt-get install libmpich-dev (.ci/run does)");
        string text = File.ReadAllText(header);
        long Define(string name)
        {
            var m = Regex.Match(text, @"#define\s+" + name + @"\s+(?:\(+\s*\w+\s*\*?\s*\)\s*)*\(?\s*(0x[0-9a-fA-F]+|-?\d+)");   // casts, then the value
            Assert.True(m.Success, $"{name} not found in {header}");
            string v = m.Groups[1].Value;
            return v.StartsWith("0x") ? Convert.ToInt64(v[2..], 16) : long.Parse(v, CultureInfo.InvariantCulture);
        }
        Assert.Equal(Distributed.Mpi.CommWorld, Define("MPI_COMM_WORLD"));
        Assert.Equal(Distributed.Mpi.Byte, Define("MPI_BYTE"));
        Assert.Equal(Distributed.Mpi.Float, Define("MPI_FLOAT"));
        Assert.Equal(Distributed.Mpi.Double, Define("MPI_DOUBLE"));
        Assert.Equal(Distributed.Mpi.Sum, Define("MPI_SUM"));
        Assert.Equal(Distributed.Mpi.Success, Define("MPI_SUCCESS"));
        Assert.Equal(Distributed.Mpi.ThreadFunneled, Define("MPI_THREAD_FUNNELED"));
        Assert.Equal(Distributed.Mpi.RequestNull, Define("MPI_REQUEST_NULL"));
        Assert.Equal((long)Distributed.Mpi.InPlace, Define("MPI_IN_PLACE"));
        Assert.Equal((long)Distributed.Mpi.StatusIgnore, Define("MPI_STATUS_IGNORE"));
        Assert.Matches(@"typedef int MPI_Comm;", text);
        Assert.Matches(@"typedef int MPI_Request;", text);
    }
}

/// <summary>The data-parallel pieces without MPI: a group of threads in one process stands in for the ranks.</summary>
public class DataParallelTests
{
    // Ranks as threads: each collective gathers every rank's contribution behind a barrier.
    sealed class ThreadGroup(int rank, ThreadGroup.Shared shared) : IProcessGroup
    {
        public sealed class Shared(int size)
        {
            public readonly Barrier Barrier = new(size);
            public readonly double[][] Slots = new double[size][];
        }
        public int Rank => rank;
        public int Size => shared.Slots.Length;
        public void AllReduceSum(Span<float> values)
        {
            var d = new double[values.Length];
            for (int i = 0; i < d.Length; i++) d[i] = values[i];
            AllReduceSum(d);
            for (int i = 0; i < d.Length; i++) values[i] = (float)d[i];
        }
        public void AllReduceSum(Span<double> values)
        {
            shared.Slots[rank] = values.ToArray();
            shared.Barrier.SignalAndWait();
            for (int i = 0; i < values.Length; i++) { double s = 0; foreach (var slot in shared.Slots) s += slot[i]; values[i] = s; }
            shared.Barrier.SignalAndWait();
        }
        public void Broadcast(Span<byte> data, int root)
        {
            var d = new double[data.Length];
            if (rank == root) for (int i = 0; i < d.Length; i++) d[i] = data[i];
            AllReduceSum(d);
            for (int i = 0; i < d.Length; i++) data[i] = (byte)d[i];
        }
        public void AllGather(ReadOnlySpan<double> mine, Span<double> all)
        {
            var spread = new double[all.Length];
            mine.CopyTo(spread.AsSpan(rank * mine.Length));
            AllReduceSum(spread);
            spread.CopyTo(all);
        }
        public void Barrier() => shared.Barrier.SignalAndWait();
    }

    static T[] OnRanks<T>(int size, Func<IProcessGroup, T> work)
    {
        var shared = new ThreadGroup.Shared(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = work(new ThreadGroup(r, shared)); }
            catch (Exception e) { errors[r] = e; shared.Barrier.RemoveParticipant(); }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var e in errors) if (e is not null) throw e;
        return results;
    }

    [Fact]
    public void Ranks_whose_weights_differ_are_caught()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OnRanks(2, group =>
        {
            var model = new Linear(3, 2, new Generator((ulong)group.Rank));   // not broadcast: the replicas differ
            new DataParallel(group, model).CheckReplicas("at the start");
            return 0;
        }));
        Assert.Contains("rank 1's weights differ from rank 0's at the start", e.Message);
        Assert.Equal([0, 0], OnRanks(2, group =>
        {
            var model = new Linear(3, 2, new Generator(7));
            new DataParallel(group, model).CheckReplicas("at the start");
            return 0;
        }));
    }

    [Fact]
    public void Averaged_gradients_weight_each_rank_by_its_samples()
    {
        // 3 ranks holding 1, 2 and 5 rows of an 8-row batch: the averaged gradient is the whole batch's mean-loss gradient.
        var x = Tensor.Normal([8, 4], 0, 1, new Generator(1));
        int[] y = [0, 1, 2, 0, 1, 2, 0, 1];
        var whole = new Linear(4, 3, new Generator(2));
        whole.Forward(x).CrossEntropy(y).Backward();
        int[] bounds = [0, 1, 3, 8];
        var grads = OnRanks(3, group =>
        {
            var model = new Linear(4, 3, new Generator(2));
            int lo = bounds[group.Rank], hi = bounds[group.Rank + 1];
            var loss = model.Forward(x.Narrow(0, lo, hi - lo)).CrossEntropy(y[lo..hi]);
            loss.Backward();
            var (mean, samples) = new DataParallel(group, model).AverageGradients([.. model.Parameters()], hi - lo, loss.Item());
            Assert.Equal(8, samples);
            return model.Weight.Grad!.ToFloatArray();
        });
        foreach (var g in grads) Helpers.AllClose(whole.Weight.Grad!, Tensor.From(g, [3, 4]), 1e-6, "rank gradient");
    }

    [Fact]
    public void Sharded_loaders_together_give_the_single_process_batches()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Tensor.Zeros([10, 2]), new int[10], 2, shard: (0, 3)));   // a rank would get no rows
        var x = Tensor.From(Enumerable.Range(0, 50).Select(i => (float)i).ToArray(), [25, 2]);
        var y = Enumerable.Range(0, 25).ToArray();
        var whole = new DataLoader(x, y, 8, shuffle: true, generator: new Generator(4)).Select(b => b.Y).ToList();
        var shards = Enumerable.Range(0, 3).Select(r => new DataLoader(x, y, 8, shuffle: true, generator: new Generator(4), shard: (r, 3)).Select(b => b.Y).ToList()).ToList();
        Assert.All(shards, s => Assert.Equal(3, s.Count));   // the last batch, 1 row for 3 ranks, is skipped on every rank
        for (int b = 0; b < 3; b++) Assert.Equal(whole[b], shards.SelectMany(s => s[b]).ToArray());
        // with a transform, the whole batch is transformed before slicing: the same images as one process sees
        var flip = Augment.RandomHorizontalFlip(1, 1, 2);
        var one = new DataLoader(x, y, 8, shuffle: true, generator: new Generator(5), transform: flip).Select(b => b.X.ToFloatArray()).ToList();
        var two = Enumerable.Range(0, 2).Select(r => new DataLoader(x, y, 8, shuffle: true, generator: new Generator(5), transform: flip, shard: (r, 2))
            .Select(b => b.X.ToFloatArray()).ToList()).ToList();
        for (int b = 0; b < 3; b++) Assert.Equal(one[b], two[0][b].Concat(two[1][b]).ToArray());
    }
}
