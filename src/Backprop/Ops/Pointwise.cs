using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = eˣ;  ∂y/∂x = y
    public static Tensor Exp(this Tensor x)
    {
        var y = Map(UnaryOp.Exp, x);
        return y.Record("exp", x, g => g.Mul(y), Saves.Output);
    }

    // y = ln x;  ∂y/∂x = 1/x
    public static Tensor Log(this Tensor x) => Map(UnaryOp.Log, x).Record("log", x, g => g.Div(x));

    // y = √x;  ∂y/∂x = 1/(2y)
    public static Tensor Sqrt(this Tensor x)
    {
        var y = Map(UnaryOp.Sqrt, x);
        return y.Record("sqrt", x, g => g.Div(y * 2.0), Saves.Output);
    }

    // y = xᵖ;  ∂y/∂x = p·xᵖ⁻¹
    public static Tensor Pow(this Tensor x, double p) => Map(UnaryOp.Pow, x, p).Record("pow", x, g => g.Mul(x.Pow(p - 1) * p));

    // y = sin x;  ∂y/∂x = cos x
    public static Tensor Sin(this Tensor x) => Map(UnaryOp.Sin, x).Record("sin", x, g => g.Mul(x.Cos()));

    // y = cos x;  ∂y/∂x = −sin x
    public static Tensor Cos(this Tensor x) => Map(UnaryOp.Cos, x).Record("cos", x, g => g.Mul(x.Sin()).Neg());

    // y = tanh x;  ∂y/∂x = 1 − y²
    public static Tensor Tanh(this Tensor x)
    {
        var y = Map(UnaryOp.Tanh, x);
        return y.Record("tanh", x, g => g.Mul(1.0 - y.Mul(y)), Saves.Output);
    }

    // y = σ(x) = 1/(1 + e⁻ˣ);  ∂y/∂x = y(1 − y), from the saved output (the kernels' σ is stable for large |x|)
    public static Tensor Sigmoid(this Tensor x)
    {
        var y = Map(UnaryOp.Sigmoid, x);
        return y.Record("sigmoid", x, g => g.Mul(y.Mul(1.0 - y)), Saves.Output);
    }

    // y = max(x, 0);  ∂y/∂x = [x > 0] (0 at the kink, as PyTorch)
    public static Tensor Relu(this Tensor x)
    {
        var y = Map(UnaryOp.Relu, x);
        if (Autograd.Recording(x)) Autograd.RecordStatic(y, "relu", ReluBackward, x);
        return y;
    }

    static readonly Action<Node, Tensor> ReluBackward = static (node, g) => node.Grads[0] = PassWhereGreater(g, node.Inputs[0], 0);

    /// <summary>g where x &gt; threshold, else 0 (equal shapes): the gate of ReLU's backward.</summary>
    internal static Tensor PassWhereGreater(Tensor g, Tensor x, double threshold)
    {
        var d = Tensor.EmptyLike(g);
        Backend.Current.Binary(BinaryOp.PassWhereGreater, g, x, d, threshold);
        return d;
    }

    // y = max(a, b) elementwise;  the gradient goes to the larger operand (to b on ties)
    public static Tensor Maximum(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Maximum, a, b, "maximum");
        return y.Record("maximum", a, b, g =>
        {
            var m = Tensor.EmptyLike(y);
            Backend.Current.Binary(BinaryOp.Greater, a.Detach().Expand(y.shape), b.Detach().Expand(y.shape), m);
            return (g.Mul(m), g.Mul(1.0 - m));
        });
    }

    // y = min(max(x, lo), hi);  ∂y/∂x = [lo < x < hi]
    public static Tensor Clamp(this Tensor x, double min, double max)
    {
        if (min > max) throw new ArgumentException($"clamp: min {min} is greater than max {max}");
        return Map(UnaryOp.Clamp, x, min, max).Record("clamp", x, g => g.Mul(Map(UnaryOp.Inside, x, min, max)));
    }

    // y = |x|;  ∂y/∂x = sign(x) (0 at 0, as PyTorch)
    public static Tensor Abs(this Tensor x) => Map(UnaryOp.Abs, x).Record("abs", x, g => g.Mul(Map(UnaryOp.Sign, x)));

    // y = condition ? a : b elementwise (condition non-zero = true; all three broadcast);  ∂y/∂a = [c], ∂y/∂b = [¬c]
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        if (a.DType != b.DType || condition.DType != a.DType)
            throw new ArgumentException($"where: dtypes {condition.DType}, {a.DType} and {b.DType} must match");
        var shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(condition.shape, a.shape, "where"), b.shape, "where");
        var y = Tensor.Empty(shape, a.DType);
        Backend.Current.Where(condition, a, b, y);
        var c = condition.Detach();
        return y.Record("where", a, b, g =>
        {
            var m = Map(UnaryOp.NonZero, c);
            return (a.RequiresGrad ? g.Mul(m) : null, b.RequiresGrad ? g.Mul(1.0 - m) : null);
        }, Saves.Nothing);
    }
}
