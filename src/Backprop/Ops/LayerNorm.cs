namespace Backprop;

public static partial class Ops
{
    /// <summary>
    /// Layer normalisation over the last <paramref name="normalizedShape"/> dimensions: per row μ and biased σ²,
    /// x̂ = (x − μ)/√(σ² + ε), y = γ ⊙ x̂ + β (γ, β of <paramref name="normalizedShape"/>, optional), as torch.nn.functional.layer_norm.
    /// </summary>
    public static Tensor LayerNorm(this Tensor x, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        int k = normalizedShape.Length;
        if (k == 0 || k > x.Rank || !x.Shape[^k..].SequenceEqual(normalizedShape))
            throw new ArgumentException($"layer_norm: normalized shape {ShapeUtil.Format(normalizedShape)} is not the trailing shape of {ShapeUtil.Format(x.shape)}");
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias) })
            if (t is not null && (!ShapeUtil.Equal(t.shape, normalizedShape) || t.DType != x.DType))
                throw new ArgumentException($"layer_norm: {name} {ShapeUtil.Format(t.shape)} {t.DType} does not match {ShapeUtil.Format(normalizedShape)} {x.DType}");
        int d = ShapeUtil.Count(normalizedShape, "layer_norm");
        if (d == 0) throw new ArgumentException("layer_norm: normalized shape is empty");
        Tensor y, xhat, invStd;
        using (Autograd.NoGrad())
        {
            var rows = x.Reshape(-1, d);
            var centered = rows - rows.Mean(1, keepDim: true);
            invStd = 1.0 / ((centered * centered).Mean(1, keepDim: true) + eps).Sqrt();
            xhat = centered * invStd;
            var z = xhat;
            if (weight is not null) z = z * weight.Reshape(d);
            if (bias is not null) z = z + bias.Reshape(d);
            y = z.Reshape(x.shape);
        }
        Tensor[] inputs = [x, .. weight is null ? Array.Empty<Tensor>() : [weight], .. bias is null ? Array.Empty<Tensor>() : [bias]];
        if (!Autograd.IsEnabled || !Array.Exists(inputs, t => t.RequiresGrad)) return y;
        return new LayerNormOp(normalizedShape, eps, xhat, invStd, weight, bias is not null).Attach(y, inputs);
    }

    // ĝ = g ⊙ γ;  ∂L/∂x = (1/√(σ²+ε)) ⊙ (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂))   (means over each row's normalised elements);
    // ∂L/∂γ = Σ_rows g ⊙ x̂,  ∂L/∂β = Σ_rows g
    internal sealed class LayerNormOp : Function
    {
        readonly int[] normalizedShape;
        readonly double eps;
        readonly bool hasWeight, hasBias;
        Tensor? xhat, invStd;   // the op's own intermediates (rows × d, rows × 1)

        public LayerNormOp(int[] normalizedShape, double eps, Tensor xhat, Tensor invStd, Tensor? weight, bool hasBias)
        {
            this.normalizedShape = normalizedShape; this.eps = eps; this.xhat = xhat; this.invStd = invStd;
            hasWeight = weight is not null; this.hasBias = hasBias;
            if (weight is not null) SaveForBackward(weight);
        }

        public override string Name => "layer_norm";
        public override IEnumerable<(string, object)> Attributes => [("normalized_shape", normalizedShape), ("eps", eps)];

        protected override Tensor?[] Backward(Tensor g)
        {
            int d = xhat!.Size(1);
            var g2 = g.Reshape(-1, d);
            var gHat = hasWeight ? g2 * Saved(0).Reshape(d) : g2;
            var grads = new Tensor?[1 + (hasWeight ? 1 : 0) + (hasBias ? 1 : 0)];
            if (NeedsInputGrad(0))
                grads[0] = ((gHat - gHat.Mean(1, keepDim: true) - xhat * (gHat * xhat).Mean(1, keepDim: true)) * invStd!).Reshape(g.Shape.ToArray());
            int next = 1;
            if (hasWeight) { if (NeedsInputGrad(next)) grads[next] = (g2 * xhat).Sum(0).Reshape(normalizedShape); next++; }
            if (hasBias && NeedsInputGrad(next)) grads[next] = g2.Sum(0).Reshape(normalizedShape);
            return grads;
        }

        protected override void Release() { xhat = null; invStd = null; }
    }
}
