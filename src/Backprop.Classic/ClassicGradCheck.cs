using Backprop.Diagnostics;

namespace Backprop.Models;

/// <summary>
/// Gradient-check rows for the hand-derived networks: each function's backward is the hand-written one (recorded as a
/// custom <see cref="Function"/>), so the rows measure the manual gradients, not autograd's. Run with
/// <see cref="GradCheckSuite.Run"/> like the library's table.
/// </summary>
public static class ClassicGradCheck
{
    public static IReadOnlyList<GradCheckCase> Cases { get; } =
    [
        new("multitask_manual", g =>
        {
            var (model, x, ya, yb, mask) = GradCheckSuite.MultiTask(g);
            var manual = MultiTaskCascadeManual.From(model);
            return new GradCheckProblem(() => manual.Loss(x, ya, yb, mask), [("x", x), .. model.NamedParameters()]);
        }),
        // The function is the loss's terms (J = their sum) with the manual backward recorded as their op.
        new("mlp_manual_regression", g => ManualMlpCase(g, ManualMlpTask.Regression)),
        new("mlp_manual_classification", g => ManualMlpCase(g, ManualMlpTask.Classification)),
    ];

    // Classification: two σ′ ≤ ¼ and default ±1/√fan-in weights leave the back-propagated residuals small; unit-scale
    // weights and 0/1 targets keep them well above the differences' round-off.
    static GradCheckProblem ManualMlpCase(Generator g, ManualMlpTask task)
    {
        bool classification = task == ManualMlpTask.Classification;
        var net = classification ? ManualMlp.For(task, inFeatures: 5, hidden: 3, outFeatures: 2, g, DType.Float64)
            : ManualMlp.For(task, inFeatures: 5, hidden: 4, outFeatures: 3, g, DType.Float64);
        if (classification)
            foreach (var w in new[] { net.W1, net.W2 }) w.CopyFrom(Tensor.Normal(w.Shape, 0, 1, g, DType.Float64));
        var x = GradCheckSuite.Normal(g, classification ? 4 : 6, 5);
        var y = classification ? Tensor.Uniform([4, 2], 0, 1, g, DType.Float64) : Tensor.Normal([6, 3], 0, 1, g, DType.Float64);
        if (classification)
        {
            var ys = y.AsDoubleSpan();
            for (int i = 0; i < ys.Length; i++) ys[i] = ys[i] < 0.5 ? 0 : 1;
        }
        return new GradCheckProblem(() => net.LossTermsWithManualBackward(task, x, y),
            [("x", x), ("W1", net.W1), ("b1", net.B1), ("W2", net.W2), ("b2", net.B2)]);
    }
}
