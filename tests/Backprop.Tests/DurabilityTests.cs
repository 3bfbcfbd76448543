using System.Diagnostics;
using System.Text.Json;
using Backprop.Cli;
using Backprop.Serialization;

namespace Backprop.Tests;

/// <summary>Files are replaced atomically: readers, racing writers and killed processes never see a torn file or leave temporaries.</summary>
public class DurabilityTests
{
    [Fact]
    public async Task Racing_writers_and_a_reader_only_ever_see_whole_files_and_no_temporary_is_left()
    {
        string dir = Directory.CreateTempSubdirectory("bp-atomic-").FullName;
        string path = Path.Combine(dir, "model.bin");
        AtomicFile.Write(path, s => s.Write(Content(0)));
        int torn = 0, reads = 0;
        using var stop = new CancellationTokenSource();
        using var reading = new ManualResetEventSlim();
        // Its own thread, and the writers wait for its first read: on a busy 2-core machine the pool may not schedule it in time.
        var reader = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var bytes = File.ReadAllBytes(path);
                reads++;
                reading.Set();
                if (!IsWhole(bytes)) Interlocked.Increment(ref torn);
            }
        }, TaskCreationOptions.LongRunning);
        Assert.True(reading.Wait(TimeSpan.FromMinutes(1)) || reader.IsFaulted, "the reader never started");
        Parallel.For(0, 8, t => { for (int i = 1; i <= 25; i++) AtomicFile.Write(path, s => s.Write(Content(t * 100 + i))); });
        stop.Cancel();
        await reader;
        Assert.Equal(0, torn);
        Assert.True(reads > 0);
        Assert.Equal(["model.bin"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).ToArray());
    }

    [Fact]
    public void A_failing_write_leaves_the_previous_file_and_no_temporary()
    {
        string dir = Directory.CreateTempSubdirectory("bp-atomic-").FullName;
        string path = Path.Combine(dir, "summary.json");
        AtomicFile.WriteAllText(path, "{\"ok\": true}");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.Write(new byte[100]); throw new InvalidOperationException("disk full"); }));
        Assert.Equal("{\"ok\": true}", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir));
    }

    // 64 KB of one byte value, prefixed by that value: whole iff every byte matches.
    static byte[] Content(int k) => Enumerable.Repeat((byte)(k % 251), 65536).ToArray();
    static bool IsWhole(byte[] b) => b.Length == 65536 && Array.TrueForAll(b, v => v == b[0]);

    [Fact]
    public void Killing_training_at_random_moments_never_leaves_a_corrupt_file_or_a_temporary()
    {
        string cli = typeof(Cli.Cli).Assembly.Location;
        var random = new Random(12345);
        string dir = Directory.CreateTempSubdirectory("bp-kill-").FullName;
        int killed = 0, finished = 0;
        for (int trial = 0; trial < 50; trial++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { cli, "train", "--preset", "mnist-quick", "--epochs", "2", "--hidden", "8", "--out", dir, "--overwrite", "--threads", "1" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(random.Next(300, 2500))) { p.Kill(); killed++; }
            else finished++;
            p.WaitForExit();
            AtomicFile.RemoveStale(dir);   // what the next write into the folder does first
            CheckFolder(dir, trial);
        }
        Assert.True(killed >= 25, $"only {killed} of 50 runs were killed before finishing");
        Assert.True(finished + killed == 50);
    }

    static void CheckFolder(string dir, int trial)
    {
        var names = Directory.GetFiles(dir).Select(Path.GetFileName).ToArray();
        Assert.DoesNotContain(names, n => n!.EndsWith(".tmp", StringComparison.Ordinal));
        string model = Path.Combine(dir, "model.safetensors");
        if (File.Exists(model))
        {
            var (tensors, _) = SafeTensors.Load(model);
            Assert.True(tensors.Count > 0, $"trial {trial}: empty model");
        }
        string checkpoint = Path.Combine(dir, Checkpoint.FileName);
        if (File.Exists(checkpoint)) Assert.NotEmpty(SafeTensors.Load(checkpoint).Tensors);
        string summary = Path.Combine(dir, "summary.json");
        if (File.Exists(summary)) using (JsonDocument.Parse(File.ReadAllText(summary))) { }
        string metrics = Path.Combine(dir, "metrics.csv");
        if (File.Exists(metrics))
        {
            var lines = File.ReadAllLines(metrics);
            Assert.All(lines, l => Assert.Equal(lines[0].Count(c => c == ','), l.Count(c => c == ',')));
        }
        foreach (var png in names.Where(n => n!.EndsWith(".png", StringComparison.Ordinal)))
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(Path.Combine(dir, png!))[..4]);
    }
}

