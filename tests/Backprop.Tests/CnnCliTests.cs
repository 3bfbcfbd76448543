using System.Text.Json;
using SkiaSharp;

namespace Backprop.Tests;

/// <summary>
/// The CNN end to end: one epoch of the mnist-cnn preset on the repository's MNIST copy writes a run folder with
/// filters.png, evaluates identically, and classifies digits drawn here with the imaging library (not from the dataset).
/// </summary>
[Collection("console")]
public sealed class CnnCliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-cnn-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Mnist_cnn_trains_evaluates_and_predicts_digits_drawn_outside_the_dataset()
    {
        string run = Path.Combine(dir, "run");
        var (code, output, err) = Helpers.RunCli("train", "--preset", "mnist-cnn", "--epochs", "1", "--out", run);
        Assert.True(code == 0, err);
        Assert.Contains("conv 32,64 (5×5)", output);
        foreach (var f in new[] { "filters.png", "loss.png", "accuracy.png", "confusion.png", "model.safetensors", "summary.json" })
            Assert.True(new FileInfo(Path.Combine(run, f)).Length > 0, $"{f} is missing or empty");
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        double test = summary.RootElement.GetProperty("test_accuracy").GetDouble();
        Assert.InRange(test, 0.98, 1.0);   // one epoch of the classic 2-conv network

        string model = Path.Combine(run, "model.safetensors");
        var (evalCode, evalOut, evalErr) = Helpers.RunCli("eval", "--model", model, "--tta");
        Assert.True(evalCode == 0, evalErr);
        Assert.Contains($"test accuracy: {test * 100:0.00}%", evalOut);
        Assert.Matches(@"; with flip averaging \d+\.\d\d%", evalOut);   // digits mirrored: a legal request, a worse figure

        string one = Draw("one.png", white: true, c => c.DrawLine(140, 40, 140, 240, Stroke(SKColors.White)));
        string zero = Draw("zero.png", white: true, c => c.DrawOval(140, 140, 65, 95, Stroke(SKColors.White)));
        string seven = Draw("seven.png", white: true, c =>
        {
            using var p = new SKPath();
            p.MoveTo(60, 50); p.LineTo(215, 50); p.LineTo(115, 240);
            c.DrawPath(p, Stroke(SKColors.White));
        });
        string oneOnPaper = Draw("one-paper.jpg", white: false, c => c.DrawLine(140, 40, 140, 240, Stroke(SKColors.Black)));
        var (pc, pout, perr) = Helpers.RunCli("predict", "--model", model, one, zero, seven, oneOnPaper);
        Assert.True(pc == 0, perr);
        var lines = pout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        string Top(int i) => lines[i].Split(": ")[1].Split(' ')[0];
        Assert.True(Top(0) == "1" && Top(1) == "0" && Top(2) == "7" && Top(3) == "1", pout);   // the last is dark on light: inverted as MNIST's light on dark
        Assert.Equal(3, lines[0].Split(", ").Length);   // top-3 with probabilities

        var (bad, _, badErr) = Helpers.RunCli("predict", "--model", model, Path.Combine(run, "summary.json"));
        Assert.NotEqual(0, bad);
        Assert.Contains("not an image", badErr);
    }

    [Fact]
    public void A_whitening_stem_and_gelu_are_saved_with_the_model_so_eval_rebuilds_the_same_network()
    {
        string run = Path.Combine(dir, "whitened");
        var (code, output, err) = Helpers.RunCli("train", "--model", "cnn", "--conv", "8", "--hidden", "", "--whiten", "2", "--activation", "gelu",
            "--batchnorm", "--pool-first", "--momentum", "0.9", "--lr", "0.05", "--batch-size", "128", "--epochs", "1", "--test-size", "2000", "--out", run);
        Assert.True(code == 0, err);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var hyper = summary.RootElement.GetProperty("hyperparameters");
        Assert.Equal((2, "gelu"), (hyper.GetProperty("whiten").GetInt32(), hyper.GetProperty("activation").GetString()));
        double test = summary.RootElement.GetProperty("test_accuracy").GetDouble();
        Assert.InRange(test, 0.95, 1.0);
        var (evalCode, evalOut, evalErr) = Helpers.RunCli("eval", "--model", Path.Combine(run, "model.safetensors"));
        Assert.True(evalCode == 0, evalErr);
        Assert.Contains($"test accuracy: {test * 100:0.00}%", evalOut);
        var (bad, _, badErr) = Helpers.RunCli("train", "--model", "cnn", "--whiten", "40", "--epochs", "1", "--out", Path.Combine(dir, "bad"));
        Assert.NotEqual(0, bad);
        Assert.Contains("whitening stem does not fit", badErr);
    }

    [Fact]
    public void The_airbench_recipe_trains_and_eval_rebuilds_its_network_and_test_time_augmentation_from_the_saved_settings()
    {
        string run = Path.Combine(dir, "airbench");
        var (code, output, err) = Helpers.RunCli("train", "--model", "cnn", "--conv", "8,16", "--convs-per-stage", "2", "--hidden", "", "--whiten", "2", "--activation", "gelu",
            "--batchnorm", "--pool-first", "--style", "airbench", "--bias-lr-scale", "64", "--lookahead", "--schedule", "one-cycle", "--augment", "translate-flip",
            "--tta", "--tta-translate", "--momentum", "0.85", "--nesterov", "--lr", "0.2", "--weight-decay", "1.33e-3", "--label-smoothing", "0.2",
            "--batch-size", "128", "--epochs", "2", "--test-size", "2000", "--out", run);
        Assert.True(code == 0, err);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var hyper = summary.RootElement.GetProperty("hyperparameters");
        Assert.Equal(("airbench", 64.0, true, true), (hyper.GetProperty("style").GetString(), hyper.GetProperty("bias_lr_scale").GetDouble(),
            hyper.GetProperty("lookahead").GetBoolean(), hyper.GetProperty("tta_translate").GetBoolean()));
        double test = summary.RootElement.GetProperty("test_accuracy").GetDouble();
        double tta = summary.RootElement.GetProperty("test_accuracy_flip_averaged").GetDouble();
        Assert.InRange(test, 0.9, 1.0);   // flips are a poor augmentation for digits: this checks the plumbing, not the recipe
        var (evalCode, evalOut, evalErr) = Helpers.RunCli("eval", "--model", Path.Combine(run, "model.safetensors"));
        Assert.True(evalCode == 0, evalErr);
        Assert.Contains($"test accuracy: {test * 100:0.00}%", evalOut);
        Assert.Contains($"{tta * 100:0.00}%", evalOut);
        var (bad, _, badErr) = Helpers.RunCli("train", "--model", "cnn", "--optimizer", "adam", "--bias-lr-scale", "8", "--epochs", "1", "--out", Path.Combine(dir, "bad-adam"));
        Assert.NotEqual(0, bad);
        Assert.Contains("--bias-lr-scale: only for sgd", badErr);
    }

    [Fact]
    public void The_whitening_bias_stops_training_after_its_epochs_while_the_rest_trains_on()
    {
        string[] Args(string run) => ["train", "--model", "cnn", "--conv", "8", "--hidden", "", "--whiten", "2", "--batchnorm", "--pool-first", "--whiten-bias-epochs", "1",
            "--momentum", "0.9", "--weight-decay", "5e-4", "--lr", "0.05", "--batch-size", "256", "--epochs", "2", "--test-size", "500", "--out", run];
        string first = Path.Combine(dir, "bias-epoch1"), both = Path.Combine(dir, "bias-epoch2");
        var (code1, _, err1) = Helpers.RunCli([.. Args(first), "--stop-after", "1"]);
        Assert.True(code1 == 0, err1);
        var (code2, _, err2) = Helpers.RunCli(Args(both));
        Assert.True(code2 == 0, err2);
        var afterOne = Backprop.Serialization.SafeTensors.Load(Path.Combine(first, "checkpoint.safetensors")).Tensors;
        var final = Backprop.Serialization.SafeTensors.Load(Path.Combine(both, "model.safetensors")).Tensors;
        Assert.Equal(afterOne["model.1.bias"].ToFloatArray(), final["1.bias"].ToFloatArray());           // the stem's bias: frozen after epoch 1 (no decay, no momentum)
        Assert.NotEqual(afterOne["model.3.weight"].ToFloatArray(), final["3.weight"].ToFloatArray());    // the convolution after it trained on
    }

    static SKPaint Stroke(SKColor color) => new() { Color = color, StrokeWidth = 24, Style = SKPaintStyle.Stroke, IsAntialias = true, StrokeCap = SKStrokeCap.Round };

    string Draw(string name, bool white, Action<SKCanvas> draw)
    {
        using var bmp = new SKBitmap(280, 280);
        using (var c = new SKCanvas(bmp))
        {
            c.Clear(white ? SKColors.Black : SKColors.White);
            draw(c);
        }
        string path = Path.Combine(dir, name);
        using var data = bmp.Encode(name.EndsWith(".png") ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 90);
        using var f = File.Create(path);
        data.SaveTo(f);
        return path;
    }
}
