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
