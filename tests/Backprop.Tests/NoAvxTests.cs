using System.Diagnostics;

namespace Backprop.Tests;

/// <summary>
/// The code paths of a CPU without AVX (SSE-only x64; the shape of Arm64's NEON path): the CLI run in a process with
/// DOTNET_EnableAVX=0, so the 128-bit GEMM microkernel and SSE transposes carry every product.
/// </summary>
[Collection("console")]
public sealed class NoAvxTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-noavx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static (int Code, string Out, string Err) RunWithoutAvx(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_EnableAVX"] = "0";
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(entireProcessTree: true); throw new TimeoutException("the CLI ran over 5 minutes"); }
        return (p.ExitCode, output.Result, error.Result);
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