/// <summary>A run folder holds one run: an earlier run's folder is refused unless --overwrite, and a failed load creates none.</summary>
[Collection("console")]
public class RunFolderTests
{
    [Fact]
    public void An_existing_run_folder_is_refused_without_overwrite_and_replaced_with_it()
    {
        string dir = Directory.CreateTempSubdirectory("bp-out-").FullName;
        File.WriteAllText(Path.Combine(dir, "metrics.csv"), "old");
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "the user's own file");
        var (code, _, err) = Helpers.RunCli("train", "--preset", "mnist-quick", "--epochs", "1", "--hidden", "8", "--out", dir);
        Assert.Equal(2, code);
        Assert.Contains("--overwrite", err);
        Assert.Equal("old", File.ReadAllText(Path.Combine(dir, "metrics.csv")));
        (code, _, _) = Helpers.RunCli("train", "--preset", "mnist-quick", "--epochs", "1", "--hidden", "8", "--out", dir, "--overwrite");
        Assert.Equal(0, code);
        Assert.StartsWith("epoch,", File.ReadAllText(Path.Combine(dir, "metrics.csv")));
        Assert.Equal("the user's own file", File.ReadAllText(Path.Combine(dir, "notes.txt")));   // only a run's own files are replaced
    }

    [Fact]
    public void A_dataset_that_fails_to_load_leaves_no_run_folder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "bp-noload-" + Guid.NewGuid());
        var (code, _, _) = Helpers.RunCli("cifar10-two-layer", "--data", Path.Combine(dir, "missing-data"), "--out", dir);
        Assert.NotEqual(0, code);
        Assert.False(Directory.Exists(dir));
    }
}

/// <summary>A run stopped after any epoch and resumed ends exactly where the uninterrupted run does.</summary>
[Collection("console")]
public class ResumeTests
{
    static readonly string[] Options = ["train", "--preset", "mnist-quick", "--hidden", "32", "--dropout", "0.2", "--batchnorm", "--epochs", "6",
        "--schedule", "cosine", "--optimizer", "adam", "--lr", "0.002", "--checkpoint-every", "1"];

    static string Run(params string[] extra)
    {
        var (code, _, err) = Helpers.RunCli([.. Options, .. extra]);
        Assert.True(code == 0, err);
        return "";
    }

    static string[] MetricsWithoutTiming(string dir) =>
        [.. File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Select(l => string.Join(",", l.Split(',')[..5]))];

    static Dictionary<string, float[]> Weights(string dir) =>
        SafeTensors.Load(Path.Combine(dir, "model.safetensors")).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.ToFloatArray());

    [Fact]
    public void Resuming_a_lookahead_run_after_its_average_exists_equals_the_uninterrupted_run_bitwise()
    {
        // Averaging starts after 2 of 6 epochs (30%, rounded up to an epoch); resumed after epoch 3, the average must come back.
        string whole = Directory.CreateTempSubdirectory("bp-la-whole-").FullName;
        Run("--out", whole, "--overwrite", "--lookahead");
        string dir = Directory.CreateTempSubdirectory("bp-la-resume-").FullName;
        Run("--out", dir, "--overwrite", "--lookahead", "--stop-after", "3");
        Run("--resume", dir, "--lookahead");
        Assert.Equal(MetricsWithoutTiming(whole), MetricsWithoutTiming(dir));
        var expected = Weights(whole);
        foreach (var (name, w) in Weights(dir)) Assert.True(w.AsSpan().SequenceEqual(expected[name]), $"{name} differs after resuming");
    }

    [Fact]
    public void Resuming_after_epochs_1_3_and_5_of_6_with_dropout_and_batchnorm_equals_the_uninterrupted_run_bitwise()
    {
        string whole = Directory.CreateTempSubdirectory("bp-whole-").FullName;
        Run("--out", whole, "--overwrite");
        var expectedWeights = Weights(whole);
        var expectedMetrics = MetricsWithoutTiming(whole);
        foreach (int k in new[] { 1, 3, 5 })
        {
            string dir = Directory.CreateTempSubdirectory($"bp-resume{k}-").FullName;
            Run("--out", dir, "--overwrite", "--stop-after", k.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
            Assert.Equal(k + 1, File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Length);
            Run("--resume", dir);
            Assert.Equal(expectedMetrics, MetricsWithoutTiming(dir));
            var weights = Weights(dir);
            Assert.Equal(expectedWeights.Keys.Order(), weights.Keys.Order());
            foreach (var (name, w) in expectedWeights) Assert.True(w.AsSpan().SequenceEqual(weights[name]), $"after resuming from epoch {k}: {name} differs");
        }
    }

    [Fact]
    public void Resuming_with_other_options_is_refused()
    {
        string dir = Directory.CreateTempSubdirectory("bp-resume-x-").FullName;
        Run("--out", dir, "--overwrite", "--stop-after", "1");
        var (code, _, err) = Helpers.RunCli([.. Options.Select(o => o == "0.002" ? "0.003" : o), "--resume", dir]);
        Assert.Equal(2, code);
        Assert.Contains("other options", err);
    }
}

