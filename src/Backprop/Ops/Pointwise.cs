using System.Numerics;
using System.Numerics.Tensors;
using Backprop.Kernels;

namespace Backprop;

public static partial class Ops
{
    // y = eˣ;  ∂y/∂x = y
    public static Tensor Exp(this Tensor x)
    {
        var y = Elementwise.Map<ExpK>(x);
        return y.Record("exp", x, g => g.Mul(y));
    }

    // y = ln x;  ∂y/∂x = 1/x
    public static Tensor Log(this Tensor x) => Elementwise.Map<LogK>(x).Record("log", x, g => g.Div(x));

    // y = √x;  ∂y/∂x = 1/(2y)
    public static Tensor Sqrt(this Tensor x)
    {
        var y = Elementwise.Map<SqrtK>(x);
        return y.Record("sqrt", x, g => g.Div(y * 2.0));
    }

    // y = xᵖ;  ∂y/∂x = p·xᵖ⁻¹
    public static Tensor Pow(this Tensor x, double p)
    {
        var y = Tensor.EmptyLike(x);
        var xd = x.Dense();
        if (x.DType == DType.Float32) TensorPrimitives.Pow(xd.Span<float>(), (float)p, y.Span<float>());
        else TensorPrimitives.Pow(xd.Span<double>(), p, y.Span<double>());
        return y.Record("pow", x, g => g.Mul(x.Pow(p - 1) * p));
    }

    // y = sin x;  ∂y/∂x = cos x
    public static Tensor Sin(this Tensor x) => Elementwise.Map<SinK>(x).Record("sin", x, g => g.Mul(x.Cos()));

    // y = cos x;  ∂y/∂x = −sin x
    public static Tensor Cos(this Tensor x) => Elementwise.Map<CosK>(x).Record("cos", x, g => g.Mul(x.Sin()).Neg());

    // y = tanh x;  ∂y/∂x = 1 − y²
    public static Tensor Tanh(this Tensor x)
    {
        var y = Elementwise.Map<TanhK>(x);
        return y.Record("tanh", x, g => g.Mul(1.0 - y.Mul(y)));
    }

    // y = σ(x) = 1/(1 + e⁻ˣ);  ∂y/∂x = y(1 − y), from the saved output (TensorPrimitives' σ is stable for large |x|)
    public static Tensor Sigmoid(this Tensor x)
    {
        var y = Elementwise.Map<SigmoidK>(x);
        return y.Record("sigmoid", x, g => g.Mul(y.Mul(1.0 - y)));
    }

    // y = max(x, 0);  ∂y/∂x = [x > 0] (0 at the kink, as PyTorch)
    public static Tensor Relu(this Tensor x)
    {
        var y = Elementwise.Map<ReluK>(x);
        if (Autograd.Recording(x)) Autograd.RecordStatic(y, "relu", ReluBackward, x);
        return y;
    }

    static readonly Action<Node, Tensor> ReluBackward = static (node, g) => node.Grads[0] = Masks.PassWhereGreater(g, node.Inputs[0], 0);

    // y = max(a, b) elementwise;  the gradient goes to the larger operand (to b on ties)
    public static Tensor Maximum(this Tensor a, Tensor b)
    {
        var y = Elementwise.Zip<MaxK>(a, b, "maximum");
        return y.Record("maximum", a, b, g =>
        {
            var ab = ShapeUtil.Equal(a.shape, y.shape) ? a : a + Tensor.ZerosLike(y);
            var bb = ShapeUtil.Equal(b.shape, y.shape) ? b : b + Tensor.ZerosLike(y);
            var m = Masks.Greater(ab, bb);
            return (g.Mul(m), g.Mul(1.0 - m));
        });
    }

    // y = min(max(x, lo), hi);  ∂y/∂x = [lo < x < hi]
    public static Tensor Clamp(this Tensor x, double min, double max)
    {
        if (min > max) throw new ArgumentException($"clamp: min {min} is greater than max {max}");
        var y = Tensor.EmptyLike(x);
        var xd = x.Dense();
        if (x.DType == DType.Float32)
        {
            TensorPrimitives.Max(xd.Span<float>(), (float)min, y.Span<float>());
            TensorPrimitives.Min(y.Span<float>(), (float)max, y.Span<float>());
        }
        else
        {
            TensorPrimitives.Max(xd.Span<double>(), min, y.Span<double>());
            TensorPrimitives.Min(y.Span<double>(), max, y.Span<double>());
        }
        return y.Record("clamp", x, g => g.Mul(Masks.Inside(x, min, max)));
    }

    // y = |x|;  ∂y/∂x = sign(x) (0 at 0, as PyTorch)
    public static Tensor Abs(this Tensor x) => Elementwise.Map<AbsK>(x).Record("abs", x, g => g.Mul(Masks.Sign(x)));

    // y = condition ? a : b elementwise (condition non-zero = true; all three broadcast);  ∂y/∂a = [c], ∂y/∂b = [¬c]
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        if (a.DType != b.DType || condition.DType != a.DType)
            throw new ArgumentException($"where: dtypes {condition.DType}, {a.DType} and {b.DType} must match");
        var shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(condition.shape, a.shape, "where"), b.shape, "where");
        var c = condition.Detach().Expand(shape).Dense();
        var ad = a.Detach().Expand(shape).Dense();
        var bd = b.Detach().Expand(shape).Dense();
        var y = Tensor.Empty(shape, a.DType);
        for (int i = 0; i < y.Length; i++) y.SetFlat(i, c.GetFlat(i) != 0 ? ad.GetFlat(i) : bd.GetFlat(i));
        return y.Record("where", a, b, g =>
        {
            var m = Masks.NonZero(c);
            return (a.RequiresGrad ? g.Mul(m) : null, b.RequiresGrad ? g.Mul(1.0 - m) : null);
        }, Saves.Nothing);
    }

    struct AbsK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Abs(x, y); }
    struct ExpK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Exp(x, y); }
    struct LogK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Log(x, y); }
    struct SqrtK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Sqrt(x, y); }
    struct SinK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Sin(x, y); }
    struct CosK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Cos(x, y); }
    struct TanhK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Tanh(x, y); }
    struct SigmoidK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Sigmoid(x, y); }
    struct ReluK : IUnaryKernel { public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(x, T.Zero, y); }

    struct MaxK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(b, a, d);
    }
}
