using Backprop.Kernels;

namespace Backprop;

public static partial class Ops
{
    // y = Σᵢ xᵢ;  ∂y/∂xᵢ = 1
    public static Tensor Sum(this Tensor x)
    {
        var y = Tensor.Scalar(0, x.DType);
        x = x.Dense();
        y.SetFlat(0, x.DType == DType.Float32 ? Reduce.SumAll<float>(x.Span<float>()) : Reduce.SumAll<double>(x.Span<double>()));
        return y.Record("sum", x, g => g.Expand(x.shape), Saves.Nothing);
    }

    // y = Σ along axis;  ∂y/∂x = 1 broadcast back along the axis
    public static Tensor Sum(this Tensor x, int axis, bool keepDim = false)
    {
        var y = Reduce.Sum(x, axis, keepDim);
        return y.Record("sum", x, g => g.Reshape(KeptShape(x, axis)).Expand(x.shape), Saves.Nothing);
    }

    // y = (1/n) Σᵢ xᵢ;  ∂y/∂xᵢ = 1/n
    public static Tensor Mean(this Tensor x)
    {
        if (x.Length == 0) throw new InvalidOperationException("mean: tensor is empty");
        return x.Sum() / x.Length;
    }

    public static Tensor Mean(this Tensor x, int axis, bool keepDim = false)
    {
        int n = x.Size(axis);
        if (n == 0) throw new InvalidOperationException($"mean: axis {axis} of shape {ShapeUtil.Format(x.shape)} is empty");
        return x.Sum(axis, keepDim) / n;
    }

    // y = max along axis;  ∂y/∂x = g at the (first) position of each maximum, 0 elsewhere
    public static Tensor Max(this Tensor x, int axis, bool keepDim = false)
    {
        var (y, idx) = Reduce.Max(x, axis, keepDim);
        int a = ShapeUtil.Axis(axis, x.Rank, "max");
        return y.Record("max", x, g =>
        {
            var (outer, n, inner) = ShapeUtil.Around(x.shape, a);
            var dx = Tensor.EmptyLike(x);
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < inner; j++)
                    dx.SetFlat((o * n + idx[o * inner + j]) * inner + j, g.GetFlat(o * inner + j));
            return dx;
        });
    }

    /// <summary>Maximum of all elements.</summary>
    public static Tensor Max(this Tensor x) => x.Reshape(x.Length).Max(0);

    // y = min along axis = −max(−x) (exact: the first minimum is the first maximum of −x);  ∂ as for max
    public static Tensor Min(this Tensor x, int axis, bool keepDim = false) => x.Neg().Max(axis, keepDim).Neg();

    /// <summary>Minimum of all elements.</summary>
    public static Tensor Min(this Tensor x) => x.Reshape(x.Length).Min(0);

    /// <summary>Index of the (first) maximum along <paramref name="axis"/>, e.g. predicted classes (row-major over the other dims).</summary>
    public static int[] ArgMax(this Tensor x, int axis = -1) => Reduce.Max(x, axis, keepDim: false).Indices;

    /// <summary>Index of the (first) minimum along <paramref name="axis"/>.</summary>
    public static int[] ArgMin(this Tensor x, int axis = -1)
    {
        using var _ = Autograd.NoGrad();
        return Reduce.Max(x.Neg(), axis, keepDim: false).Indices;
    }

    static int[] KeptShape(Tensor x, int axis)
    {
        var s = (int[])x.shape.Clone();
        s[ShapeUtil.Axis(axis, x.Rank, "sum")] = 1;
        return s;
    }
}
