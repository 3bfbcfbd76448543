using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = x if x > 0 else s·x (s = negative slope, default 0.01 as PyTorch);  ∂y/∂x = 1 if x > 0 else s (s at 0, as PyTorch)
    public static Tensor LeakyRelu(this Tensor x, double negativeSlope = 0.01)
    {
        Tensor y;
        using (Autograd.NoGrad()) y = Where(x.Gt(0), x, x * negativeSlope);
        return Autograd.Recording(x) ? new LeakyReluOp(x, negativeSlope).Attach(y, x) : y;
    }

    internal sealed class LeakyReluOp : Function
    {
        readonly double slope;
        public LeakyReluOp(Tensor x, double slope) { this.slope = slope; SaveForBackward(x); }
        public override string Name => "leaky_relu";
        public override IEnumerable<(string, object)> Attributes => [("negative_slope", slope)];
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0).Gt(0) * (1 - slope) + slope)];
    }
}
