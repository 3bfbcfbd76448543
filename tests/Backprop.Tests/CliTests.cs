using System.Text.Json;
using Backprop.Cli;

namespace Backprop.Tests;

/// <summary>The backprop command end to end on the repository's MNIST copy (one short epoch per run).</summary>
[Collection("console")]   // these redirect Console; keep them off other tests' threads
public sealed class CliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-cli-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static (int Code, string Out, string Err) Run(params string[] args) => Helpers.RunCli(args);

    string[] Quick(string outDir) => ["train", "--hidden", "32", "--epochs", "2", "--lr-step", "1", "--batch-size", "64", "--seed", "7", "--out", outDir];

    [Fact]
    public void Train_writes_a_complete_run_folder_and_the_model_evaluates_identically()
    {
        string run = Path.Combine(dir, "run");
        var (code, output, err) = Run(Quick(run));
        Assert.True(code == 0, err);
        foreach (var f in new[] { "metrics.csv", "summary.json", "loss.png", "accuracy.png", "weights.png", "confusion.png", "model.safetensors", "command.txt" })
            Assert.True(new FileInfo(Path.Combine(run, f)).Length > 0, $"{f} is missing or empty");

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var r = summary.RootElement;
        foreach (var key in new[] { "dataset", "model", "hyperparameters", "seed", "epochs", "train_accuracy", "val_accuracy", "test_accuracy", "final_train_loss", "seconds" })
            Assert.True(r.TryGetProperty(key, out _), $"summary.json lacks {key}");
        double test = r.GetProperty("test_accuracy").GetDouble();
        Assert.InRange(test, 0.9, 1.0);   // two epochs of a 784-32-10 MLP already clear 90%
        Assert.Equal(64, r.GetProperty("hyperparameters").GetProperty("batch_size").GetInt32());

        var (evalCode, evalOut, _) = Run("eval", "--model", Path.Combine(run, "model.safetensors"));
        Assert.Equal(0, evalCode);
        Assert.Contains($"test accuracy: {test * 100:0.00}%", evalOut);
        Assert.Contains("confusion matrix", evalOut);
    }

    [Fact]
    public void Without_a_validation_split_the_epochs_report_no_validation_accuracy_rather_than_zero()
    {
        string run = Path.Combine(dir, "noval");
        var (code, output, err) = Run([.. Quick(run), "--val-size", "0"]);
        Assert.True(code == 0, err);
        Assert.Contains("60000 train / 0 validation", output);
        var epochLines = output.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length == 7 && c[0] is "1" or "2").ToArray();
        Assert.Equal(2, epochLines.Length);
        Assert.All(epochLines, c => Assert.Equal("-", c[3]));   // epoch, train loss, train acc, val acc, lr, seconds, samples/s
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.csv"))[1..];
        Assert.Equal(2, rows.Length);
        Assert.All(rows, row => Assert.Equal("", row.Split(',')[3]));   // val_accuracy left empty
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        Assert.InRange(summary.RootElement.GetProperty("test_accuracy").GetDouble(), 0.9, 1.0);
    }

    [Fact]
    public void The_same_seed_gives_an_identical_metrics_file_apart_from_timing()
    {
        string[] Metrics(string run)
        {
            Assert.Equal(0, Run(Quick(run)).Code);
            // columns: epoch,train_loss,train_accuracy,val_accuracy,lr,seconds,samples_per_second — drop the last two
            return File.ReadAllLines(Path.Combine(run, "metrics.csv")).Select(l => string.Join(",", l.Split(',')[..5])).ToArray();
        }
        var a = Metrics(Path.Combine(dir, "a"));
        var b = Metrics(Path.Combine(dir, "b"));
        Assert.Equal(3, a.Length);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Toy_reproduces_the_notebooks_final_training_loss()
    {
        var (code, output, err) = Run("toy");
        Assert.True(code == 0, output + err);   // exit 0: scores, loss, gradient check and final loss all match the exercise
        string line = output.Split('\n').Single(l => l.StartsWith("final training loss:"));
        double final = double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], System.Globalization.CultureInfo.InvariantCulture);
        Helpers.Close(0.017149607938732093, final, 1e-12, "stats['loss_history'][-1]");
    }

    [Theory]
    [InlineData("train", "--lr", "abc")]
    [InlineData("train", "--hidden", "0")]
    [InlineData("train", "--activation", "swish")]
    [InlineData("train", "--dropout", "1.5")]
    [InlineData("train", "--no-such-option")]
    [InlineData("train", "--preset", "nope")]
    [InlineData("train", "--test-size", "0")]
    [InlineData("cifar10-two-layer", "--lr", "1e-3,1e-4")]   // a list needs --search
    [InlineData("cifar10-two-layer", "--hidden", "0")]
    [InlineData("cifar10-two-layer", "--reg", "-1")]
    [InlineData("cifar10-two-layer", "--dtype", "half")]
    public void An_invalid_option_gives_one_clear_line_and_exit_code_2(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("backprop: ", err);
    }

    [Fact]
    public void Help_lists_every_option_with_its_default()
    {
        var (code, output, _) = Run("train", "--help");
        Assert.Equal(0, code);
        foreach (var opt in new[] { "--dataset", "--data", "--model", "--hidden", "--activation", "--dropout", "--batchnorm", "--optimizer", "--lr", "--momentum",
            "--weight-decay", "--lr-step", "--lr-gamma", "--epochs", "--batch-size", "--seed", "--out", "--dtype", "--threads", "--preset" })
            Assert.Contains(opt + " ", output);
        Assert.Contains("[default: 0.1]", output);
    }
}
