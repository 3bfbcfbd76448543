namespace Backprop;

/// <summary>Largest relative error between analytic and numerical gradients for one input tensor.</summary>
public readonly record struct GradCheckError(string Tensor, double MaxRelError, int Elements);

/// <summary>
/// Verifies a backward pass against central differences in float64: with a random upstream gradient v,
/// compares the analytic vᵀJ with (vᵀf(x + h eᵢ) − vᵀf(x − h eᵢ)) / 2h for every element i of every input.
/// Relative error: |a − n| / max(1e-8, |a| + |n|).
/// </summary>
public static class GradCheck
{
    public const double DefaultStep = 1e-5;

    /// <param name="f">Recomputes the output from the inputs (which are perturbed in place between calls).</param>
    /// <param name="inputs">Named float64 leaves with RequiresGrad.</param>
    public static GradCheckError[] Run(Func<Tensor> f, IReadOnlyList<(string Name, Tensor Tensor)> inputs, double h = DefaultStep, ulong seed = 0)
    {
        foreach (var (name, t) in inputs)
        {
            if (t.DType != DType.Float64) throw new ArgumentException($"gradcheck: input '{name}' is {t.DType}; gradient checks run in Float64");
            if (!t.RequiresGrad || !t.IsLeaf) throw new ArgumentException($"gradcheck: input '{name}' must be a leaf with RequiresGrad");
            t.Grad = null;
        }
        var y = f();
        if (y.DType != DType.Float64) throw new ArgumentException("gradcheck: the function's output is not Float64");
        var v = Tensor.Normal(y.shape, 0, 1, new Generator(seed), DType.Float64);
        y.Backward(v);

        var errors = new GradCheckError[inputs.Count];
        using var _ = Autograd.NoGrad();
        for (int k = 0; k < inputs.Count; k++)
        {
            var (name, t) = inputs[k];
            var analytic = t.Grad ?? Tensor.ZerosLike(t);
            var x = t.AsDoubleSpan();
            double worst = 0;
            for (int i = 0; i < t.Length; i++)
            {
                double saved = x[i];
                x[i] = saved + h; var plus = f().Copy();   // a copy: a view's output shares the perturbed memory
                x[i] = saved - h; var minus = f().Copy();
                x[i] = saved;
                double numeric = DotOfDifference(v, plus, minus) / (2 * h), a = analytic.GetFlat(i);
                double rel = Math.Abs(a - numeric) / Math.Max(1e-8, Math.Abs(a) + Math.Abs(numeric));
                if (!(rel <= worst)) worst = rel;   // NaN counts as the worst error
            }
            errors[k] = new GradCheckError(name, worst, t.Length);
        }
        return errors;
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
