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
        return Autograd.Recording(a, b) ? new AddOp().Attach(y, a, b) : y;
    }

    internal sealed class AddOp : Function
    {
        public override string Name => "add";
        protected override Tensor?[] Backward(Tensor g) => [g, g];
    }

    // y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1
    public static Tensor Sub(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Sub, a, b, "sub");
        return Autograd.Recording(a, b) ? new SubOp().Attach(y, a, b) : y;
    }

    internal sealed class SubOp : Function
    {
        public override string Name => "sub";
        protected override Tensor?[] Backward(Tensor g) => [g, NeedsInputGrad(1) ? g.Neg() : null];
    }

    // y = a ⊙ b;  ∂y/∂a = b, ∂y/∂b = a
    public static Tensor Mul(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Mul, a, b, "mul");
        return Autograd.Recording(a, b) ? new MulOp(a, b).Attach(y, a, b) : y;
    }

    internal sealed class MulOp : Function
    {
        public MulOp(Tensor a, Tensor b) => SaveForBackward(a, b);
        public override string Name => "mul";
        protected override Tensor?[] Backward(Tensor g) =>
            [NeedsInputGrad(0) ? g.Mul(Saved(1)) : null, NeedsInputGrad(1) ? g.Mul(Saved(0)) : null];
    }

    // y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b² = −y/b
    public static Tensor Div(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Div, a, b, "div");
        return Autograd.Recording(a, b) ? new DivOp(b, y).Attach(y, a, b) : y;
    }

    internal sealed class DivOp : Function
    {
        public DivOp(Tensor b, Tensor y) => SaveForBackward(b, y);
        public override string Name => "div";
        protected override Tensor?[] Backward(Tensor g)
        {
            var ga = g.Div(Saved(0));
            return [NeedsInputGrad(0) ? ga : null, NeedsInputGrad(1) ? ga.Mul(Saved(1)).Neg() : null];
        }
    }

    // y = −x;  ∂y/∂x = −1
    public static Tensor Neg(this Tensor x)
    {
        var y = Map(UnaryOp.Neg, x);
        return Autograd.Recording(x) ? new NegOp().Attach(y, x) : y;
    }

    internal sealed class NegOp : Function
    {
        public override string Name => "neg";
        protected override Tensor?[] Backward(Tensor g) => [g.Neg()];
    }

    /// <summary>A one-element tensor of <paramref name="like"/>'s dtype, for scalar arithmetic.</summary>
    internal static Tensor ScalarLike(Tensor like, double value) => Tensor.Scalar(value, like.DType);

    /// <summary>y = op(x) through the current backend: the one place unary ops reach a kernel.</summary>
    internal static Tensor Map(UnaryOp op, Tensor x, double alpha = 0, double beta = 0)
    {
        var y = Tensor.Uninitialized(x.shape, x.DType);   // every element written by the kernel
        Backend.Current.Unary(op, x, y, alpha, beta);
        return y;
    }

    /// <summary>y = op(a, b) with broadcasting, through the current backend: the one place binary ops reach a kernel.</summary>
    internal static Tensor Zip(BinaryOp op, Tensor a, Tensor b, string name)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{name}: dtypes {a.DType} and {b.DType} differ; convert one with To()");
        var shape = ShapeUtil.Equal(a.shape, b.shape) ? (int[])a.shape.Clone() : ShapeUtil.Broadcast(a.shape, b.shape, name);
        var y = Tensor.Uninitialized(shape, a.DType);   // every element written by the kernel
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
