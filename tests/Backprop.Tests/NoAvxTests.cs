using System.Diagnostics;

namespace Backprop.Tests;

/// <summary>
/// The code paths of narrower CPUs on this one: the CLI run in a process whose runtime stops at a narrower vector width.
/// DOTNET_EnableAVX=0 is a CPU without AVX (SSE-only x64; the shape of Arm64's NEON path), so the 128-bit GEMM
/// microkernel and SSE transposes carry every product; the kernel oracle runs at each width down to scalar code.
/// </summary>
[Collection("console")]
public sealed class NoAvxTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-noavx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static (int Code, string Out, string Err) RunWithoutAvx(params string[] args) => RunWith("DOTNET_EnableAVX", "0", args);

    static (int Code, string Out, string Err) RunWith(string? setting, string value, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        if (setting is not null) info.Environment[setting] = value;
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(entireProcessTree: true); throw new TimeoutException("the CLI ran over 5 minutes"); }
        return (p.ExitCode, output.Result, error.Result);
    }

    // On x64 each setting stops the runtime at the width named (on an Arm64 machine, whose NEON is 128-bit, only the last).
    [Theory]
    [InlineData("DOTNET_EnableAVX512", "0", "Vector256")]              // an AVX2 CPU
    [InlineData("DOTNET_PreferredVectorBitWidth", "128", "Vector128")]  // 128-bit vectors with fused multiply-adds (NEON's shape)
    [InlineData("DOTNET_EnableAVX2", "0", "Vector128")]                // 128-bit vectors without them (SSE's)
    [InlineData("DOTNET_EnableHWIntrinsic", "0", "Scalar")]
    public void Every_kernel_matches_the_reference_backend_on_each_narrower_path(string setting, string value, string vectors)
    {
        var (code, output, err) = RunWith(setting, value, "gradcheck", "--kernels");
        Assert.True(code == 0, output + err);
        Assert.Matches(@"(\d+)/\1 SIMD kernels within", output);
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64 || vectors == "Scalar")
            Assert.Contains($"vectors: {vectors} ", output);
    }

    [Fact]
    public void Bench_isa_runs_every_kernel_on_the_narrower_path()
    {
        var (code, output, err) = RunWith(null, "", "bench", "--workload", "W5", "--repetitions", "1", "--isa", "vector128");
        Assert.True(code == 0, output + err);
        Assert.Contains("vectors: Vector128;", output);   // the runtime's own width, not only the matrix kernels'
        Assert.Matches(@"W5 .* µs/call", output);
    }

    [Fact]
    public void Every_gradient_check_passes_without_avx()
    {
        var (code, output, err) = RunWithoutAvx("gradcheck");
        Assert.True(code == 0, output + err);
        Assert.Matches(@"(\d+)/\1 below 1e-8", output);
    }

    [Fact]
    public void Training_without_avx_reaches_the_same_accuracy()
    {
        string[] run = ["train", "--hidden", "32", "--epochs", "1", "--batch-size", "64", "--seed", "3"];
        var (code, output, err) = RunWithoutAvx([.. run, "--out", Path.Combine(dir, "sse")]);
        Assert.True(code == 0, output + err);
        var (c2, withAvx, e2) = Helpers.RunCli([.. run, "--out", Path.Combine(dir, "avx")]);
        Assert.True(c2 == 0, e2);
        double Accuracy(string text) => double.Parse(System.Text.RegularExpressions.Regex.Match(text, @"test accuracy: ([\d.]+)%").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(Accuracy(output), Accuracy(withAvx) - 0.3, Accuracy(withAvx) + 0.3);   // the same training, rounded differently
    }
}
