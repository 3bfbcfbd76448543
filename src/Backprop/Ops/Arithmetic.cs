using System.Numerics;
using System.Numerics.Tensors;
using Backprop.Kernels;

namespace Backprop;

/// <summary>
/// Differentiable operations on tensors. Each op computes its output with a kernel and records its
/// backward next to it; gradients in the broadcast shape are reduced to each operand's shape by the engine.
/// Notation: g = ∂L/∂y, the upstream gradient.
/// </summary>
public static partial class Ops
{
    // y = a + b;  ∂y/∂a = 1, ∂y/∂b = 1
    public static Tensor Add(this Tensor a, Tensor b)
    {
        var y = Elementwise.Zip<AddK>(a, b, "add");
        if (Autograd.Recording(a, b)) Autograd.RecordStatic(y, "add", AddBackward, a, b);
        return y;
    }

    static readonly Action<Node, Tensor> AddBackward = static (node, g) => { node.Grads[0] = g; node.Grads[1] = g; };

    // y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1
    public static Tensor Sub(this Tensor a, Tensor b) =>
        Elementwise.Zip<SubK>(a, b, "sub").Record("sub", a, b, g => (g, b.RequiresGrad ? g.Neg() : null));

    // y = a ⊙ b;  ∂y/∂a = b, ∂y/∂b = a
    public static Tensor Mul(this Tensor a, Tensor b) =>
        Elementwise.Zip<MulK>(a, b, "mul").Record("mul", a, b,
            g => (a.RequiresGrad ? g.Mul(b) : null, b.RequiresGrad ? g.Mul(a) : null));

    // y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b² = −y/b
    public static Tensor Div(this Tensor a, Tensor b)
    {
        var y = Elementwise.Zip<DivK>(a, b, "div");
        return y.Record("div", a, b, g =>
        {
            var ga = g.Div(b);
            return (a.RequiresGrad ? ga : null, b.RequiresGrad ? ga.Mul(y).Neg() : null);
        });
    }

    // y = −x;  ∂y/∂x = −1
    public static Tensor Neg(this Tensor x) => Elementwise.Map<NegK>(x).Record("neg", x, static g => g.Neg());

    /// <summary>A one-element tensor of <paramref name="like"/>'s dtype, for scalar arithmetic.</summary>
    internal static Tensor ScalarLike(Tensor like, double value) => Tensor.Scalar(value, like.DType);

    struct AddK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(b, a, d);
    }

    struct SubK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
    }

    struct MulK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(b, a, d);
    }

    struct DivK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
    }

    struct NegK : IUnaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Negate(x, y);
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
