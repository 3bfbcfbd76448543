using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Losses against their closed forms, in the regimes where a naive formula loses digits.</summary>
public class LossTests
{
    // log(1 + u): the series for tiny u (u⁵/5 is below double precision there), the plain log elsewhere.
    static double Log1pReference(double u) => u < 1e-4 ? u - u * u / 2 + u * u * u / 3 - u * u * u * u / 4 : Math.Log(1 + u);

    // BCE on one logit, in double: max(z, 0) − z·y + log(1 + e^{−|z|})
    static double BceReference(double z, double y) => Math.Max(z, 0) - z * y + Log1pReference(Math.Exp(-Math.Abs(z)));

    static Tensor Vector(double[] v, DType dtype) => Tensor.From(v).To(dtype);

    [Theory]
    [InlineData(20.0, 1.0, 2.0611536e-9)]
    [InlineData(50.0, 1.0, 1.9287498e-22)]
    [InlineData(-20.0, 0.0, 2.0611536e-9)]
    [InlineData(-50.0, 0.0, 1.9287498e-22)]
    public void Bce_with_logits_keeps_the_tiny_loss_of_a_confident_right_logit(double z, double y, double rounded)
    {
        double exact = BceReference(z, y);
        Close(rounded, exact, 1e-7 * rounded, "reference");
        foreach (var (dtype, rel) in new[] { (DType.Float64, 1e-15), (DType.Float32, 1e-7) })
            Close(exact, Vector([z], dtype).BceWithLogits(Vector([y], dtype)).Item(), rel * exact, $"{dtype} z={z} y={y}");
    }

    [Theory]
    [InlineData(new[] { 20.0, -20, 50, -50, 30, -37, 15, -25 }, new[] { 1.0, 0, 1, 0, 1, 0, 1, 0 })]   // all confident and right
    [InlineData(new[] { 20.0, -50, 50, -20, 0.5, -3, 0, 7, -0.25, 35 }, new[] { 1.0, 0, 1, 1, 0, 1, 0.3, 0, 1, 0.9 })]
    public void Bce_with_logits_mean_of_a_mixed_batch_equals_the_closed_form(double[] z, double[] y)
    {
        double expected = z.Zip(y, BceReference).Average();
        foreach (var (dtype, rel) in new[] { (DType.Float64, 1e-15), (DType.Float32, 1e-7) })
            Close(expected, Vector(z, dtype).BceWithLogits(Vector(y, dtype)).Item(), rel * expected, dtype.ToString());
    }

    [Fact]
    public void Bce_with_logits_gradient_is_sigmoid_minus_target_over_n()
    {
        double[] z = [20, -50, 0.5, -3];
        double[] y = [1, 0, 0, 0.7];
        var logits = Leaf(Tensor.From(z));
        logits.BceWithLogits(Tensor.From(y)).Backward();
        var expected = z.Zip(y, (zi, yi) => (1 / (1 + Math.Exp(-zi)) - yi) / z.Length).ToArray();
        AllClose(Tensor.From(expected), logits.Grad!, 1e-15);
    }

    [Fact]
    public void Cross_entropy_gradient_is_softmax_minus_onehot_times_g_over_m_signed_zeros_included()
    {
        // softmax (1, 0): the gradient (s − onehot)·g/m is (0, 0)·(−1) = (−0, −0), as PyTorch computes it.
        var z = Tensor.From([0.0, -2000.0], [1, 2]); z.RequiresGrad = true;
        var loss = z.CrossEntropy([0]);
        var g = Autograd.Grad([loss], [z], [Tensor.Scalar(-1.0, DType.Float64)])[0]!.ToDoubleArray();
        Assert.True(double.IsNegative(g[0]) && g[0] == 0, $"{g[0]}");
        Assert.True(double.IsNegative(g[1]) && g[1] == 0, $"{g[1]}");
    }
}
