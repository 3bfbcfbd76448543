namespace Backprop.Nn;

/// <summary>Which fan of a weight sets the scale of a Kaiming initialisation: fan-in keeps the forward variance, fan-out the backward's.</summary>
public enum FanMode { FanIn, FanOut }

/// <summary>The nonlinearity a Kaiming initialisation is computed for (torch.nn.init.calculate_gain).</summary>
public enum Nonlinearity { Linear, Sigmoid, Tanh, Relu, LeakyRelu, Selu }

/// <summary>
/// In-place initialisations of a tensor, as torch.nn.init, each drawing from an explicit <see cref="Generator"/>.
/// Fans follow PyTorch: for a weight (out, in, k…), fan-in = in·Πk and fan-out = out·Πk. Not recorded by autograd.
/// </summary>
public static class Init
{
    /// <summary>The recommended gain for a nonlinearity: √2 for ReLU, √(2/(1 + a²)) for leaky ReLU with slope a, 5/3 for tanh, 3/4 for SELU, else 1.</summary>
    public static double CalculateGain(Nonlinearity nonlinearity, double negativeSlope = 0.01) => nonlinearity switch
    {
        Nonlinearity.Relu => Math.Sqrt(2),
        Nonlinearity.LeakyRelu => Math.Sqrt(2 / (1 + negativeSlope * negativeSlope)),
        Nonlinearity.Tanh => 5.0 / 3,
        Nonlinearity.Selu => 0.75,
        _ => 1,
    };

    /// <summary>(fan-in, fan-out) of a weight of at least two dimensions.</summary>
    public static (int FanIn, int FanOut) Fans(Tensor t)
    {
        if (t.Rank < 2) throw new ArgumentException($"init: fan in and fan out need a tensor of at least 2 dimensions, got {ShapeUtil.Format(t.Shape.ToArray())}");
        int receptive = 1;
        for (int d = 2; d < t.Rank; d++) receptive *= t.Size(d);
        return (t.Size(1) * receptive, t.Size(0) * receptive);
    }

    /// <summary>U(−b, b) with b = gain·√(3/fan): PyTorch's kaiming_uniform_ (defaults a = 0, fan-in, leaky ReLU).</summary>
    public static Tensor KaimingUniform(Tensor t, Generator generator, double a = 0, FanMode mode = FanMode.FanIn, Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
    {
        double bound = CalculateGain(nonlinearity, a) * Math.Sqrt(3.0 / Fan(t, mode));
        return Uniform(t, generator, -bound, bound);
    }

    /// <summary>N(0, σ²) with σ = gain/√fan: PyTorch's kaiming_normal_.</summary>
    public static Tensor KaimingNormal(Tensor t, Generator generator, double a = 0, FanMode mode = FanMode.FanIn, Nonlinearity nonlinearity = Nonlinearity.LeakyRelu) =>
        Normal(t, generator, 0, CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(t, mode)));

    /// <summary>U(−b, b) with b = gain·√(6/(fan-in + fan-out)) (Glorot).</summary>
    public static Tensor XavierUniform(Tensor t, Generator generator, double gain = 1)
    {
        var (fin, fout) = Fans(t);
        double bound = gain * Math.Sqrt(6.0 / (fin + fout));
        return Uniform(t, generator, -bound, bound);
    }

    /// <summary>N(0, σ²) with σ = gain·√(2/(fan-in + fan-out)) (Glorot).</summary>
    public static Tensor XavierNormal(Tensor t, Generator generator, double gain = 1)
    {
        var (fin, fout) = Fans(t);
        return Normal(t, generator, 0, gain * Math.Sqrt(2.0 / (fin + fout)));
    }

    public static Tensor Uniform(Tensor t, Generator generator, double low = 0, double high = 1) => Fill(t, Tensor.Uniform(t.Shape, low, high, generator, t.DType));

    public static Tensor Normal(Tensor t, Generator generator, double mean = 0, double std = 1) => Fill(t, Tensor.Normal(t.Shape, mean, std, generator, t.DType));

    public static Tensor Constant(Tensor t, double value) => Fill(t, Tensor.Full(t.Shape, value, t.DType));

    public static Tensor Zeros(Tensor t) => Constant(t, 0);

    public static Tensor Ones(Tensor t) => Constant(t, 1);

