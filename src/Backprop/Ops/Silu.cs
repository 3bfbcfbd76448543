namespace Backprop;

public static partial class Ops
{
    // y = x·σ(x) (SiLU, "swish");  ∂y/∂x = σ(x)·(1 + x(1 − σ(x)))
    public static Tensor Silu(this Tensor x)
    {
        Tensor y;
        using (Autograd.NoGrad()) y = x * x.Sigmoid();
        return Autograd.Recording(x) ? new SiluOp(x).Attach(y, x) : y;
    }

    internal sealed class SiluOp : Function
    {
        public SiluOp(Tensor x) => SaveForBackward(x);
        public override string Name => "silu";
        protected override Tensor?[] Backward(Tensor g)
        {
            var x = Saved(0);
            var s = x.Sigmoid();
            return [g.Mul(s * (1.0 + x * (1.0 - s)))];
        }
    }
}
