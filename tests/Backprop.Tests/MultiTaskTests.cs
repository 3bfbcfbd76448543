using Backprop.Diagnostics;
using Backprop.Models;
using Backprop.Optim;
using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>
/// The multi-task cascade network: the hand-written back-propagation (<see cref="MultiTaskCascadeManual"/>) agrees
/// with autograd on <see cref="MultiTaskCascade"/> to 1e-12 and with central differences, in every variant; the
/// gradient at FC2A is Task A's own error plus Task B's θ2bᵀδ2b (docs/derivations.md, "Multi-task cascade network").
/// </summary>
public class MultiTaskTests
{
    static Dictionary<string, Tensor> AutogradGradients(MultiTaskCascade model, Tensor x, Tensor ya, Tensor yb, Tensor mask, out MultiTaskOutput output, out double loss)
    {
        model.ZeroGrad();
        x.Grad = null;
        output = model.Outputs(x, mask);
        var l = MultiTaskCascade.Loss(output, ya, yb);
        l.Backward();
        loss = l.Item();
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.Clone());
        grads["x"] = x.Grad!.Clone();
        return grads;
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void Manual_backward_matches_autograd_to_1e_12(bool batchNormBeforeRelu, bool cascade)
    {
        var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(11), batchNormBeforeRelu, cascade);
        var auto = AutogradGradients(model, x, ya, yb, mask, out var output, out double loss);
        var manual = MultiTaskCascadeManual.From(model).Gradients(x, ya, yb, mask);

