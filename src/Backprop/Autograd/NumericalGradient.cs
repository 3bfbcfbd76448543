namespace Backprop;

/// <summary>
/// Numerical gradients of a scalar function for code that does not go through autograd (hand-written
/// backward passes such as the two-layer net): cs231n's eval_numerical_gradient and rel_error.
/// </summary>
public static class NumericalGradient
{
    /// <summary>
    /// ∂f/∂xᵢ ≈ (f(x + h eᵢ) − f(x − h eᵢ)) / 2h for every element of <paramref name="x"/>, which is
    /// perturbed in place (f must read it) and restored after each element.
    /// </summary>
    public static Tensor Central(Func<double> f, Tensor x, double h = GradCheck.DefaultStep)
    {
        if (x.DType != DType.Float64) throw new ArgumentException($"numerical gradient: input is {x.DType}; central differences need Float64");
        var grad = Tensor.ZerosLike(x);
        var xs = x.AsDoubleSpan();
        var gs = grad.AsDoubleSpan();
        for (int i = 0; i < xs.Length; i++)
        {
            double saved = xs[i];
            xs[i] = saved + h; double plus = f();
            xs[i] = saved - h; double minus = f();
            xs[i] = saved;
            gs[i] = (plus - minus) / (2 * h);
        }
        return grad;
    }

    /// <summary>maxᵢ |aᵢ − nᵢ| / max(1e-8, |aᵢ| + |nᵢ|), the exercise's rel_error (NaN counts as the worst).</summary>
    public static double MaxRelError(Tensor analytic, Tensor numeric)
    {
        if (!ShapeUtil.Equal(analytic.Shape, numeric.Shape))
            throw new ArgumentException($"rel_error: shapes {ShapeUtil.Format(analytic.Shape)} and {ShapeUtil.Format(numeric.Shape)} differ");
        double worst = 0;
        for (int i = 0; i < analytic.Length; i++)
        {
            double a = analytic.GetFlat(i), n = numeric.GetFlat(i);
            double rel = Math.Abs(a - n) / Math.Max(1e-8, Math.Abs(a) + Math.Abs(n));
            if (!(rel <= worst)) worst = rel;
        }
        return worst;
    }
}
