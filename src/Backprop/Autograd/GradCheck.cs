namespace Backprop;

/// <summary>Largest error, under <see cref="GradCheck"/>'s criterion, between analytic and numerical gradients for one input tensor.</summary>
public readonly record struct GradCheckError(string Tensor, double MaxRelError, int Elements);

/// <summary>
/// Verifies a backward pass against central differences in float64: with a random upstream gradient v, compares the
/// analytic vᵀJ with the five-point central difference
/// nᵢ = (8·vᵀ(f(x + h eᵢ) − f(x − h eᵢ)) − vᵀ(f(x + 2h eᵢ) − f(x − 2h eᵢ))) / 12h for every element i of every input.
/// <para>
/// Criterion, per input tensor with S = maxᵢ max(|aᵢ|, |nᵢ|) and R = 10ε·Σⱼ|vⱼ yⱼ| / h a bound on the round-off of the
/// differences (ε = 2⁻⁵²: ten ulps of the output's terms; intermediate sums larger than the output make it more than one): eᵢ = |aᵢ − nᵢ| / max(|aᵢ| + |nᵢ|, <see cref="NegligibleFraction"/>·S, R / 1e-8, 1e-8), and a row passes
/// when every eᵢ &lt; 1e-8. An element that is neither negligible next to the tensor's largest nor drowned in the
/// differences' round-off is held to the seed exercise's relative error of 1e-8; below that, to an absolute floor.
/// The five-point stencil's truncation error is O(h⁴) where the two-point one's is O(h²): with h = 1e-5 the latter
/// alone reached 5e-7 relative on a batch-normalised layer whose batch variance happened to be small.
/// </para>
/// </summary>
public static class GradCheck
{
    public const double DefaultStep = 1e-5;

    /// <summary>Elements smaller than this fraction of the tensor's largest gradient are judged by an absolute floor.</summary>
    public const double NegligibleFraction = 1e-2;

    /// <param name="f">Recomputes the output from the inputs (which are perturbed in place between calls).</param>
    /// <param name="inputs">Named float64 leaves with RequiresGrad.</param>
    /// <param name="fault">For testing the checker: the analytic gradient's largest element of each input is scaled by
    /// (1 + fault) before the comparison, as a backward wrong in one element would be.</param>
    public static GradCheckError[] Run(Func<Tensor> f, IReadOnlyList<(string Name, Tensor Tensor)> inputs, double h = DefaultStep, ulong seed = 0, double fault = 0)
    {
        foreach (var (name, t) in inputs)
        {
            if (t.DType != DType.Float64) throw new ArgumentException($"gradcheck: input '{name}' is {t.DType}; gradient checks run in Float64");
            if (!t.RequiresGrad || !t.IsLeaf) throw new ArgumentException($"gradcheck: input '{name}' must be a leaf with RequiresGrad");
            t.Grad = null;
        }
        var y = f();
        if (y.DType != DType.Float64) throw new ArgumentException("gradcheck: the function's output is not Float64");
        // v ~ N(0, 1) rounded to float32 values, so a row through a float32 cast sees no rounding of v (and others lose nothing).
        Tensor v;
        using (Autograd.NoGrad()) v = Tensor.Normal(y.shape, 0, 1, new Generator(seed), DType.Float32).To(DType.Float64);
        y.Backward(v);

        double roundOff = 0;
        var vs = v.ToDoubleArray(); var ys = y.ToDoubleArray();
        for (int j = 0; j < vs.Length; j++) roundOff += Math.Abs(vs[j] * ys[j]);
        roundOff *= 10 * Math.Pow(2, -52) / h;   // ten ulps of the output's terms, per step

        var errors = new GradCheckError[inputs.Count];
        using var _ = Autograd.NoGrad();
        for (int k = 0; k < inputs.Count; k++)
        {
            var (name, t) = inputs[k];
            var analytic = (t.Grad ?? Tensor.ZerosLike(t)).ToDoubleArray();
            var numeric = new double[t.Length];
            var x = t.AsDoubleSpan();
            for (int i = 0; i < t.Length; i++)
            {
                double saved = x[i];
                // copies: a view's output shares the perturbed memory
                x[i] = saved + h; var p1 = f().Copy();
                x[i] = saved - h; var m1 = f().Copy();
                x[i] = saved + 2 * h; var p2 = f().Copy();
                x[i] = saved - 2 * h; var m2 = f().Copy();
                x[i] = saved;
                numeric[i] = (8 * DotOfDifference(v, p1, m1) - DotOfDifference(v, p2, m2)) / (12 * h);
            }
            if (fault != 0 && analytic.Length > 0)
            {
                int worst = 0;
                for (int i = 1; i < analytic.Length; i++) if (Math.Abs(analytic[i]) > Math.Abs(analytic[worst])) worst = i;
                analytic[worst] *= 1 + fault;
            }
            errors[k] = new GradCheckError(name, MaxError(analytic, numeric, roundOff), t.Length);
        }
        return errors;
    }

    /// <summary>The largest eᵢ of the criterion above (NaN counts as the worst).</summary>
    public static double MaxError(ReadOnlySpan<double> analytic, ReadOnlySpan<double> numeric, double roundOff = 0)
    {
        double scale = 0;
        for (int i = 0; i < analytic.Length; i++) scale = Math.Max(scale, Math.Max(Math.Abs(analytic[i]), Math.Abs(numeric[i])));
        double worst = 0;
        for (int i = 0; i < analytic.Length; i++)
        {
            double a = analytic[i], n = numeric[i];
            double e = Math.Abs(a - n) / Math.Max(Math.Max(Math.Abs(a) + Math.Abs(n), NegligibleFraction * scale), Math.Max(roundOff / 1e-8, 1e-8));
            if (!(e <= worst)) worst = e;   // NaN counts as the worst error
        }
        return worst;
    }

    // vᵀ(y₊ − y₋), differencing element by element before the dot product: outputs that do not move cancel
    // exactly instead of contributing the round-off of two large sums.
    static double DotOfDifference(Tensor v, Tensor plus, Tensor minus)
    {
        if (!ShapeUtil.Equal(v.shape, plus.shape) || !ShapeUtil.Equal(v.shape, minus.shape))
            throw new InvalidOperationException($"gradcheck: output shape changed from {ShapeUtil.Format(v.shape)} to {ShapeUtil.Format(plus.shape)}");
        ReadOnlySpan<double> vs = v.Dense().AsDoubleSpan(), p = plus.Dense().AsDoubleSpan(), m = minus.Dense().AsDoubleSpan();
        double sum = 0;
        for (int j = 0; j < vs.Length; j++) sum += vs[j] * (p[j] - m[j]);
        return sum;
    }
}