        Close(loss, manual.Loss, 1e-12, "L");
        AllClose(output.YaHat, manual.Output.YaHat, 1e-12, "ŷa");
        AllClose(output.Logits, manual.Output.Logits, 1e-12, "z2b");
        Assert.Equal(MultiTaskCascadeManual.ParameterNames.Order(), manual.Parameters.Keys.Order());
        foreach (var (name, g) in manual.Parameters) AllClose(auto[name], g, 1e-12, name);
        AllClose(auto["x"], manual.Input, 1e-12, "x");
    }

    // The table rows `multitask` and `multitask_manual` (GradCheckTests) hold the default network to a relative error below
    // 1e-8 at the suite's seed. Across seeds and variants that bar meets the round-off floor of central differences on a
    // scalar loss: |L(θ + h) − L(θ − h)| carries a few ulps of L ≈ 2, so ≈ 2e-11 absolute in the quotient (h = 1e-5), and
    // an element whose gradient happens to be below ~2e-3 cannot show 1e-8 relative. Here every element of every input
    // must agree to 1e-9 absolute + 1e-6 relative over five seeds; a missing or wrong term is as large as the gradient.
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void Both_implementations_match_central_differences_in_every_variant(bool batchNormBeforeRelu, bool cascade)
    {
        for (ulong seed = 0; seed < 5; seed++)
        {
            var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(seed), batchNormBeforeRelu, cascade);
            var manual = MultiTaskCascadeManual.From(model);
            var byHand = manual.Gradients(x, ya, yb, mask);
            var auto = AutogradGradients(model, x, ya, yb, mask, out _, out _);
            double L() { using var _ = Autograd.NoGrad(); return MultiTaskCascade.Loss(model.Outputs(x, mask), ya, yb).Item(); }
            foreach (var (name, t) in model.NamedParameters().Prepend(("x", x)))
            {
                var numeric = NumericalGradient.Central(L, t).ToDoubleArray();
                var a = (name == "x" ? byHand.Input : byHand.Parameters[name]).ToDoubleArray();
                var b = auto[name].ToDoubleArray();
                for (int i = 0; i < numeric.Length; i++)
                {
                    Assert.True(Math.Abs(a[i] - numeric[i]) <= 1e-9 + 1e-6 * Math.Abs(numeric[i]), $"seed {seed} manual {name}[{i}]: {a[i]:R} vs numerical {numeric[i]:R}");
                    Assert.True(Math.Abs(b[i] - numeric[i]) <= 1e-9 + 1e-6 * Math.Abs(numeric[i]), $"seed {seed} autograd {name}[{i}]: {b[i]:R} vs numerical {numeric[i]:R}");
                }
            }
            // BN1B removes any shift common to the batch: with BN1B before the ReLU, b1b is such a shift, so ∂L/∂b1b = 0.
            var db1b = byHand.Parameters["fc1b.bias"];
            if (batchNormBeforeRelu) AllClose(Tensor.Zeros([db1b.Length], DType.Float64), db1b, 1e-15, "∂L/∂b1b");
            else Assert.Contains(db1b.ToDoubleArray(), v => Math.Abs(v) > 1e-3);
        }
    }

    [Fact]
    public void FC2A_receives_its_own_error_plus_theta2b_transpose_delta2b()
    {
        var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(3));
        var r = MultiTaskCascadeManual.From(model).Gradients(x, ya, yb, mask);
        int m = x.Size(0);
        using var _ = Autograd.NoGrad();
        var (yaHat, z2b) = model.Outputs(x, mask);
        var delta2b = (z2b.Softmax() - yb) / m;                                   // δ2b = (ŷb − yb)/m
        var delta2a = (yaHat - ya) / m + delta2b.MatMul(model.Fc2b.Weight);      // δ2a = (ŷa − ya)/m + θ2bᵀδ2b
        AllClose(delta2a.Sum(0), r.Parameters["fc2a.bias"], 1e-13, "∂L/∂b2a");
        AllClose(delta2a.MatMul(model.Fc1a.Forward(x).Relu() * mask, transposeA: true), r.Parameters["fc2a.weight"], 1e-13, "∂L/∂θ2a");
        Assert.Contains(delta2b.MatMul(model.Fc2b.Weight).Sum(0).ToDoubleArray(), v => Math.Abs(v) > 1e-3);   // Task B's term is really there
    }

    [Fact]
    public void Without_the_cascade_Task_A_gets_only_its_squared_error_and_Task_B_never_reaches_it()
    {
        var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(4), cascade: false);
        var r = MultiTaskCascadeManual.From(model).Gradients(x, ya, yb, mask);

        model.ZeroGrad();
        model.Outputs(x, mask).YaHat.HalfSquaredError(ya).Backward();             // Task A's loss alone
        foreach (var name in new[] { "fc1a.weight", "fc1a.bias", "fc2a.weight", "fc2a.bias" })
            AllClose(model.NamedParameters().Single(p => p.Name == name).Parameter.Grad!, r.Parameters[name], 1e-13, name);

        model.ZeroGrad();
        model.Outputs(x, mask).Logits.CrossEntropy(yb).Backward();                 // Task B's loss alone
        foreach (var name in new[] { "fc1b.weight", "fc1b.bias", "bn1b.weight", "bn1b.bias", "fc2b.weight", "fc2b.bias" })
            AllClose(model.NamedParameters().Single(p => p.Name == name).Parameter.Grad!, r.Parameters[name], 1e-13, name);
        Assert.All(model.Fc2a.Bias!.Grad?.ToDoubleArray() ?? [], v => Assert.Equal(0, v));
    }

    [Fact]
    public void Manual_training_steps_and_eval_mode_follow_the_autograd_model()
    {
        // Two identical networks: one trained by autograd, the other by the hand-written backward; same SGD steps.
        var (auto, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(8));
        var (twin, _, _, _, _) = GradCheckSuite.MultiTask(new Generator(8));
        var manual = MultiTaskCascadeManual.From(twin);
        var sgdAuto = new Sgd(auto.Parameters(), 0.1, momentum: 0.9);
        var sgdManual = new Sgd(twin.Parameters(), 0.1, momentum: 0.9);
        double first = 0, last = 0;
        for (int step = 0; step < 5; step++)
        {
            sgdAuto.ZeroGrad(); sgdManual.ZeroGrad();
            var l = MultiTaskCascade.Loss(auto.Outputs(x, mask), ya, yb);
            l.Backward();
            var (manualLoss, _) = manual.Backward(x, ya, yb, mask);
            Close(l.Item(), manualLoss, 1e-12, $"loss at step {step}");
            sgdAuto.Step(); sgdManual.Step();
            if (step == 0) first = manualLoss;
            last = manualLoss;
        }
        Assert.True(last < first, $"loss went from {first} to {last}");
        foreach (var ((name, a), (_, b)) in auto.StateDict().Zip(twin.StateDict())) AllClose(a, b, 1e-12, name);   // parameters and running statistics

        auto.Eval();
        using var _ = Autograd.NoGrad();
        var (yaEval, zEval) = auto.Outputs(x);
        var m = manual.Forward(x, training: false);
        AllClose(yaEval, m.YaHat, 1e-12, "ŷa (eval)");
        AllClose(zEval, m.Logits, 1e-12, "z2b (eval)");
    }

    [Fact]
    public void Loss_with_class_indices_equals_loss_with_one_hot_targets()
    {
        var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(new Generator(2));
        var labels = yb.ArgMax(1);
        var o = model.Outputs(x, mask);
        Close(MultiTaskCascade.Loss(o, ya, yb).Item(), MultiTaskCascade.Loss(o, ya, labels).Item(), 1e-14);
    }

    [Fact]
    public void Cascade_needs_equal_widths_for_the_element_wise_sum()
    {
        var (model, _, _, _, _) = GradCheckSuite.MultiTask(new Generator(1));
        var state = model.StateDict();
        state["fc2a.weight"] = Tensor.Zeros([5, 6], DType.Float64);
        state["fc2a.bias"] = Tensor.Zeros([5], DType.Float64);
        Assert.Throws<ArgumentException>(() => new MultiTaskCascadeManual(state));
        _ = new MultiTaskCascadeManual(state, cascade: false);
    }
}

