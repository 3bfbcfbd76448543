using Backprop.Nn;

namespace Backprop.Models;

/// <summary>Both heads of the multi-task network: Task A's regression ŷa and Task B's logits z2b (ŷb = softmax(z2b)).</summary>
public readonly record struct MultiTaskOutput(Tensor YaHat, Tensor Logits);

/// <summary>
/// The multi-task cascade network, built from library modules; autograd derives its backward pass.
/// <code>
/// Task A: x → FC1A → ReLU → DP1A → FC2A → ŷa
/// Task B: x → FC1B → ReLU → BN1B → ⊕ ŷa → FC2B → softmax → ŷb      (BN1B before the ReLU as an option)
/// L = (1/m) Σᵢ [½‖ŷaᵢ − yaᵢ‖² − Σⱼ ybᵢʲ log ŷbᵢʲ]
/// </code>
/// ⊕ is element-wise, so Task A's width n_ya is also FC1B's. ŷa feeds its own loss and Task B; the engine sums
/// both gradients at FC2A. Without the cascade, ⊕ is dropped and the tasks share only the input.
/// See docs/derivations.md; MultiTaskCascadeManual (Backprop.Classic) is the same network differentiated by hand.
/// </summary>
public sealed class MultiTaskCascade : Module
{
    /// <param name="inputs">n_x, features per sample.</param>
    /// <param name="hiddenA">n_1a, FC1A's width.</param>
    /// <param name="outputsA">n_ya = n_1b: Task A's outputs, and FC1B's width (⊕ adds them element-wise).</param>
    /// <param name="classes">n_yb, Task B's classes.</param>
    /// <param name="dropout">DP1A's drop probability p.</param>
    public MultiTaskCascade(int inputs, int hiddenA, int outputsA, int classes, Generator generator, double dropout = 0.5,
        bool batchNormBeforeRelu = false, bool cascade = true, DType dtype = DType.Float32)
    {
        Fc1a = RegisterModule("fc1a", new Linear(inputs, hiddenA, generator, dtype: dtype));
        Dp1a = RegisterModule("dp1a", new Dropout(dropout, generator));
        Fc2a = RegisterModule("fc2a", new Linear(hiddenA, outputsA, generator, dtype: dtype));
        Fc1b = RegisterModule("fc1b", new Linear(inputs, outputsA, generator, dtype: dtype));
        Bn1b = RegisterModule("bn1b", new BatchNorm1d(outputsA, dtype: dtype));
        Fc2b = RegisterModule("fc2b", new Linear(outputsA, classes, generator, dtype: dtype));
        BatchNormBeforeRelu = batchNormBeforeRelu;
        Cascade = cascade;
    }

    public Linear Fc1a { get; }
    public Dropout Dp1a { get; }
    public Linear Fc2a { get; }
    public Linear Fc1b { get; }
    public BatchNorm1d Bn1b { get; }
    public Linear Fc2b { get; }
    public bool BatchNormBeforeRelu { get; }
    /// <summary>Whether ŷa is added into Task B (⊕); false gives two independent heads on a shared input.</summary>
    public bool Cascade { get; }

    /// <summary>Task B's logits z2b, so accuracy helpers that take a classifier work unchanged.</summary>
    public override Tensor Forward(Tensor input) => Outputs(input).Logits;

    /// <summary>Both heads. <paramref name="dropoutMask"/> replaces DP1A's random mask (gradient checks hold it fixed).</summary>
    public MultiTaskOutput Outputs(Tensor x, Tensor? dropoutMask = null)
    {
        var a1a = Fc1a.Forward(x).Relu();
        var yaHat = Fc2a.Forward(dropoutMask is null ? Dp1a.Forward(a1a) : a1a.Dropout(dropoutMask));
        var z1b = Fc1b.Forward(x);
        var h1b = BatchNormBeforeRelu ? Bn1b.Forward(z1b).Relu() : Bn1b.Forward(z1b.Relu());
        var s = Cascade ? h1b.Add(yaHat) : h1b;
        return new MultiTaskOutput(yaHat, Fc2b.Forward(s));
    }

    /// <summary>L = HalfSquaredError(ŷa, ya) + CrossEntropy(z2b, yb): yb one-hot (or probabilities).</summary>
    public static Tensor Loss(MultiTaskOutput output, Tensor ya, Tensor yb) =>
        output.YaHat.HalfSquaredError(ya).Add(output.Logits.CrossEntropy(yb));

    /// <summary>L with Task B's targets as class indices.</summary>
    public static Tensor Loss(MultiTaskOutput output, Tensor ya, ReadOnlySpan<int> yb) =>
        output.YaHat.HalfSquaredError(ya).Add(output.Logits.CrossEntropy(yb));

    protected override string ExtraRepr() => $"cascade={Cascade}, bn_before_relu={BatchNormBeforeRelu}";
}
