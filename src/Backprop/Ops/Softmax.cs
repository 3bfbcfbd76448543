namespace Backprop;

public static partial class Ops
{
    // sᵢ = e^{xᵢ} / Σⱼ e^{xⱼ} over the last axis;  Jacobian diag(s) − s sᵀ, so ∂L/∂x = s ⊙ (g − Σⱼ gⱼ sⱼ)
    public static Tensor Softmax(this Tensor x, int axis = -1)
    {
        var (y, _) = Kernels.Softmax.Rows(LastAxis(x, axis, "softmax"));
        return y.Record("softmax", x, g => y.Mul(g.Sub(g.Mul(y).Sum(-1, keepDim: true))));
    }

    // log sᵢ = xᵢ − log Σⱼ e^{xⱼ};  ∂L/∂x = g − s · Σⱼ gⱼ
    public static Tensor LogSoftmax(this Tensor x, int axis = -1)
    {
        var (s, lse) = Kernels.Softmax.Rows(LastAxis(x, axis, "log_softmax"));
        var y = x.Detach().Sub(lse.ReshapeStorage([.. x.shape[..^1], 1]));
        return y.Record("log_softmax", x, g => g.Sub(s.Mul(g.Sum(-1, keepDim: true))));
    }

    static Tensor LastAxis(Tensor x, int axis, string op)
    {
        if (x.Rank == 0) throw new ArgumentException($"{op}: needs at least one dimension");
        if (ShapeUtil.Axis(axis, x.Rank, op) != x.Rank - 1)
            throw new ArgumentException($"{op}: only the last axis is supported (got axis {axis} of shape {ShapeUtil.Format(x.shape)}); transpose first");
        return x;
    }
}
