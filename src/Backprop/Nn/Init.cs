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
