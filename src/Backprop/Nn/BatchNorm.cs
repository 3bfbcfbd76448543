namespace Backprop.Nn;

/// <summary>
/// What the batch-norm layers share, as PyTorch's _BatchNorm: γ (<c>weight</c>, ones) and β (<c>bias</c>, zeros) are
/// trained; <c>running_mean</c>/<c>running_var</c> move by <c>momentum</c> in training (the variance with the unbiased
/// estimate) and replace the batch statistics in eval. Subclasses say which input shapes they take.
/// </summary>
public abstract class BatchNormBase : Module
{
    private protected BatchNormBase(string layer, int features, double eps, double momentum, DType dtype)
    {
        if (features <= 0) throw new ArgumentException($"{layer}: features must be positive, got {features}");
        Features = features; Eps = eps; Momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Ones([features], dtype));
        Bias = RegisterParameter("bias", Tensor.Zeros([features], dtype));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([features], dtype));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones([features], dtype));
    }

    /// <summary>Features (1-D) or channels (2-D) normalised.</summary>
    public int Features { get; }
    public double Eps { get; }
    public double Momentum { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }

    public override Tensor Forward(Tensor input) =>
        input.BatchNorm(Weight, Bias, RunningMean, RunningVar, IsTrainingNow, Momentum, Eps);

    protected override string ExtraRepr() => $"{Features}, eps={Eps}, momentum={Momentum}";
}

/// <summary>Batch normalisation over (batch, features), or (batch, channels, length) per channel, as torch.nn.BatchNorm1d.</summary>
public sealed class BatchNorm1d(int features, double eps = 1e-5, double momentum = 0.1, DType dtype = DType.Float32)
    : BatchNormBase("BatchNorm1d", features, eps, momentum, dtype);

/// <summary>Batch normalisation of images (N, C, H, W) per channel, over the batch and the plane, as torch.nn.BatchNorm2d.</summary>
public sealed class BatchNorm2d(int channels, double eps = 1e-5, double momentum = 0.1, DType dtype = DType.Float32)
    : BatchNormBase("BatchNorm2d", channels, eps, momentum, dtype)
{
    public override Tensor Forward(Tensor input) => input.Rank == 4 ? base.Forward(input)
        : throw new ArgumentException($"BatchNorm2d: expected input (N, C, H, W), got {ShapeUtil.Format(input.Shape.ToArray())}");
}
