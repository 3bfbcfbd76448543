namespace Backprop.Kernels;

/// <summary>Scalar functions .NET's Math lacks, to double precision.</summary>
internal static class ScalarMath
{
    const double TwoOverSqrtPi = 1.1283791670955126;   // 2/√π

    /// <summary>
    /// erf(x). For |x| &lt; 2.5 the series (2/√π) e^{−x²} Σₙ 2ⁿ x^{2n+1} / (1·3···(2n+1)), whose terms are all positive (no
    /// cancellation, unlike the alternating Taylor series); beyond, 1 − erfc(x) with erfc from its continued fraction,
    /// which converges fast there. Both are accurate to a few ulps; erf(±6) is ±1 to double precision.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        if (a >= 6) return Math.Sign(x);
        double r = a < 2.5 ? SeriesErf(a) : 1 - ContinuedFractionErfc(a);
        return x < 0 ? -r : r;
    }

    static double SeriesErf(double x)
    {
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17) break;
        }
        return TwoOverSqrtPi * Math.Exp(-x2) * sum;
    }

    // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated by the modified Lentz method.
    static double ContinuedFractionErfc(double x)
    {
        const double Tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int k = 1; k < 500; k++)
        {
            double ak = k * 0.5;
            d = x + ak * d; d = d == 0 ? Tiny : d; d = 1 / d;
            c = x + ak / c; c = c == 0 ? Tiny : c;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / (f * Math.Sqrt(Math.PI));
    }

    /// <summary>eˣ − 1 without the cancellation near 0 (Kahan: the rounding of u = eˣ cancels in (u − 1)·x / log u).</summary>
    public static double Expm1(double x)
    {
        double u = Math.Exp(x);
        if (u == 1) return x;
        double um1 = u - 1;
        return um1 == -1 ? -1 : um1 * x / Math.Log(u);
    }
}
