using System.Text.Json;
using Backprop.Cli;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

namespace Backprop.Tests;

/// <summary>
/// eval, predict and export on every model file the CLI writes (train, multitask, vae, cifar10-two-layer), and on a
/// weights file PyTorch wrote (a state dict without Backprop's metadata) given an architecture spec.
/// </summary>
[Collection("console")]
public sealed class InteropCliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-interop-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", name);

    [Fact]
    public void A_pytorch_mlp_with_an_architecture_spec_evaluates_as_in_pytorch_predicts_and_exports()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Fixture("mnist_mlp.json")));
        string arch = expected.RootElement.GetProperty("arch").GetString()!;   // mlp:784-64-10:batchnorm:dropout=0.2
        double accuracy = expected.RootElement.GetProperty("test_accuracy").GetDouble();
        string model = Fixture("mnist_mlp.safetensors");

        var (code, output, err) = Helpers.RunCli("eval", "--model", model, "--arch", arch);
        Assert.True(code == 0, err);
        double ours = double.Parse(output.Split("test accuracy: ")[1].Split('%')[0], System.Globalization.CultureInfo.InvariantCulture) / 100;
        Assert.True(Math.Abs(ours - accuracy) <= 0.0005, $"Backprop {ours:P2}, PyTorch {accuracy:P2}");   // 10,000 images: at most 5 may differ by rounding

        var (none, _, noneErr) = Helpers.RunCli("eval", "--model", model);
        Assert.Equal(1, none);
        Assert.Contains("--arch", noneErr);
        var (wrong, _, wrongErr) = Helpers.RunCli("eval", "--model", model, "--arch", "mlp:784-32-10");
        Assert.Equal(1, wrong);
        Assert.Contains("layers are", wrongErr);
        Assert.Contains("--arch 'mlp:784-64-10:gelu'", Helpers.RunCli("eval", "--model", model, "--arch", "mlp:784-64-10:gelu").Err);

        var (pc, pout, perr) = Helpers.RunCli("predict", "--model", model, "--arch", arch, DrawOne());
        Assert.True(pc == 0, perr);
        Assert.StartsWith("1 ", pout.Split(": ")[1]);

        AssertExportRunsInOnnxRuntime(model, ["--arch", arch], [784], "logits");
    }

    [Fact]
    public void Train_and_multitask_models_evaluate_predict_and_export()
    {
        string run = Path.Combine(dir, "mlp");
        var (code, _, err) = Helpers.RunCli("train", "--hidden", "32", "--batchnorm", "--dropout", "0.1", "--epochs", "1", "--batch-size", "128", "--out", run);
        Assert.True(code == 0, err);
        string model = Path.Combine(run, "model.safetensors");
        Assert.Contains("test accuracy:", Helpers.RunCli("eval", "--model", model).Out);
        Assert.StartsWith("1 ", Helpers.RunCli("predict", "--model", model, DrawOne()).Out.Split(": ")[1]);
        AssertExportRunsInOnnxRuntime(model, [], [784], "logits");

        run = Path.Combine(dir, "multitask");
        (code, _, err) = Helpers.RunCli("multitask", "--epochs", "1", "--hidden-a", "32", "--batch-size", "128", "--bn-before-relu", "--out", run);
        Assert.True(code == 0, err);
        model = Path.Combine(run, "model.safetensors");
        var (ec, eout, eerr) = Helpers.RunCli("eval", "--model", model);
        Assert.True(ec == 0, eerr);
        Assert.Contains("Task B", eout);
        Assert.InRange(double.Parse(eout.Split("test accuracy: ")[1].Split('%')[0], System.Globalization.CultureInfo.InvariantCulture), 85, 100);
        Assert.StartsWith("1 ", Helpers.RunCli("predict", "--model", model, DrawOne()).Out.Split(": ")[1]);
        AssertExportRunsInOnnxRuntime(model, [], [784], "ya_hat", "logits");
    }

    [Fact]
    public void Vae_and_two_layer_models_evaluate_and_export()
    {
        string run = Path.Combine(dir, "vae");
        var (code, _, err) = Helpers.RunCli("vae", "--epochs", "1", "--hidden", "64", "--latent", "4", "--batch-size", "256", "--out", run);
        Assert.True(code == 0, err);
        string model = Path.Combine(run, "model.safetensors");
        var (ec, eout, eerr) = Helpers.RunCli("eval", "--model", model);
        Assert.True(ec == 0, eerr);
        Assert.Contains("test negative ELBO:", eout);
        var (pc, _, perr) = Helpers.RunCli("predict", "--model", model, DrawOne());
        Assert.Equal(2, pc);   // a usage error: a VAE does not classify
        Assert.Contains("VAE", perr);
        AssertExportRunsInOnnxRuntime(model, [], [784], "mu", "log_var");   // the encoder; the decoder file is checked below
        Assert.True(File.Exists(Path.Combine(dir, "exported-decoder.onnx")));
        using (var decoder = new InferenceSession(Path.Combine(dir, "exported-decoder.onnx")))
            Assert.Equal([-1, 784], decoder.OutputMetadata["reconstruction"].Dimensions);

        run = Path.Combine(dir, "two-layer");
        (code, _, err) = Helpers.RunCli("cifar10-two-layer", "--iters", "30", "--out", run);
        Assert.True(code == 0, err);
        model = Path.Combine(run, "model.safetensors");
        (ec, eout, eerr) = Helpers.RunCli("eval", "--model", model);
        Assert.True(ec == 0, eerr);
        Assert.Contains("test accuracy:", eout);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.Contains($"test accuracy: {summary.RootElement.GetProperty("test_accuracy").GetDouble() * 100:0.00}%", eout);
        AssertExportRunsInOnnxRuntime(model, [], [3072], "scores");
    }

    // export --onnx, then ONNX Runtime on 5 random inputs agrees with the model loaded as eval/predict load it.
    void AssertExportRunsInOnnxRuntime(string model, string[] extra, int[] sample, params string[] outputs)
    {
        string onnx = Path.Combine(dir, "exported.onnx");
        var (code, output, err) = Helpers.RunCli(["export", "--model", model, "--onnx", onnx, .. extra]);
        Assert.True(code == 0, err);
        Assert.Contains("wrote", output);
        var file = ModelFile.Load(model, extra.Length > 0 ? extra[1] : null);
        string path = file.Graphs.Count > 1 ? Path.Combine(dir, "exported" + file.Graphs[0].Suffix + ".onnx") : onnx;
        using var session = new InferenceSession(path);
        Assert.Equal(outputs, session.OutputMetadata.Keys.ToArray());
        var x = Tensor.Uniform([5, .. sample], 0, 1, new Generator(3));
        var expected = OnnxExportTests.Expected(file.Graphs[0].Outputs, x);
        var actual = OnnxExportTests.OrtRun(session, "input", x);
        foreach (var name in outputs) OnnxExportTests.AssertClose(expected[name], actual[name], $"{model} {name}");
    }

    string DrawOne()
    {
        string path = Path.Combine(dir, "one.png");
        if (File.Exists(path)) return path;
        using var bmp = new SKBitmap(280, 280);
        using (var c = new SKCanvas(bmp))
        {
            c.Clear(SKColors.Black);
            using var paint = new SKPaint { Color = SKColors.White, StrokeWidth = 24, Style = SKPaintStyle.Stroke, IsAntialias = true, StrokeCap = SKStrokeCap.Round };
            c.DrawLine(140, 40, 140, 240, paint);
        }
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 90);
        using var f = File.Create(path);
        data.SaveTo(f);
        return path;
    }
}
