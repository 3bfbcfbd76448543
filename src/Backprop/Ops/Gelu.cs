using Backprop.Backends;

namespace Backprop;

/// <summary>Which form of GELU to compute, as PyTorch's <c>approximate</c> argument.</summary>
public enum GeluApproximation { None, Tanh }

public static partial class Ops
{
    // Exact: y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2));  ∂y/∂x = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π)
    // Tanh:  y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³);  ∂y/∂x = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
    public static Tensor Gelu(this Tensor x, GeluApproximation approximate = GeluApproximation.None)
    {
        Tensor y;
        if (approximate == GeluApproximation.None) y = Map(UnaryOp.Gelu, x);   // one fused pass
        else using (Autograd.NoGrad()) y = x * 0.5 * (1.0 + GeluTanhArgument(x).Tanh());
        return Autograd.Recording(x) ? new GeluOp(x, approximate).Attach(y, x) : y;
    }

    const double SqrtTwoOverPi = 0.7978845608028654, GeluCubic = 0.044715;

    static Tensor GeluTanhArgument(Tensor x) => (x + x * x * x * GeluCubic) * SqrtTwoOverPi;

    internal sealed class GeluOp : Function
    {
        readonly GeluApproximation approximate;
        public GeluOp(Tensor x, GeluApproximation approximate) { this.approximate = approximate; SaveForBackward(x); }
        public override string Name => "gelu";
        public override IEnumerable<(string, object)> Attributes => [("approximate", approximate == GeluApproximation.None ? "none" : "tanh")];
        protected override Tensor?[] Backward(Tensor g)
        {
            var x = Saved(0);
            if (approximate == GeluApproximation.None)
            {
                var d = Tensor.Uninitialized(g.shape, g.DType);   // written in full by the kernel
                Backend.Current.Binary(BinaryOp.GeluGrad, g, x, d);
                return [d];
            }
            var t = GeluTanhArgument(x).Tanh();
            var du = (1.0 + x * x * (3 * GeluCubic)) * SqrtTwoOverPi;
            return [g.Mul((1.0 + t) * 0.5 + x * 0.5 * (1.0 - t * t) * du)];
        }
    }
}
