using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = Σᵢ xᵢ;  ∂y/∂xᵢ = 1
    public static Tensor Sum(this Tensor x)
    {
        var y = Tensor.Scalar(Backend.Current.SumAll(x), x.DType);
        return Autograd.Recording(x) ? new SumOp(x.shape, null).Attach(y, x) : y;
    }

    // y = Σ along axis;  ∂y/∂x = 1 broadcast back along the axis
    public static Tensor Sum(this Tensor x, int axis, bool keepDim = false)
    {
        var y = SumAlong(x, axis, keepDim);
        return Autograd.Recording(x) ? new SumOp(x.shape, ShapeUtil.Axis(axis, x.Rank, "sum")).Attach(y, x) : y;
    }

    internal sealed class SumOp(int[] shape, int? axis) : Function
    {
        public override string Name => "sum";
        public override IEnumerable<(string, object)> Attributes => axis is int a ? [("axis", a)] : [];
        protected override Tensor?[] Backward(Tensor g)
        {
            if (axis is not int a) return [g.Expand(shape)];
            var kept = (int[])shape.Clone();
            kept[a] = 1;
            return [g.Reshape(kept).Expand(shape)];
        }
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
        var (y, idx) = MaxAlong(x, axis, keepDim);
        return Autograd.Recording(x) ? new MaxOp(x.shape, ShapeUtil.Axis(axis, x.Rank, "max"), idx).Attach(y, x) : y;
    }

    internal sealed class MaxOp(int[] shape, int axis, int[] indices) : Function
    {
        public override string Name => "max";
        public override IEnumerable<(string, object)> Attributes => [("axis", axis)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var (outer, n, inner) = ShapeUtil.Around(shape, axis);
            var at = new int[outer * inner];   // flat position of each maximum
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < inner; j++) at[o * inner + j] = (o * n + indices[o * inner + j]) * inner + j;
            var dx = Tensor.Zeros(shape, g.DType);
            Backend.Current.IndexAdd(g.Reshape(at.Length, 1), at, dx.View(dx.Length, 1));
            return [dx];
        }
    }

    /// <summary>Maximum of all elements.</summary>
    public static Tensor Max(this Tensor x) => x.Reshape(x.Length).Max(0);

    // y = min along axis = −max(−x) (exact: the first minimum is the first maximum of −x);  ∂ as for max
    public static Tensor Min(this Tensor x, int axis, bool keepDim = false) => x.Neg().Max(axis, keepDim).Neg();

    /// <summary>Minimum of all elements.</summary>
    public static Tensor Min(this Tensor x) => x.Reshape(x.Length).Min(0);

    /// <summary>Index of the (first) maximum along <paramref name="axis"/>, e.g. predicted classes (row-major over the other dims).</summary>
    public static int[] ArgMax(this Tensor x, int axis = -1) => MaxAlong(x, axis, keepDim: false).Indices;

    /// <summary>Index of the (first) minimum along <paramref name="axis"/>.</summary>
    public static int[] ArgMin(this Tensor x, int axis = -1)
    {
        using var _ = Autograd.NoGrad();
        return MaxAlong(x.Neg(), axis, keepDim: false).Indices;
    }

    /// <summary>Σ along one axis through the backend, not recorded (also the engine's broadcast reduction).</summary>
    internal static Tensor SumAlong(Tensor x, int axis, bool keepDim)
    {
        axis = ShapeUtil.Axis(axis, x.Rank, "sum");
        var y = Tensor.Uninitialized(ReducedShape(x.shape, axis, keepDim), x.DType);   // every sum written by the kernel
        Backend.Current.Sum(x, axis, y);
        return y;
    }

    internal static (Tensor Values, int[] Indices) MaxAlong(Tensor x, int axis, bool keepDim)
    {
        axis = ShapeUtil.Axis(axis, x.Rank, "max");
        if (x.shape[axis] == 0) throw new ArgumentException($"max: axis {axis} of shape {ShapeUtil.Format(x.shape)} is empty");
        var y = Tensor.Uninitialized(ReducedShape(x.shape, axis, keepDim), x.DType);   // every maximum written by the kernel
        var idx = new int[y.Length];
        Backend.Current.Max(x, axis, y, idx);
        return (y, idx);
    }

    static int[] ReducedShape(int[] shape, int axis, bool keepDim)
    {
        if (keepDim) { var s = (int[])shape.Clone(); s[axis] = 1; return s; }
        var r = new int[shape.Length - 1];
        for (int i = 0, j = 0; i < shape.Length; i++) if (i != axis) r[j++] = shape[i];
        return r;
    }

}
