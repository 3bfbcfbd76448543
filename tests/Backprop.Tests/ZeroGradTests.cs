using Backprop.Nn;
using Backprop.Optim;
using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>
/// ZeroGrad defers its zeros (the next backward pass overwrites the gradient instead of adding to zeros): nothing a
/// user can observe may differ from writing the zeros at once.
/// </summary>
public class ZeroGradTests
{
    // A linear layer (its weight's gradient is a product written into the buffer, its bias's a column sum), an
    // element-wise use of a leaf (the engine's own accumulation) and a matmul, in one loss.
    static Tensor Loss(Linear layer, Tensor scale, Tensor x) =>
        (layer.Forward(x).Relu() * scale).Sum() + x.MatMul(layer.Weight.Transpose(0, 1)).Sum() * 0.5;

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void After_ZeroGrad_a_backward_pass_leaves_its_own_gradient_alone(DType dtype)
    {
        var g = new Generator(5);
        var layer = new Linear(7, 5, g, dtype: dtype);
        var scale = Leaf(Tensor.Normal([3, 5], 0, 1, g, dtype));
        var parameters = layer.Parameters().Append(scale).ToArray();
        var opt = new Sgd(parameters, learningRate: 0);
        for (int step = 0; step < 3; step++)
        {
            var x = Tensor.Normal([3, 7], 0, 1, g, dtype);
            var expected = Autograd.Grad([Loss(layer, scale, x)], parameters);   // leaves every Grad untouched
            Loss(layer, scale, x).Backward();   // on top of the previous step's gradients
            if (step == 2) layer.ZeroGrad(); else opt.ZeroGrad();   // both ways of zeroing
            if (step == 2) scale.Grad!.Fill(0);
            Loss(layer, scale, x).Backward();
            for (int i = 0; i < parameters.Length; i++) AllClose(expected[i]!, parameters[i].Grad!, 1e-6, $"step {step}, parameter {i}");
        }
    }

    [Fact]
    public void A_zeroed_gradient_reads_as_zeros_through_every_path()
    {
        var p = Leaf(Tensor.From([1.0, 2, 3, 4, 5, 6], [2, 3]));
        (p * p).Sum().Backward();
        var grad = p.Grad!;
        var row = grad.Narrow(0, 1, 1);   // a view taken before the zeroing
        new Sgd([p], 0.1).ZeroGrad();
        Assert.Same(grad, p.Grad);   // zeroed in place, as Fill(0)
        Assert.All(row.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.Equal(0.0, grad[1, 2]);
        Assert.All(grad.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.Equal(0.0, (grad * 1).Sum().Item());
    }

    [Fact]
    public void Readers_on_several_threads_all_see_the_zeros()
    {
        for (int round = 0; round < 20; round++)
        {
            var p = Leaf(Tensor.Full([256, 256], 3.0, DType.Float32));
            p.Sum().Backward();
            new Sgd([p], 0.1).ZeroGrad();
            var sums = new double[4];
            Parallel.For(0, sums.Length, i => sums[i] = p.Grad!.ToDoubleArray().Sum(Math.Abs));
            Assert.All(sums, s => Assert.Equal(0.0, s));
        }
    }

    [Fact]
    public void A_gradient_that_is_part_of_a_larger_tensor_is_zeroed_alone()
    {
        var p = Leaf(Tensor.From([1.0, 2, 3, 4, 5, 6], [2, 3]));
        var big = Tensor.From(Enumerable.Range(1, 12).Select(i => (double)i).ToArray(), [4, 3]);
        p.Grad = big.Narrow(0, 1, 2);   // rows 1 and 2 of a user's tensor
        new Sgd([p], 0.1).ZeroGrad();
        Assert.Equal([1.0, 2, 3, 0, 0, 0, 0, 0, 0, 10, 11, 12], big.ToDoubleArray());
        (p * 2).Sum().Backward();
        Assert.Equal([1.0, 2, 3, 2, 2, 2, 2, 2, 2, 10, 11, 12], big.ToDoubleArray());
    }

    [Fact]
    public void A_span_taken_before_ZeroGrad_reads_zeros()
    {
        var p = Leaf(Tensor.From([1.0f, 2, 3]));
        (p * p).Sum().Backward();
        var span = p.Grad!.AsFloatSpan();
        new Sgd([p], 0.1).ZeroGrad();
        Assert.Equal([0f, 0, 0], span.ToArray());
    }

    [Fact]
    public void A_backward_pass_fed_the_zeroed_gradient_itself_adds_zeros()
    {
        var p = Leaf(Tensor.From([1.0, 2, 3]));
        (p * p).Sum().Backward();
        new Sgd([p], 0.1).ZeroGrad();
        p.Backward(p.Grad);   // the incoming gradient is the zeroed buffer: 0 + 0
        Assert.Equal([0.0, 0, 0], p.Grad!.ToDoubleArray());
    }

    [Fact]
    public void A_step_right_after_ZeroGrad_sees_zero_gradients()
    {
        var p = Leaf(Tensor.From([1.0, -2.0]));
        (p * 5).Sum().Backward();
        var opt = new Sgd([p], learningRate: 0.1, weightDecay: 0.5);
        opt.ZeroGrad();
        opt.Step();   // only the decay moves θ: θ − 0.1·0.5·θ
        Assert.Equal([0.95, -1.9], p.ToDoubleArray());
    }
}
