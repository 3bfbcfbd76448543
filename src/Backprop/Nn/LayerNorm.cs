namespace Backprop.Nn;

/// <summary>Layer normalisation over the trailing <c>normalizedShape</c> dimensions, with learned γ (<c>weight</c>, ones) and β (<c>bias</c>, zeros), as torch.nn.LayerNorm.</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32)
    {
        if (normalizedShape.Length == 0 || normalizedShape.Any(d => d <= 0))
            throw new ArgumentException($"LayerNorm: normalized shape ({string.Join(",", normalizedShape)}) must be non-empty and positive");
        NormalizedShape = (int[])normalizedShape.Clone(); Eps = eps;
        if (elementwiseAffine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(normalizedShape, dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros(normalizedShape, dtype));
        }
    }

    public LayerNorm(int features, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32) : this([features], eps, elementwiseAffine, dtype) { }

    public int[] NormalizedShape { get; }
    public double Eps { get; }
    public Tensor? Weight { get; }
    public Tensor? Bias { get; }

    public override Tensor Forward(Tensor input) => input.LayerNorm(NormalizedShape, Weight, Bias, Eps);

    protected override string ExtraRepr() => $"({string.Join(", ", NormalizedShape)}), eps={Eps}, elementwise_affine={Weight is not null}";
}
