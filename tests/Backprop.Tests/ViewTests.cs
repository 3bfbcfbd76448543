namespace Backprop.Tests;

/// <summary>Views are layouts over shared memory, as in PyTorch: no copy, writes visible through every view.</summary>
public class ViewTests
{
    static Tensor Range(params int[] shape) => Tensor.Arange(0, shape.Aggregate(1, (a, b) => a * b), 1, DType.Float64).Reshape(shape);

    [Fact]
    public void Transpose_swaps_strides_and_shares_memory()
    {
        var x = Range(2, 3);
        var t = x.T();
        Assert.Equal([3, 2], t.Shape.ToArray());
        Assert.Equal([1, 3], t.Strides.ToArray());
        Assert.False(t.IsContiguous);
        Assert.True(t.SharesStorageWith(x));
        Assert.Equal([0.0, 3, 1, 4, 2, 5], t.ToDoubleArray());
        t[2, 1] = 50;
        Assert.Equal(50, x[1, 2]);
    }

    [Fact]
    public void View_needs_a_compatible_layout_and_reshape_copies_when_it_must()
    {
        var x = Range(2, 3, 4);
        Assert.True(x.View(6, 4).SharesStorageWith(x));
        Assert.True(x.Permute(1, 0, 2).Reshape(3, 8).SharesStorageWith(x) == false);
        Assert.True(x.Transpose(0, 1).View(3, 2, 2, 2).SharesStorageWith(x));   // splitting one dimension keeps a view
        var e = Assert.Throws<InvalidOperationException>(() => x.Transpose(1, 2).View(24));
        Assert.Contains("Reshape", e.Message);
        Assert.Equal(x.Transpose(1, 2).Contiguous().ToDoubleArray(), x.Transpose(1, 2).Reshape(24).ToDoubleArray());
    }

    [Fact]
    public void Slices_select_and_narrow_are_offsets_and_strides_into_the_same_storage()
    {
        var x = Range(4, 6);
        var s = x.Slice(1, 1, 6, 2);   // columns 1, 3, 5
        Assert.Equal([4, 3], s.Shape.ToArray());
        Assert.Equal([6, 2], s.Strides.ToArray());
        Assert.Equal(1, s.StorageOffset);
        Assert.Equal([1.0, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23], s.ToDoubleArray());
        Assert.Equal([12.0, 13, 14, 15, 16, 17], x.Select(0, 2).ToDoubleArray());
        Assert.Equal([2.0, 8, 14, 20], x.Select(1, -4).ToDoubleArray());
        Assert.Equal([7.0, 8, 13, 14], x[1..3, 1..3].ToDoubleArray());
        x.Narrow(0, 3, 1).Fill(-1);
        Assert.Equal(-1, x[3, 5]);
        Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(1, 4, 3));
        Assert.Throws<IndexOutOfRangeException>(() => x.Select(0, 4));
    }

    [Fact]
    public void Expand_repeats_with_stride_zero_without_copying()
    {
        var x = Tensor.From([1.0, 2.0, 3.0]).Reshape(3, 1);
        var e = x.Expand(2, 3, 4);
        Assert.Equal([0, 1, 0], e.Strides.ToArray());
        Assert.True(e.SharesStorageWith(x));
        Assert.Equal(24, e.ToDoubleArray().Length);
        Assert.Equal([1.0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], e.Select(0, 1).ToDoubleArray());
        Assert.Throws<ArgumentException>(() => Range(3, 2).Expand(3, 4));
    }

    [Fact]
    public void Squeeze_unsqueeze_and_flatten_change_only_the_shape()
    {
        var x = Range(2, 1, 3);
        Assert.Equal([2, 3], x.Squeeze().Shape.ToArray());
        Assert.Equal([2, 1, 3], x.Squeeze(0).Shape.ToArray());
        Assert.Equal([2, 1, 3, 1], x.Unsqueeze(-1).Shape.ToArray());
        Assert.Equal([1, 2, 1, 3], x.Unsqueeze(0).Shape.ToArray());
        Assert.Equal([6], x.Flatten(0).Shape.ToArray());
        Assert.Equal([2, 3], x.Flatten().Shape.ToArray());
        Assert.True(x.Flatten(0).SharesStorageWith(x));
    }

    [Fact]
    public void Ops_on_strided_inputs_equal_the_same_ops_on_contiguous_copies()
    {
        var g = new Generator(3);
        var a = Tensor.Normal([5, 4], 0, 1, g, DType.Float64);
        var b = Tensor.Normal([3, 5], 0, 1, g, DType.Float64);
        var at = a.T(); var bt = b.T();
        Assert.Equal(at.Contiguous().MatMul(bt.Contiguous()).ToDoubleArray(), at.MatMul(bt).ToDoubleArray());
        Assert.Equal(at.Contiguous().Exp().ToDoubleArray(), at.Exp().ToDoubleArray());
        Assert.Equal(at.Contiguous().Softmax(0).ToDoubleArray(), at.Softmax(0).ToDoubleArray());
        Assert.Equal((at.Contiguous() + bt.Contiguous().Sum(1)).ToDoubleArray(), (at + bt.Sum(1)).ToDoubleArray());
        Assert.Equal(at.Contiguous().Max(1).ToDoubleArray(), at.Max(1).ToDoubleArray());
    }

    [Fact]
    public void Fill_and_copy_through_a_view_bump_the_shared_version_counter()
    {
        var x = Range(3, 3);
        var diag = x.Slice(1, 0, 3);
        int v = x.Version;
        x.T().Select(0, 1).Fill(7);   // column 1
        Assert.Equal([0.0, 7, 2, 3, 7, 5, 6, 7, 8], x.ToDoubleArray());
        diag.CopyFrom(Range(3, 3).T());
        Assert.Equal([0.0, 3, 6, 1, 4, 7, 2, 5, 8], x.ToDoubleArray());
        Assert.Equal(v + 2, x.Version);
        Assert.Equal(x.Version, diag.Version);
    }

    [Fact]
    public void Matmul_follows_torch_matmul_for_vectors_and_batches()
    {
        var v = Tensor.From([1.0, 2.0]);
        var m = Range(2, 2);
        Assert.Equal(Array.Empty<int>(), v.MatMul(v).Shape.ToArray());
        Assert.Equal(5, v.MatMul(v).Item());
        Assert.Equal([2.0, 8], m.MatMul(v).ToDoubleArray());
        Assert.Equal([4.0, 7], v.MatMul(m).ToDoubleArray());
        var batch = Range(3, 2, 2);
        var r = batch.MatMul(m);   // (3,2,2)·(2,2): the matrix broadcasts over the batch
        Assert.Equal([3, 2, 2], r.Shape.ToArray());
        Assert.Equal(batch.Select(0, 2).MatMul(m).ToDoubleArray(), r.Select(0, 2).ToDoubleArray());
        Assert.Throws<ArgumentException>(() => Range(2, 3).MatMul(Range(2, 2, 3)));
    }
}