/// <summary><c>backprop multitask</c> end to end on the repository's MNIST copy (a few short epochs).</summary>
[Collection("console")]   // redirects Console; keep it off other tests' threads
public sealed class MultiTaskCliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("bp-multitask-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static (int Code, string Out, string Err) Run(params string[] args) => Helpers.RunCli(args);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Multitask_improves_both_tasks_and_writes_a_run_folder(bool manual)
    {
        string run = Path.Combine(dir, manual ? "manual" : "autograd");
        string[] args = ["multitask", "--epochs", "3", "--hidden-a", "32", "--batch-size", "128", "--seed", "3", "--out", run];
        var (code, output, err) = Run(manual ? [.. args, "--manual"] : args);
        Assert.True(code == 0, err);
        Assert.Contains("test: Task A sq err", output);
        foreach (var f in new[] { "metrics.csv", "summary.json", "loss.png", "task-a.png", "accuracy.png", "model.safetensors", "command.txt" })
            Assert.True(new FileInfo(Path.Combine(run, f)).Length > 0, $"{f} is missing or empty");

        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var r = summary.RootElement;
        foreach (var key in new[] { "dataset", "model", "hyperparameters", "seed", "epochs", "train_accuracy", "val_accuracy", "test_accuracy", "final_train_loss", "seconds",
            "task_a_test_squared_error", "task_a_val_squared_error", "task_b_test_accuracy", "task_b_val_cross_entropy" })
            Assert.True(r.TryGetProperty(key, out _), $"summary.json lacks {key}");
        Assert.Equal("multitask-cascade", r.GetProperty("model").GetString());
        Assert.InRange(r.GetProperty("test_accuracy").GetDouble(), 0.9, 1.0);

        // columns: epoch, train_loss, train_a_squared_error, train_a_accuracy, train_b_cross_entropy, train_b_accuracy,
        //          val_loss, val_a_squared_error, val_a_accuracy, val_b_cross_entropy, val_b_accuracy, …
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.csv")).Skip(1)
            .Select(l => l.Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(3, rows.Length);
        Assert.True(rows[^1][2] < rows[0][2], "Task A's training squared error did not fall");
        Assert.True(rows[^1][7] < rows[0][7], "Task A's validation squared error did not fall");
        Assert.True(rows[^1][5] > rows[0][5], "Task B's training accuracy did not rise");
        Assert.True(rows[^1][10] > rows[0][10], "Task B's validation accuracy did not rise");
    }

    [Theory]
    [InlineData("multitask", "--dropout", "1")]
    [InlineData("multitask", "--hidden-a", "0")]
    [InlineData("multitask", "--optimizer", "rmsprop")]
    public void An_invalid_option_gives_one_clear_line_and_exit_code_2(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("backprop: ", err);
    }
}
