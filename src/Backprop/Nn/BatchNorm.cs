namespace Backprop.Nn;

/// <summary>
/// Batch normalisation over (batch, features): γ (<c>weight</c>, ones) and β (<c>bias</c>, zeros) are trained;
/// <c>running_mean</c>/<c>running_var</c> move by <c>momentum</c> in training and replace the batch statistics in eval.
/// </summary>
public sealed class BatchNorm1d : Module
{
    public BatchNorm1d(int features, double eps = 1e-5, double momentum = 0.1, DType dtype = DType.Float32)
    {
        if (features <= 0) throw new ArgumentException($"BatchNorm1d: features must be positive, got {features}");
        Features = features; Eps = eps; Momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Ones([features], dtype));
        Bias = RegisterParameter("bias", Tensor.Zeros([features], dtype));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([features], dtype));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones([features], dtype));
    }

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

/// <summary>
/// Batch normalisation of images (N, C, H, W) per channel, over the batch and the plane, as torch.nn.BatchNorm2d:
/// γ (<c>weight</c>, ones), β (<c>bias</c>, zeros), and running statistics updated by <c>momentum</c> in training
/// (the variance with the unbiased estimate) and used in eval.
/// </summary>
public sealed class BatchNorm2d : Module
{
    public BatchNorm2d(int channels, double eps = 1e-5, double momentum = 0.1, DType dtype = DType.Float32)
    {
        if (channels <= 0) throw new ArgumentException($"BatchNorm2d: channels must be positive, got {channels}");
        Channels = channels; Eps = eps; Momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Ones([channels], dtype));
        Bias = RegisterParameter("bias", Tensor.Zeros([channels], dtype));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([channels], dtype));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones([channels], dtype));
    }

    public int Channels { get; }
    public double Eps { get; }
    public double Momentum { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }

    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4) throw new ArgumentException($"BatchNorm2d: expected input (N, C, H, W), got {ShapeUtil.Format(input.Shape.ToArray())}");
        return input.BatchNorm(Weight, Bias, RunningMean, RunningVar, IsTrainingNow, Momentum, Eps);
    }

    protected override string ExtraRepr() => $"{Channels}, eps={Eps}, momentum={Momentum}";
}
