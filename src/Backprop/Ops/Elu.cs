using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = x if x > 0 else α(eˣ − 1) (expm1: accurate near 0);  ∂y/∂x = 1 if x > 0 else α eˣ (from x: y + α cancels for x ≪ 0)
    public static Tensor Elu(this Tensor x, double alpha = 1.0)
    {
        Tensor y;
        using (Autograd.NoGrad()) y = Where(x.Gt(0), x, Map(UnaryOp.Expm1, x) * alpha);
        return Autograd.Recording(x) ? new EluOp(x, alpha).Attach(y, x) : y;
    }

    internal sealed class EluOp : Function
    {
        readonly double alpha;
        public EluOp(Tensor x, double alpha) { this.alpha = alpha; SaveForBackward(x); }
        public override string Name => "elu";
        public override IEnumerable<(string, object)> Attributes => [("alpha", alpha)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var x = Saved(0);
            return [g.Mul(Where(x.Gt(0), Tensor.OnesLike(x), x.Exp() * alpha))];
        }
    }
}