    /// <summary>
    /// The identity convolution, as torch.nn.init.dirac_: a weight (out, in, k…) of 3 to 5 dimensions is zeroed and, in
    /// each of <paramref name="groups"/> groups, filter i passes input channel i through its kernel's centre, for i below
    /// min(out/groups, in). Applied to the first filters of a view (weight.Narrow(0, 0, n)) it leaves the others as drawn.
    /// </summary>
    public static Tensor Dirac(Tensor t, int groups = 1)
    {
        if (t.Rank < 3 || t.Rank > 5) throw new ArgumentException($"init: dirac needs a convolution weight of 3 to 5 dimensions, got {ShapeUtil.Format(t.Shape.ToArray())}");
        if (groups <= 0 || t.Size(0) % groups != 0) throw new ArgumentException($"init: dirac's {t.Size(0)} filters do not split into {groups} groups");
        int perGroup = t.Size(0) / groups, inputs = t.Size(1), spatial = t.Length / (t.Size(0) * inputs);
        int centre = 0;
        for (int d = 2; d < t.Rank; d++) centre = centre * t.Size(d) + t.Size(d) / 2;
        var w = new double[t.Length];
        for (int g = 0; g < groups; g++)
            for (int i = 0; i < Math.Min(perGroup, inputs); i++)
                w[((long)(g * perGroup + i) * inputs + i) * spatial + centre] = 1;
        return Fill(t, Tensor.From(w, t.Shape.ToArray()).To(t.DType));
    }

