using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = (1/β) log(1 + e^{βx}), and y = x where βx > threshold (PyTorch's defaults β = 1, threshold = 20);
    //   ∂y/∂x = σ(βx), and 1 where βx > threshold
    public static Tensor Softplus(this Tensor x, double beta = 1, double threshold = 20)
    {
        Tensor y;
        using (Autograd.NoGrad())
        {
            var bx = x * beta;
            y = Where((bx - threshold).Gt(0), x, Map(UnaryOp.Softplus, bx) * (1 / beta));
        }
        return Autograd.Recording(x) ? new SoftplusOp(x, beta, threshold).Attach(y, x) : y;
    }

    internal sealed class SoftplusOp : Function
    {
        readonly double beta, threshold;
        public SoftplusOp(Tensor x, double beta, double threshold) { this.beta = beta; this.threshold = threshold; SaveForBackward(x); }
        public override string Name => "softplus";
        public override IEnumerable<(string, object)> Attributes => [("beta", beta), ("threshold", threshold)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var bx = Saved(0) * beta;
            return [g.Mul(Where((bx - threshold).Gt(0), Tensor.OnesLike(bx), bx.Sigmoid()))];
        }
    }
}
