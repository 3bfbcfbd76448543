using Backprop.Backends;

namespace Backprop;

/// <summary>
/// Differentiable operations on tensors. Each op computes its output through the current backend
/// (<see cref="Backend.Current"/>) and records its backward next to it; gradients in the broadcast shape are reduced
/// to each operand's shape by the engine. Notation: g = ∂L/∂y, the upstream gradient.
/// </summary>
public static partial class Ops
{
    // y = a + b;  ∂y/∂a = 1, ∂y/∂b = 1
    public static Tensor Add(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Add, a, b, "add");
        if (Autograd.Recording(a, b)) Autograd.RecordStatic(y, "add", AddBackward, a, b, saves: Saves.Nothing);
        return y;
    }

    static readonly Action<Node, Tensor> AddBackward = static (node, g) => { node.Grads[0] = g; node.Grads[1] = g; };

    // y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1
    public static Tensor Sub(this Tensor a, Tensor b) =>
        Zip(BinaryOp.Sub, a, b, "sub").Record("sub", a, b, g => (g, b.RequiresGrad ? g.Neg() : null), Saves.Nothing);

    // y = a ⊙ b;  ∂y/∂a = b, ∂y/∂b = a
    public static Tensor Mul(this Tensor a, Tensor b) =>
        Zip(BinaryOp.Mul, a, b, "mul").Record("mul", a, b,
            g => (a.RequiresGrad ? g.Mul(b) : null, b.RequiresGrad ? g.Mul(a) : null));

    // y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b² = −y/b
    public static Tensor Div(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Div, a, b, "div");
        return y.Record("div", a, b, g =>
        {
            var ga = g.Div(b);
            return (a.RequiresGrad ? ga : null, b.RequiresGrad ? ga.Mul(y).Neg() : null);
        }, Saves.InputsAndOutput);
    }

    // y = −x;  ∂y/∂x = −1
    public static Tensor Neg(this Tensor x) => Map(UnaryOp.Neg, x).Record("neg", x, static g => g.Neg(), Saves.Nothing);

    /// <summary>A one-element tensor of <paramref name="like"/>'s dtype, for scalar arithmetic.</summary>
    internal static Tensor ScalarLike(Tensor like, double value) => Tensor.Scalar(value, like.DType);

    /// <summary>y = op(x) through the current backend: the one place unary ops reach a kernel.</summary>
    internal static Tensor Map(UnaryOp op, Tensor x, double alpha = 0, double beta = 0)
    {
        var y = Tensor.EmptyLike(x);
        Backend.Current.Unary(op, x, y, alpha, beta);
        return y;
    }

    /// <summary>y = op(a, b) with broadcasting, through the current backend: the one place binary ops reach a kernel.</summary>
    internal static Tensor Zip(BinaryOp op, Tensor a, Tensor b, string name)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{name}: dtypes {a.DType} and {b.DType} differ; convert one with To()");
        var shape = ShapeUtil.Equal(a.shape, b.shape) ? (int[])a.shape.Clone() : ShapeUtil.Broadcast(a.shape, b.shape, name);
        var y = Tensor.Empty(shape, a.DType);
        Backend.Current.Binary(op, a, b, y);
        return y;
    }
}

public sealed partial class Tensor
{
    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator -(Tensor x) => x.Neg();
    public static Tensor operator +(Tensor a, double b) => a.Add(Ops.ScalarLike(a, b));
    public static Tensor operator +(double a, Tensor b) => Ops.ScalarLike(b, a).Add(b);
    public static Tensor operator -(Tensor a, double b) => a.Sub(Ops.ScalarLike(a, b));
    public static Tensor operator -(double a, Tensor b) => Ops.ScalarLike(b, a).Sub(b);
    public static Tensor operator *(Tensor a, double b) => a.Mul(Ops.ScalarLike(a, b));
    public static Tensor operator *(double a, Tensor b) => Ops.ScalarLike(b, a).Mul(b);
    public static Tensor operator /(Tensor a, double b) => a.Div(Ops.ScalarLike(a, b));
    public static Tensor operator /(double a, Tensor b) => Ops.ScalarLike(b, a).Div(b);
}
