using System.CommandLine;
using Backprop.Data;
using Backprop.Models;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary><c>backprop eval</c>: a saved model's figures on its dataset's test set.</summary>
internal static class EvalCommand
{
    internal static readonly Option<string> ModelOption = new("--model")
    {
        Description = "A model.safetensors written by train, multitask, vae or cifar10-two-layer, or a weights file with --arch", Required = true,
    };
    internal static readonly Option<string?> ArchOption = new("--arch") { Description = ModelFile.ArchHelp };

    public static Command Create()
    {
        var dataset = new Option<string?>("--dataset") { Description = "mnist | cifar10 | idx [default: the dataset the model was trained on]" };
        var data = new Option<string?>("--data") { Description = "Dataset folder [default: as for train]" };
        var tta = new Option<bool>("--tta") { Description = "Also report the accuracy with flip averaging (each image and its mirror, probabilities averaged) [default: as the model was trained]" };
        var cmd = new Command("eval", "Evaluate a saved model on a dataset's test set") { ModelOption, ArchOption, dataset, data, tta };
        cmd.SetAction(r => Run(ModelFile.Load(r.GetValue(ModelOption)!, r.GetValue(ArchOption), r.GetValue(dataset), r.GetValue(data)), r.GetValue(tta)));
        return cmd;
    }

    static int Run(ModelFile file, bool tta)
    {
        switch (file.Kind)
        {
            case ModelKind.Classifier:
            {
                var s = file.Settings!;
                var pair = Experiment.Load(s);
                var test = s.TestSize > 0 ? pair.Test.Subset(0, Math.Min(s.TestSize, pair.Test.Count)) : pair.Test;
                // The normalisation the model was trained with: stored in the file, else refitted on the same training split.
                var prep = file.Prep ?? Experiment.Prepare(s, pair).Preprocessor;
                if (prep.Channels != test.Channels || prep.Height != test.Height || prep.Width != test.Width)
                    throw new ArgumentException($"eval: {file.Path} takes {prep.Channels}×{prep.Height}×{prep.Width} images; {s.Dataset}'s are {test.Channels}×{test.Height}×{test.Width}");
                var x = prep.Apply(test);
                var (accuracy, confusion) = Trainer.Evaluate(file.Net, Experiment.Batches(x, test.LabelsAsInts()), file.Classes.Length);
                double? flipped = tta || s.FlipAveraging
                    ? Trainer.Evaluate(new FlipAveraging(file.Net, prep.Channels, prep.Height, prep.Width, s.TtaTranslate), Experiment.Batches(x, test.LabelsAsInts()), file.Classes.Length).Accuracy
                    : null;
                ConsoleOutput.Line($"test accuracy: {ConsoleOutput.F(accuracy * 100, "0.00")}% ({test.Count} images)" +
                    (flipped is double fa ? $"; with flip{(s.TtaTranslate ? " and shift" : "")} averaging {ConsoleOutput.F(fa * 100, "0.00")}%" : ""));
                ConsoleOutput.PrintConfusion(confusion, file.Classes);
                return 0;
            }
            case ModelKind.TwoLayer:
            {
                var d = Cifar10TwoLayerCommand.Load(file.Data, DType.Float32);
                var confusion = new int[file.Classes.Length, file.Classes.Length];
                double accuracy = Cifar10TwoLayerCommand.Accuracy((TwoLayerNet)file.Net, d.TestX, d.TestY, confusion);
                ConsoleOutput.Line($"test accuracy: {ConsoleOutput.F(accuracy * 100, "0.00")}% ({d.TestY.Length} images)");
                ConsoleOutput.PrintConfusion(confusion, file.Classes);
                return 0;
            }
            case ModelKind.MultiTask:
            {
                var d = Experiment.Prepare(new TrainSettings { Dataset = "mnist", Data = file.Data }, new DatasetStore().Mnist(file.Data));
                var m = MultiTaskCommand.Evaluate((MultiTaskCascade)file.Net, d.TestX, d.TestY);
                ConsoleOutput.Line($"test accuracy: {ConsoleOutput.F(m.AccuracyB * 100, "0.00")}% (Task B, {d.TestY.Length} images); " +
                    $"Task A: squared error {ConsoleOutput.F(m.SquaredErrorA, "0.0000")}, argmax accuracy {ConsoleOutput.F(m.AccuracyA * 100, "0.00")}%");
                return 0;
            }
            default:
            {
                var mnist = new DatasetStore().Mnist(file.Data);
                var x = Preprocessor.Fit(mnist.Train, Normalization.Scale).Apply(mnist.Test);
                var (reconstruction, kl) = VaeCommand.Evaluate((Vae)file.Net, x, new Generator(0));
                ConsoleOutput.Line($"test negative ELBO: {ConsoleOutput.F(reconstruction + kl, "0.00")} nats per image " +
                    $"(reconstruction {ConsoleOutput.F(reconstruction, "0.00")}, KL {ConsoleOutput.F(kl, "0.00")}; {mnist.Test.Count} images)");
                return 0;
            }
        }
    }
}
