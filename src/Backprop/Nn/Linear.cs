namespace Backprop.Nn;

/// <summary>
/// y = x Wᵀ + b with W of shape (out, in). Default initialisation is PyTorch's: W and b uniform in
/// ±1/√in. With <c>std</c> given, W ~ N(0, std²) and b = 0, as the classic exercises initialise.
/// </summary>
public sealed class Linear : Module
{
    public Linear(int inFeatures, int outFeatures, Generator generator, bool bias = true, double? std = null, DType dtype = DType.Float32)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Linear: sizes must be positive, got ({inFeatures}, {outFeatures})");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        double bound = 1 / Math.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", std is double s
            ? Tensor.Normal([outFeatures, inFeatures], 0, s, generator, dtype)
            : Tensor.Uniform([outFeatures, inFeatures], -bound, bound, generator, dtype));
        if (bias)
            Bias = RegisterParameter("bias", std is null ? Tensor.Uniform([outFeatures], -bound, bound, generator, dtype) : Tensor.Zeros([outFeatures], dtype));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override Tensor Forward(Tensor input) => input.Linear(Weight, Bias);

    protected override string ExtraRepr() => $"in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null}";
}