/// <summary>Ctrl-C (SIGINT) ends a run cleanly: the current step finishes, everything is written, exit 130.</summary>
public class InterruptTests
{
    [Fact]
    public async Task Sigint_during_training_leaves_checkpoint_summary_and_plots_and_exits_130()
    {
        string cli = typeof(Cli.Cli).Assembly.Location;
        string dir = Directory.CreateTempSubdirectory("bp-sigint-").FullName;
        // Through `env --default-signal=INT`, which execs dotnet in the same process: a process started from a shell's
        // background job inherits SIGINT ignored (as nohup intends), .NET then installs no handler, and the signal
        // would do nothing — a CI started with `&` failed this test that way.
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--default-signal=INT");
        psi.ArgumentList.Add("dotnet");
        // Far more epochs than the test waits for, so the run is still training when the signal comes.
        foreach (var a in new[] { cli, "train", "--preset", "mnist-quick", "--epochs", "1000", "--hidden", "16", "--out", dir, "--overwrite", "--threads", "1" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        string checkpoint = Path.Combine(dir, Checkpoint.FileName);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(checkpoint) && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(50);   // not awaited: a busy thread pool must not delay the poll
        if (!File.Exists(checkpoint)) p.Kill();
        Assert.True(File.Exists(checkpoint), "no checkpoint within 60 s");
        Thread.Sleep(300);   // into the next epoch
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(120))) { p.Kill(); Assert.Fail("the run did not end within 120 s of SIGINT"); }
        string err = await stderr; await stdout;
        Assert.Equal(130, p.ExitCode);
        Assert.Matches(@"interrupted at epoch \d+, step \d+", err);
        Assert.Contains("--resume", err);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        Assert.True(summary.RootElement.GetProperty("interrupted").GetBoolean());
        Assert.True(File.Exists(Path.Combine(dir, "loss.png")));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }
}

[Collection("console")]
public class MemoryRefusalTests
{
    [Fact]
    public void A_model_that_cannot_fit_in_memory_is_refused_up_front_with_the_size_it_needs_and_no_folder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "bp-huge-" + Guid.NewGuid());
        var (code, _, err) = Helpers.RunCli("train", "--hidden", "100000,100000", "--out", dir);
        Assert.Equal(2, code);
        Assert.Matches(@"needs about [\d.,]+ GiB", err);
        Assert.False(Directory.Exists(dir));
    }
}

/// <summary>
/// Stopping a command after <paramref name="stopAfter"/> epochs and resuming it gives the uninterrupted run's
/// metrics (the first <paramref name="metricColumns"/> columns: timings excluded) and weights, bit for bit.
/// </summary>
static class ResumeCheck
{
    public static void AssertBitwise(string[] options, int stopAfter, int metricColumns)
    {
        void Run(params string[] extra)
        {
            var (code, _, err) = Helpers.RunCli([.. options, .. extra]);
            Assert.True(code == 0, err);
        }
        string[] Metrics(string dir) => [.. File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Select(l => string.Join(",", l.Split(',')[..metricColumns]))];

        string whole = Directory.CreateTempSubdirectory("bp-whole-").FullName;
        Run("--out", whole, "--overwrite");
        string dir = Directory.CreateTempSubdirectory("bp-resume-").FullName;
        Run("--out", dir, "--overwrite", "--stop-after", stopAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Run("--resume", dir);
        Assert.Equal(Metrics(whole), Metrics(dir));
        var a = SafeTensors.Load(Path.Combine(whole, "model.safetensors")).Tensors;
        var b = SafeTensors.Load(Path.Combine(dir, "model.safetensors")).Tensors;
        foreach (var (name, t) in a) Assert.True(t.ToFloatArray().AsSpan().SequenceEqual(b[name].ToFloatArray()), name);
    }
}

/// <summary>The VAE, too, resumes exactly where it stopped.</summary>
[Collection("console")]
public class VaeResumeTests
{
    [Fact]
    public void Resuming_a_vae_after_epoch_1_of_2_equals_the_uninterrupted_run_bitwise() =>
        ResumeCheck.AssertBitwise(["vae", "--epochs", "2", "--hidden", "32", "--latent", "4", "--batch-size", "256"], stopAfter: 1, metricColumns: 7);
}

/// <summary>The multi-task cascade (dropout, BatchNorm, momentum, cosine schedule) resumes exactly where it stopped.</summary>
[Collection("console")]
public class MultiTaskResumeTests
{
    [Fact]
    public void Resuming_the_cascade_after_epoch_2_of_3_equals_the_uninterrupted_run_bitwise() =>
        ResumeCheck.AssertBitwise(["multitask", "--epochs", "3"], stopAfter: 2, metricColumns: 11);
}
