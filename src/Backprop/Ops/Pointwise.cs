using Backprop.Backends;

namespace Backprop;

public static partial class Ops
{
    // y = eˣ;  ∂y/∂x = y
    public static Tensor Exp(this Tensor x) { var y = Map(UnaryOp.Exp, x); return Autograd.Recording(x) ? new ExpOp(y).Attach(y, x) : y; }

    internal sealed class ExpOp : Function
    {
        public ExpOp(Tensor y) => SaveForBackward(y);
        public override string Name => "exp";
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0))];
    }

    // y = ln x;  ∂y/∂x = 1/x
    public static Tensor Log(this Tensor x) { var y = Map(UnaryOp.Log, x); return Autograd.Recording(x) ? new LogOp(x).Attach(y, x) : y; }

    internal sealed class LogOp : Function
    {
        public LogOp(Tensor x) => SaveForBackward(x);
        public override string Name => "log";
        protected override Tensor?[] Backward(Tensor g) => [g.Div(Saved(0))];
    }

    // y = √x;  ∂y/∂x = 1/(2y)
    public static Tensor Sqrt(this Tensor x) { var y = Map(UnaryOp.Sqrt, x); return Autograd.Recording(x) ? new SqrtOp(y).Attach(y, x) : y; }

    internal sealed class SqrtOp : Function
    {
        public SqrtOp(Tensor y) => SaveForBackward(y);
        public override string Name => "sqrt";
        protected override Tensor?[] Backward(Tensor g) => [g.Div(Saved(0) * 2.0)];
    }

    // y = xᵖ;  ∂y/∂x = p·xᵖ⁻¹
    public static Tensor Pow(this Tensor x, double p) { var y = Map(UnaryOp.Pow, x, p); return Autograd.Recording(x) ? new PowOp(x, p).Attach(y, x) : y; }

    internal sealed class PowOp : Function
    {
        readonly double p;
        public PowOp(Tensor x, double p) { this.p = p; SaveForBackward(x); }
        public override string Name => "pow";
        public override IEnumerable<(string, object)> Attributes => [("exponent", p)];
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0).Pow(p - 1) * p)];
    }

    // y = sin x;  ∂y/∂x = cos x
    public static Tensor Sin(this Tensor x) { var y = Map(UnaryOp.Sin, x); return Autograd.Recording(x) ? new SinOp(x).Attach(y, x) : y; }

    internal sealed class SinOp : Function
    {
        public SinOp(Tensor x) => SaveForBackward(x);
        public override string Name => "sin";
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0).Cos())];
    }

    // y = erf x = (2/√π)∫₀ˣ e^(−t²) dt;  ∂y/∂x = (2/√π) e^(−x²)  (double-precision erf; ONNX's Erf, torch.erf)
    public static Tensor Erf(this Tensor x) { var y = Map(UnaryOp.Erf, x); return Autograd.Recording(x) ? new ErfOp(x).Attach(y, x) : y; }

    internal sealed class ErfOp : Function
    {
        public ErfOp(Tensor x) => SaveForBackward(x);
        public override string Name => "erf";
        protected override Tensor?[] Backward(Tensor g) { var x = Saved(0); return [g.Mul((x.Mul(x).Neg()).Exp() * (2 / Math.Sqrt(Math.PI)))]; }
    }

    // y = cos x;  ∂y/∂x = −sin x
    public static Tensor Cos(this Tensor x) { var y = Map(UnaryOp.Cos, x); return Autograd.Recording(x) ? new CosOp(x).Attach(y, x) : y; }

    internal sealed class CosOp : Function
    {
        public CosOp(Tensor x) => SaveForBackward(x);
        public override string Name => "cos";
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0).Sin()).Neg()];
    }

    // y = tanh x;  ∂y/∂x = 1 − y²
    public static Tensor Tanh(this Tensor x) { var y = Map(UnaryOp.Tanh, x); return Autograd.Recording(x) ? new TanhOp(y).Attach(y, x) : y; }

    internal sealed class TanhOp : Function
    {
        public TanhOp(Tensor y) => SaveForBackward(y);
        public override string Name => "tanh";
        protected override Tensor?[] Backward(Tensor g) { var y = Saved(0); return [g.Mul(1.0 - y.Mul(y))]; }
    }

    // y = σ(x) = 1/(1 + e⁻ˣ);  ∂y/∂x = y(1 − y), from the saved output (the kernels' σ is stable for large |x|)
    public static Tensor Sigmoid(this Tensor x) { var y = Map(UnaryOp.Sigmoid, x); return Autograd.Recording(x) ? new SigmoidOp(y).Attach(y, x) : y; }

    internal sealed class SigmoidOp : Function
    {
        public SigmoidOp(Tensor y) => SaveForBackward(y);
        public override string Name => "sigmoid";
        protected override Tensor?[] Backward(Tensor g) { var y = Saved(0); return [g.Mul(y.Mul(1.0 - y))]; }
    }

    // y = max(x, 0);  ∂y/∂x = [x > 0] (0 at the kink, as PyTorch)
    public static Tensor Relu(this Tensor x) { var y = Map(UnaryOp.Relu, x); return Autograd.Recording(x) ? new ReluOp(x).Attach(y, x) : y; }

    internal sealed class ReluOp : Function
    {
        public ReluOp(Tensor x) => SaveForBackward(x);
        public override string Name => "relu";
        protected override Tensor?[] Backward(Tensor g) => [PassWhereGreater(g, Saved(0), 0)];
    }

    /// <summary>1 where x &gt; <paramref name="threshold"/>, else 0, in x's dtype (PyTorch's <c>x &gt; t</c>): a mask, not differentiated.</summary>
    public static Tensor Gt(this Tensor x, double threshold)
    {
        var y = Tensor.Uninitialized(x.shape, x.DType);   // written in full by the gate
        Backend.Current.Binary(BinaryOp.Greater, x, Tensor.Scalar(threshold, x.DType), y);
        return y;
    }

    /// <summary>g where x &gt; threshold, else 0 (equal shapes): the gate of ReLU's backward.</summary>
    internal static Tensor PassWhereGreater(Tensor g, Tensor x, double threshold)
    {
        var d = Tensor.Uninitialized(g.shape, g.DType);   // written in full by the gate
        Backend.Current.Binary(BinaryOp.PassWhereGreater, g, x, d, threshold);
        return d;
    }

    // y = max(a, b) elementwise;  the gradient goes to the larger operand (to b on ties)
    public static Tensor Maximum(this Tensor a, Tensor b)
    {
        var y = Zip(BinaryOp.Maximum, a, b, "maximum");
        return Autograd.Recording(a, b) ? new MaximumOp(a, b).Attach(y, a, b) : y;
    }

    internal sealed class MaximumOp : Function
    {
        public MaximumOp(Tensor a, Tensor b) => SaveForBackward(a, b);
        public override string Name => "maximum";
        protected override Tensor?[] Backward(Tensor g)
        {
            var m = Tensor.EmptyLike(g);
            Backend.Current.Binary(BinaryOp.Greater, Saved(0).Detach().Expand(g.shape), Saved(1).Detach().Expand(g.shape), m);
            return [g.Mul(m), g.Mul(1.0 - m)];
        }
    }

    // y = min(max(x, lo), hi);  ∂y/∂x = [lo < x < hi]
    public static Tensor Clamp(this Tensor x, double min, double max)
    {
        if (min > max) throw new ArgumentException($"clamp: min {min} is greater than max {max}");
        var y = Map(UnaryOp.Clamp, x, min, max);
        return Autograd.Recording(x) ? new ClampOp(x, min, max).Attach(y, x) : y;
    }

    internal sealed class ClampOp : Function
    {
        readonly double min, max;
        public ClampOp(Tensor x, double min, double max) { this.min = min; this.max = max; SaveForBackward(x); }
        public override string Name => "clamp";
        public override IEnumerable<(string, object)> Attributes => [("min", min), ("max", max)];
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Map(UnaryOp.Inside, Saved(0), min, max))];
    }

    // y = |x|;  ∂y/∂x = sign(x) (0 at 0, as PyTorch)
    public static Tensor Abs(this Tensor x) { var y = Map(UnaryOp.Abs, x); return Autograd.Recording(x) ? new AbsOp(x).Attach(y, x) : y; }

    internal sealed class AbsOp : Function
    {
        public AbsOp(Tensor x) => SaveForBackward(x);
        public override string Name => "abs";
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Map(UnaryOp.Sign, Saved(0)))];
    }

    // y = condition ? a : b elementwise (condition non-zero = true; all three broadcast);  ∂y/∂a = [c], ∂y/∂b = [¬c]
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        if (a.DType != b.DType || condition.DType != a.DType)
            throw new ArgumentException($"where: dtypes {condition.DType}, {a.DType} and {b.DType} must match");
        var shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(condition.shape, a.shape, "where"), b.shape, "where");
        var y = Tensor.Empty(shape, a.DType);
        Backend.Current.Where(condition, a, b, y);
        return Autograd.Recording(a, b) ? new WhereOp(condition.Detach()).Attach(y, a, b) : y;
    }

    internal sealed class WhereOp : Function
    {
        public WhereOp(Tensor condition) => SaveForBackward(condition);
        public override string Name => "where";
        protected override Tensor?[] Backward(Tensor g)
        {
            var m = Map(UnaryOp.NonZero, Saved(0));
            return [NeedsInputGrad(0) ? g.Mul(m) : null, NeedsInputGrad(1) ? g.Mul(1.0 - m) : null];
        }
    }
}
