using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Tensor creation, broadcasting, shape errors, no-grad and precision agreement.</summary>
public class TensorTests
{
    [Fact]
    public void A_large_copy_shared_between_threads_is_exact()
    {
        // 3 MB: above the size copied in pieces on every core; a view's offset and a ragged last piece included.
        var g = new Generator(21);
        var x = Tensor.Normal([1000, 777], 0, 1, g);
        var view = x[3..997];
        Assert.Equal(x.ToDoubleArray(), x.Clone().ToDoubleArray());
        Assert.Equal(view.ToDoubleArray(), view.Clone().ToDoubleArray());
        var d = Tensor.Normal([1000, 777], 0, 1, g, DType.Float64);
        Assert.Equal(d.ToDoubleArray(), d.Clone().ToDoubleArray());
    }

    [Fact]
    public void Matmul_shape_error_names_the_op_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Zeros([16, 784]).MatMul(Tensor.Zeros([50, 10])));
        Assert.Equal("matmul: (16,784) x (50,10): inner dimensions 784 and 50 differ", e.Message);
    }

    [Fact]
    public void Broadcast_error_names_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Zeros([3, 4]) + Tensor.Zeros([3]));
        Assert.Contains("add: shapes (3,4) and (3)", e.Message);
    }

    [Fact]
    public void Broadcasting_follows_numpy()
    {
        var a = Tensor.Arange(0, 6, dtype: DType.Float64).Reshape(2, 1, 3);
        var b = Tensor.Arange(0, 4, dtype: DType.Float64).Reshape(4, 1);
        var c = a * 10.0 + b;   // (2,4,3)
        Assert.Equal([2, 4, 3], c.Shape.ToArray());
        for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) for (int k = 0; k < 3; k++)
            Assert.Equal((i * 3 + k) * 10 + j, c[i, j, k]);
    }

    [Fact]
    public void Reductions_over_axes()
    {
        var x = Tensor.From(new double[,] { { 1, 5, 3 }, { 4, 2, 6 } });
        AllClose(Tensor.From([5.0, 7, 9]), x.Sum(0), 0);
        AllClose(Tensor.From([3.0, 4]), x.Mean(1), 0);
        AllClose(Tensor.From([5.0, 6]), x.Max(1), 0);
        Assert.Equal([1, 2], x.ArgMax(1));
        Assert.Equal(21, x.Sum().Item());
    }

    [Fact]
    public void No_grad_records_no_graph()
    {
        var w = Leaf(Tensor.Ones([2, 2]));
        using (Autograd.NoGrad())
        {
            var y = w.MatMul(w).Relu().Sum();
            Assert.False(y.RequiresGrad);
            Assert.Null(y.GradFnName);
        }
        var z = w.MatMul(w).Sum();
        Assert.Equal("sum", z.GradFnName);
    }

    [Fact]
    public void Detach_cuts_the_graph()
    {
        var w = Leaf(Tensor.Ones([3]));
        var y = (w * 2.0).Detach();
        Assert.False(y.RequiresGrad);
        Assert.Throws<InvalidOperationException>(() => y.Sum().Backward());
    }

    [Fact]
    public void Backward_without_gradient_needs_a_scalar()
    {
        var w = Leaf(Tensor.Ones([3]));
        var e = Assert.Throws<InvalidOperationException>(() => (w * 2.0).Backward());
        Assert.Contains("shape (3)", e.Message);
        (w * 2.0).Backward(Tensor.From([1f, 2f, 3f]));
        AllClose(Tensor.From([2f, 4f, 6f]), w.Grad!, 0);
    }

    [Fact]
    public void Float32_and_float64_agree_to_float32_precision()
    {
        var g = new Generator(11);
        var x64 = Tensor.Normal([8, 20], 0, 1, g, DType.Float64);
        var w64 = Leaf(Tensor.Normal([10, 20], 0, 0.3, g, DType.Float64));
        var b64 = Leaf(Tensor.Normal([10], 0, 0.3, g, DType.Float64));
        var x32 = x64.To(DType.Float32);
        var w32 = Leaf(w64.Detach().To(DType.Float32));
        var b32 = Leaf(b64.Detach().To(DType.Float32));
        int[] t = [0, 1, 2, 3, 4, 5, 6, 7];
        var l64 = x64.Linear(w64, b64).Tanh().BatchNorm(Tensor.Ones([10], DType.Float64), Tensor.Zeros([10], DType.Float64)).CrossEntropy(t);
        var l32 = x32.Linear(w32, b32).Tanh().BatchNorm(Tensor.Ones([10]), Tensor.Zeros([10])).CrossEntropy(t);
        l64.Backward(); l32.Backward();
        Close(l64.Item(), l32.Item(), 1e-5, "loss");
        AllClose(w64.Grad!, w32.Grad!.To(DType.Float64), 1e-4, "dW");
        AllClose(b64.Grad!, b32.Grad!.To(DType.Float64), 1e-4, "db");
    }

    [Fact]
    public void Same_seed_same_numbers()
    {
        var a = Tensor.Normal([100], 0, 1, new Generator(7));
        var b = Tensor.Normal([100], 0, 1, new Generator(7));
        Assert.Equal(a.ToFloatArray(), b.ToFloatArray());
        Assert.NotEqual(a.ToFloatArray(), Tensor.Normal([100], 0, 1, new Generator(8)).ToFloatArray());
    }

    [Fact]
    public void Shape_ops_move_the_right_elements()
    {
        var x = Tensor.Arange(0, 6).Reshape(2, 3);
        var t = x.T();
        Assert.Equal([3, 2], t.Shape.ToArray());
        Assert.Equal(5, t[2, 1]);
        Assert.Equal([3f, 4, 5], x.SliceRows(1, 1).ToFloatArray());
        Assert.Equal([3f, 4, 5, 0, 1, 2], x.IndexSelect([1, 0]).ToFloatArray());
        Assert.Equal([2f, 3], x.Gather([2, 0]).ToFloatArray());
        Assert.Equal([0f, 1, 2, 0, 3, 4, 5, 3], Ops.Concat([x, x.Reshape(2, 3).SliceRows(0, 2).IndexSelect([0, 1]).Gather([0, 0]).Reshape(2, 1)], 1).ToFloatArray());
    }

    // A gather this large (a CIFAR-10 batch) is shared among threads; rows repeat and come in any order.
    [Theory]
    [InlineData(DType.Float32), InlineData(DType.Float64)]
    public void A_large_index_select_copies_every_row_it_names(DType dtype)
    {
        const int n = 500, row = 3072;
        var x = Tensor.Arange(0, n * row).Reshape(n, row).To(dtype);
        var g = new Generator(6);
        var rows = Enumerable.Range(0, 300).Select(_ => g.NextInt(n)).Append(n - 1).Append(0).Append(n - 1).ToArray();
        var y = x.IndexSelect(rows).ToDoubleArray();
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < row; j += 97)
                Assert.Equal(rows[i] * row + j, y[i * row + j]);
        Assert.Throws<IndexOutOfRangeException>(() => x.IndexSelect([.. rows, n]));
    }
}