    /// <summary>
    /// A (semi-)orthogonal matrix times <paramref name="gain"/>, as torch.nn.init.orthogonal_: the tensor is viewed as
    /// (rows, Π other dims); the Q factor of a Gaussian matrix's QR decomposition, with R's diagonal made positive, fills it.
    /// </summary>
    public static Tensor Orthogonal(Tensor t, Generator generator, double gain = 1)
    {
        if (t.Rank < 2) throw new ArgumentException($"init: orthogonal needs a tensor of at least 2 dimensions, got {ShapeUtil.Format(t.Shape.ToArray())}");
        int rows = t.Size(0), cols = t.Length / rows;
        bool flip = rows < cols;   // orthonormal columns of the taller shape, transposed back
        int m = flip ? cols : rows, n = flip ? rows : cols;
        var a = Tensor.Normal([m, n], 0, 1, generator, DType.Float64).ToDoubleArray();
        // Modified Gram–Schmidt, twice per column for orthogonality to rounding: Q with R's diagonal positive.
        for (int j = 0; j < n; j++)
        {
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < j; i++)
                {
                    double dot = 0;
                    for (int r = 0; r < m; r++) dot += a[r * n + i] * a[r * n + j];
                    for (int r = 0; r < m; r++) a[r * n + j] -= dot * a[r * n + i];
                }
            double norm = 0;
            for (int r = 0; r < m; r++) norm += a[r * n + j] * a[r * n + j];
            norm = Math.Sqrt(norm);
            for (int r = 0; r < m; r++) a[r * n + j] /= norm;
        }
        var q = Tensor.From(a, [m, n]) * gain;
        if (flip) q = q.T().Contiguous();
        return Fill(t, q.Reshape(t.Shape.ToArray()).To(t.DType));
    }

    /// <summary>
    /// Patch whitening, as the fast CIFAR-10 recipes (Keller Jordan's airbench) set a frozen first convolution: a weight
    /// (2·C·k·l, C, k, l) gets the eigenvectors v of the k×l patches' second-moment matrix E[ppᵀ] over
    /// <paramref name="images"/> (N, C, H, W), each scaled by 1/√(λ + ε), largest λ first, then the same filters negated (so
    /// an activation after it keeps both signs). Its outputs are then decorrelated, of unit variance, over those patches.
    /// </summary>
    public static Tensor PatchWhitening(Tensor weight, Tensor images, double eps = 5e-4)
    {
        if (images.Rank != 4) throw new ArgumentException($"init: patch whitening needs images (N, C, H, W), got {ShapeUtil.Format(images.Shape.ToArray())}");
        int n = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        if (weight.Rank != 4 || weight.Size(1) != c || weight.Size(0) != 2 * c * weight.Size(2) * weight.Size(3))
            throw new ArgumentException($"init: a patch-whitening weight for {c} channels must be (2·{c}·k·l, {c}, k, l), got {ShapeUtil.Format(weight.Shape.ToArray())}");
        int kh = weight.Size(2), kw = weight.Size(3), d = c * kh * kw;
        if (n == 0 || kh > h || kw > w) throw new ArgumentException($"init: {n} images of {h}×{w} hold no {kh}×{kw} patch");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "init: patch whitening needs ε > 0");
        var x = images.ToDoubleArray();
        var m = new double[d * d];
        var p = new double[d];
        long patches = 0;
        for (int i = 0; i < n; i++)
            for (int y = 0; y + kh <= h; y++)
                for (int xo = 0; xo + kw <= w; xo++, patches++)
                {
                    int q = 0;
                    for (int ch = 0; ch < c; ch++)
                        for (int a = 0; a < kh; a++)
                            for (int b = 0; b < kw; b++) p[q++] = x[(((long)i * c + ch) * h + y + a) * w + xo + b];
                    for (int r = 0; r < d; r++)
                        for (int s = r; s < d; s++) m[r * d + s] += p[r] * p[s];
                }
        for (int r = 0; r < d; r++)
            for (int s = r; s < d; s++) m[s * d + r] = m[r * d + s] /= patches;
        if (m.Any(v => !double.IsFinite(v))) throw new ArgumentException("init: patch whitening: the images hold NaN or infinite values");
        var (values, vectors) = SymmetricEigen(m, d);
        var f = new double[2 * d * d];
        for (int r = 0; r < d; r++)
        {
            double scale = 1 / Math.Sqrt(Math.Max(values[r], 0) + eps);
            for (int q = 0; q < d; q++)
            {
                f[r * d + q] = vectors[q * d + r] * scale;
                f[(d + r) * d + q] = -vectors[q * d + r] * scale;
            }
        }
        return Fill(weight, Tensor.From(f, weight.Shape.ToArray()).To(weight.DType));
    }

    /// <summary>
    /// Eigenvalues (descending) and eigenvectors (columns of a row-major d×d matrix) of a symmetric matrix, by cyclic
    /// Jacobi rotations: slow for large d, but exact to rounding and simple; the patch matrices here are at most a few dozen wide.
    /// </summary>
    internal static (double[] Values, double[] Vectors) SymmetricEigen(double[] matrix, int d)
    {
        var a = (double[])matrix.Clone();
        var v = new double[d * d];
        for (int i = 0; i < d; i++) v[i * d + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, total = 0;
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) { total += a[i * d + j] * a[i * d + j]; if (i != j) off += a[i * d + j] * a[i * d + j]; }
            if (off <= 1e-30 * total) break;
            for (int p = 0; p < d - 1; p++)
                for (int q = p + 1; q < d; q++)
                {
                    double apq = a[p * d + q];
                    if (apq == 0) continue;
                    // The rotation that zeroes a[p, q] (Numerical Recipes' stable form).
                    double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double cs = 1 / Math.Sqrt(t * t + 1), sn = t * cs;
                    for (int k = 0; k < d; k++)
                    {
                        double akp = a[k * d + p], akq = a[k * d + q];
                        a[k * d + p] = cs * akp - sn * akq;
                        a[k * d + q] = sn * akp + cs * akq;
                    }
                    for (int k = 0; k < d; k++)
                    {
                        double apk = a[p * d + k], aqk = a[q * d + k];
                        a[p * d + k] = cs * apk - sn * aqk;
                        a[q * d + k] = sn * apk + cs * aqk;
                    }
                    for (int k = 0; k < d; k++)
                    {
                        double vkp = v[k * d + p], vkq = v[k * d + q];
                        v[k * d + p] = cs * vkp - sn * vkq;
                        v[k * d + q] = sn * vkp + cs * vkq;
                    }
                }
        }
        var order = Enumerable.Range(0, d).OrderByDescending(i => a[i * d + i]).ToArray();
        var values = order.Select(i => a[i * d + i]).ToArray();
        var vectors = new double[d * d];
        for (int k = 0; k < d; k++)
            for (int j = 0; j < d; j++) vectors[k * d + j] = v[k * d + order[j]];
        return (values, vectors);
    }

    static int Fan(Tensor t, FanMode mode)
    {
        var (fin, fout) = Fans(t);
        int fan = mode == FanMode.FanIn ? fin : fout;
        return fan > 0 ? fan : throw new ArgumentException($"init: a tensor of shape {ShapeUtil.Format(t.Shape.ToArray())} has a zero fan");
    }

    static Tensor Fill(Tensor t, Tensor values)
    {
        using (Autograd.NoGrad()) t.CopyFrom(values);
        return t;
    }
}
