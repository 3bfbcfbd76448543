using Backprop.Nn;

namespace Backprop.Tests;

/// <summary>
/// LeakyReLU, ELU, GELU (exact and tanh), Softplus, SiLU, LayerNorm and Embedding give PyTorch's values and gradients.
/// Reference numbers: torch 1.13, float64 (tools/torch_new_ops.py prints them).
/// </summary>
public class NewOpTests
{
    static readonly double[] X = [-30.0, -5.0, -1.5, -0.25, -1e-8, 0.0, 1e-8, 0.3, 1.7, 6.0, 25.0];

    static void Close(double[] expected, Tensor actual, double rel, string what)
    {
        var a = actual.ToDoubleArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - expected[i]) <= rel * Math.Abs(expected[i]) + 1e-300,
                $"{what}[{i}] (x = {X[Math.Min(i, X.Length - 1)]}): expected {expected[i]:R}, got {a[i]:R}");
    }

    static (Tensor Y, Tensor Grad) Run(Func<Tensor, Tensor> f)
    {
        var x = Helpers.Leaf(Tensor.From(X));
        var y = f(x);
        y.Sum().Backward();
        return (y, x.Grad!);
    }

    [Fact]
    public void LeakyRelu_matches_pytorch_with_the_slope_at_zero()
    {
        var (y, g) = Run(x => x.LeakyRelu());
        Close([-0.3, -0.05, -0.015, -0.0025, -1e-10, 0.0, 1e-08, 0.3, 1.7, 6.0, 25.0], y, 1e-15, "leaky_relu");
        Close([0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 1.0, 1.0, 1.0, 1.0, 1.0], g, 1e-15, "∂leaky_relu");
    }

    [Fact]
    public void Elu_matches_pytorch_and_keeps_small_negative_inputs_accurate()
    {
        var (y, g) = Run(x => x.Elu());
        // torch 1.13 computes eˣ − 1 directly and is 1.1e-9 off at x = −1e-8; expm1 gives −9.9999999500000002e-09.
        Close([-0.9999999999999064, -0.9932620530009145, -0.7768698398515702, -0.22119921692859512, -9.9999999500000002e-09, 0.0, 1e-08, 0.3, 1.7, 6.0, 25.0], y, 1e-14, "elu");
        Close([9.357622968840175e-14, 0.006737946999085467, 0.22313016014842982, 0.7788007830714049, 0.9999999900000001, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], g, 1e-14, "∂elu");
    }

    [Fact]
    public void Gelu_exact_and_tanh_match_pytorch()
    {
        var (y, g) = Run(x => x.Gelu());
        // x·Φ(x) cancels in 1 + erf(x/√2) (and the tanh form in 1 + tanh u) for very negative x exactly as PyTorch's
        // formulas do; an ulp of erf or tanh, amplified by that cancellation, is what separates the two at x = −5.
        Close([-0.0, -1.4332578593401202e-06, -0.10021080190328704, -0.10032341857926907, -4.999999960105772e-09, 0.0, 5.000000039894228e-09, 0.1853734266566858, 1.6242387133104768, 5.999999994080474, 25.0], y, 1e-8, "gelu");
        Close([-4.420938404635643e-195, -7.1469460018034646e-06, -0.1274691922299796, 0.304626645116364, 0.4999999920211544, 0.5, 0.5000000079788456, 0.7323277668271099, 1.1153179687821648, 1.0000000354687093, 1.0], g, 1e-8, "∂gelu");
        var (t, _) = Run(x => x.Gelu(GeluApproximation.Tanh));
        Close([-0.0, -2.2917961972623857e-07, -0.10042842301976707, -0.100324649298315, -4.999999960105772e-09, 0.0, 5.000000039894228e-09, 0.18537092354275922, 1.624105895551156, 5.9999999999156035, 25.0], t, 1e-8, "gelu tanh");
    }

    [Fact]
    public void Gelu_in_float32_is_within_float_rounding_of_float64_in_the_vector_body_and_the_tail()
    {
        // 1,003 points over [−10, 10]: whole vectors and a scalar remainder; float32 uses a 1.5e-7 erfc approximation.
        double[] xs = Enumerable.Range(0, 1003).Select(i => (double)(float)(-10 + 20.0 * i / 1002)).ToArray();
        double[] gs = Enumerable.Range(0, 1003).Select(i => (double)(float)Math.Cos(i)).ToArray();
        var (y64, d64) = GeluAndGradient(Tensor.From(xs), Tensor.From(gs));
        var (y32, d32) = GeluAndGradient(Tensor.From(xs).To(DType.Float32), Tensor.From(gs).To(DType.Float32));
        double[] ye = y64.ToDoubleArray(), ya = y32.ToDoubleArray(), de = d64.ToDoubleArray(), da = d32.ToDoubleArray();
        for (int i = 0; i < ye.Length; i++)
        {
            double xi = xs[i];
            Assert.True(Math.Abs(ya[i] - ye[i]) <= 4e-7 * Math.Max(1, Math.Abs(xi)), $"gelu({xi}): float64 {ye[i]:R}, float32 {ya[i]:R}");
            Assert.True(Math.Abs(da[i] - de[i]) <= 1e-6 * Math.Max(1, Math.Abs(xi)), $"∂gelu({xi}): float64 {de[i]:R}, float32 {da[i]:R}");
        }
    }

    [Fact]
    public void Gelu_in_float32_gives_the_same_bits_on_any_thread_count_and_in_a_ragged_last_piece()
    {
        // 300,007 values: split into pieces across threads, with a ragged end; every value takes the same vector formula.
        var g = new Generator(5);
        var x = Tensor.Normal([300_007], 0, 3, g);
        var up = Tensor.Normal([300_007], 0, 1, g);
        float[]? y1 = null, d1 = null;
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = Parallelism.Use(threads);
            var (y, d) = GeluAndGradient(x.Clone(), up);   // a fresh leaf: gradients would accumulate
            if (y1 is null) { y1 = y.ToFloatArray(); d1 = d.ToFloatArray(); continue; }
            Assert.Equal(y1, y.ToFloatArray());
            Assert.Equal(d1, d.ToFloatArray());
        }
        // The last values, from the zero-padded vector, as the same values placed inside a whole vector.
        var tail = x.Narrow(0, 300_000, 7).Contiguous();
        var inside = Ops.Cat([tail, Tensor.Zeros([9])], 0).Gelu().Narrow(0, 0, 7).ToFloatArray();
        Assert.Equal(inside, y1![300_000..]);
    }

    static (Tensor Y, Tensor Grad) GeluAndGradient(Tensor x, Tensor upstream)
    {
        var leaf = Helpers.Leaf(x);
        var y = leaf.Gelu();
        (y * upstream).Sum().Backward();
        return (y, leaf.Grad!);
    }

    [Fact]
    public void Erf_is_accurate_on_both_sides_of_its_method_switch()
    {
        var e = Ops.Map(Backends.UnaryOp.Erf, Tensor.From(X));
        Close([-1.0, -0.9999999999984626, -0.9661051464753108, -0.27632639016823696, -1.1283791670955126e-08, 0.0, 1.1283791670955126e-08, 0.3286267594591274, 0.9837904585907745, 1.0, 1.0], e, 4e-16, "erf");
        var around = Ops.Map(Backends.UnaryOp.Erf, Tensor.From([2.4999999, 2.5, 2.5000001, 3.0]));
        Close([0.9995930477647266, 0.999593047982555, 0.9995930482003834, 0.9999779095030014], around, 4e-16, "erf near 2.5");
    }

    [Fact]
    public void Softplus_matches_pytorch_including_its_threshold()
    {
        var (y, g) = Run(x => x.Softplus());
        Close([9.357622968839737e-14, 0.006715348489118068, 0.2014132779827524, 0.5759394198788436, 0.6931471755599453, 0.6931471805599453, 0.6931471855599453, 0.8543552444685272, 1.867786029386266, 6.00247568513773, 25.0], y, 1e-15, "softplus");
        Close([9.3576229688393e-14, 0.006692850924284856, 0.18242552380635632, 0.4378234991142019, 0.4999999975, 0.5, 0.5000000025, 0.574442516811659, 0.8455347349164652, 0.9975273768433652, 1.0], g, 1e-14, "∂softplus");
        var (b, _) = Run(x => x.Softplus(beta: 2, threshold: 4));
        Close([4.37825538134826e-27, 2.2699449608432323e-05, 0.02429367578687103, 0.23703849209005334, 0.3465735852799727, 0.34657359027997264, 0.34657359527997267, 0.5187439752429428, 1.7164142352124325, 6.0, 25.0], b, 1e-14, "softplus β=2, threshold 4");
    }

    [Fact]
    public void Silu_matches_pytorch()
    {
        var (y, g) = Run(x => x.Silu());
        Close([-2.8072868906517896e-12, -0.03346425462142428, -0.2736382857095345, -0.10945587477855048, -4.9999999750000005e-09, 0.0, 5.000000025e-09, 0.1723327550434977, 1.437409049357991, 5.985164261060192, 24.9999999996528], y, 1e-14, "silu");
        Close([-2.713710660963134e-12, -0.026547432429665917, -0.041294154299142946, 0.37628997842980233, 0.49999999500000003, 0.5, 0.500000005, 0.6477800103188829, 1.067564504759019, 1.0123264325915249, 1.000000000333312], g, 1e-12, "∂silu");
    }

    [Fact]
    public void LayerNorm_matches_pytorch_over_two_trailing_dimensions_and_one()
    {
        var t = Tensor.Arange(0, 24, 1, DType.Float64).Reshape(2, 3, 4).Sin();
        double[] lin(double a, double b) => [.. Enumerable.Range(0, 12).Select(i => a + (b - a) * i / 11.0)];
        var w = Tensor.From(lin(0.5, 1.5), [3, 4]);
        var b = Tensor.From(lin(-1, 1), [3, 4]);
        Close([-1.0242554834715811, -0.14291681841939433, 0.20825757533439523, -0.33765340340595074, -1.2399250744528574, -1.4330536853458251, -0.3733546641707938, 1.2745253899180975, 2.1139649154607456, 1.3414901084457516, -0.33541200300044105, -1.1962896769079525, -1.4242034222899473, -0.49814479241581433, 0.29797974965366214, 0.2223127377759611, -0.6934261807099857, -1.489907061784806, -1.1217351383462326, 0.4419411297135424, 1.9978878335990227, 2.1479230016441444, 0.7030563921672145, -0.9474213322800284],
            t.LayerNorm([3, 4], w, b), 1e-13, "layer_norm (3,4)");
        var module = new LayerNorm(4, dtype: DType.Float64);
        Close([-1.1643418691553642, 0.9071542911731354, 1.0741264348896078, -0.816938856907379, -0.6773873911984031, -1.0016273966662603, 0.08842796549743065, 1.5905868223672328],
            module.Forward(t).Reshape(-1).Narrow(0, 0, 8), 1e-13, "LayerNorm(4)");
        Assert.Throws<ArgumentException>(() => t.LayerNorm([4, 3]));
    }

    [Fact]
    public void Embedding_looks_up_rows_and_gives_the_padding_row_no_gradient()
    {
        var e = Helpers.Leaf(Tensor.Arange(0, 15, 1, DType.Float64).Reshape(5, 3).Detach());
        var y = Ops.Embedding([1, 3, 3, 0], e, [2, 2], paddingIndex: 3);
        Assert.Equal([2, 2, 3], y.Shape.ToArray());
        Assert.Equal([3.0, 4, 5, 9, 10, 11, 9, 10, 11, 0, 1, 2], y.ToDoubleArray());
        y.Backward(Tensor.OnesLike(y));
        Assert.Equal([1.0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], e.Grad!.ToDoubleArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Embedding([5], e));
        var module = new Embedding(10, 4, new Generator(1), paddingIndex: 2);
        Assert.Equal(new double[4], module.Weight.Select(0, 2).ToDoubleArray());
        Assert.Equal([3, 4], module.Forward(Tensor.From([1f, 2f, 9f])).Shape.ToArray());
    }

    [Fact]
    public void Activation_modules_forward_to_their_ops()
    {
        var x = Tensor.From(X);
        Assert.Equal(x.LeakyRelu(0.2).ToDoubleArray(), new LeakyReLU(0.2).Forward(x).ToDoubleArray());
        Assert.Equal(x.Elu(0.5).ToDoubleArray(), new ELU(0.5).Forward(x).ToDoubleArray());
        Assert.Equal(x.Gelu(GeluApproximation.Tanh).ToDoubleArray(), new GELU(GeluApproximation.Tanh).Forward(x).ToDoubleArray());
        Assert.Equal(x.Softplus(3).ToDoubleArray(), new Softplus(3).Forward(x).ToDoubleArray());
        Assert.Equal(x.Silu().ToDoubleArray(), new SiLU().Forward(x).ToDoubleArray());
    }
}
