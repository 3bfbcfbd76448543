namespace Backprop;

public static partial class Ops
{
    // sᵢ = e^{xᵢ} / Σⱼ e^{xⱼ} along dim;  Jacobian diag(s) − s sᵀ, so ∂L/∂x = s ⊙ (g − Σⱼ gⱼ sⱼ)
    public static Tensor Softmax(this Tensor x, int dim = -1)
    {
        int d = Dim(x, dim, "softmax");
        if (d != x.Rank - 1) return x.Transpose(d, -1).Softmax(-1).Transpose(d, -1);   // the kernel works on rows
        var (y, _) = SoftmaxRows(x, "softmax");
        return Autograd.Recording(x) ? new SoftmaxOp(y).Attach(y, x) : y;
    }

    internal sealed class SoftmaxOp : Function
    {
        public SoftmaxOp(Tensor y) => SaveForBackward(y);
        public override string Name => "softmax";
        protected override Tensor?[] Backward(Tensor g) { var y = Saved(0); return [y.Mul(g.Sub(g.Mul(y).Sum(-1, keepDim: true)))]; }
    }

    // log sᵢ = xᵢ − log Σⱼ e^{xⱼ} along dim;  ∂L/∂x = g − s · Σⱼ gⱼ
    public static Tensor LogSoftmax(this Tensor x, int dim = -1)
    {
        int d = Dim(x, dim, "log_softmax");
        if (d != x.Rank - 1) return x.Transpose(d, -1).LogSoftmax(-1).Transpose(d, -1);
        var (s, lse) = SoftmaxRows(x, "log_softmax");
        var y = x.Detach().Sub(lse.ViewOf([.. x.shape[..^1], 1]));
        return Autograd.Recording(x) ? new LogSoftmaxOp(s).Attach(y, x) : y;
    }

    // s is an intermediate the op owns, so no one can change it in place: not version-checked.
    internal sealed class LogSoftmaxOp(Tensor softmax) : Function
    {
        Tensor? s = softmax;
        public override string Name => "log_softmax";
        protected override Tensor?[] Backward(Tensor g) => [g.Sub(s!.Mul(g.Sum(-1, keepDim: true)))];
        protected override void Release() => s = null;
    }

    /// <summary>Softmax over the last dimension and each row's log-sum-exp, through the backend (not recorded).</summary>
    internal static (Tensor Probs, Tensor LogSumExp) SoftmaxRows(Tensor x, string op)
    {
        if (x.Rank == 0 || x.shape[^1] == 0) throw new ArgumentException($"{op}: last dimension of {ShapeUtil.Format(x.shape)} is empty");
        var p = Tensor.Uninitialized(x.shape, x.DType);   // both written in full by the kernel
        var lse = Tensor.Uninitialized(ShapeUtil.Of(x.Length / x.shape[^1]), x.DType);
        Backends.Backend.Current.SoftmaxRows(x, p, lse);
        return (p, lse);
    }

    static int Dim(Tensor x, int dim, string op)
    {
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs at least one dimension");
        return ShapeUtil.Axis(dim, x.Rank, op);
    }
}
