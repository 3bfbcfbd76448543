using Backprop.Backends;

namespace Backprop;

/// <summary>How a loss turns per-element terms into its output.</summary>
public enum Reduction { Mean, Sum }

public static partial class Ops
{
    // L = −(1/m) Σᵢ log softmax(zᵢ)[tᵢ], fused with a max-shifted log-sum-exp (stable for logits of ±1e4).
    //   ∂L/∂z = (softmax(z) − onehot(t)) / m
    public static Tensor CrossEntropy(this Tensor logits, ReadOnlySpan<int> targets, double labelSmoothing = 0)
    {
        var (m, c) = Rows2D(logits, targets.Length, "cross_entropy");
        CheckClasses(targets, c, "cross_entropy");
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "cross_entropy: label smoothing must be in [0, 1]");
        var (s, lse) = SoftmaxRows(logits, "cross_entropy");
        // The loss is a host scalar: m reads of lseᵢ − zᵢ,ₜᵢ summed in float64 (cheaper than a gather kernel and two sums).
        // With smoothing ε the target is (1 − ε)·onehot + ε/c: each row adds ε·(lseᵢ − mean_j zᵢⱼ) − ε·(lseᵢ − zᵢ,ₜᵢ).
        double loss = 0;
        for (int i = 0; i < m; i++) loss += (1 - labelSmoothing) * (lse.GetFlat(i) - logits.GetFlat(i * c + targets[i]));
        if (labelSmoothing > 0)
        {
            var rowMeans = logits.Detach().Mean(1);
            for (int i = 0; i < m; i++) loss += labelSmoothing * (lse.GetFlat(i) - rowMeans.GetFlat(i));
        }
        var y = Tensor.Scalar(loss / m, logits.DType);
        var at = Autograd.Recording(logits) ? FlatPositions(targets, c) : [];
        return Autograd.Recording(logits) ? new CrossEntropyOp(s, at, labelSmoothing).Attach(y, logits) : y;
    }

    // s = softmax(z) is an intermediate the op owns (no one else can change it), so it is a field, not version-checked.
    //   ∂L/∂z = (s − (1 − ε)·onehot(t) − ε/c) / m
    internal sealed class CrossEntropyOp(Tensor softmax, int[] targetPositions, double labelSmoothing) : Function
    {
        Tensor? s = softmax;
        public override string Name => "cross_entropy";
        public override IEnumerable<(string, object)> Attributes => labelSmoothing > 0 ? [("label_smoothing", labelSmoothing)] : [];
        protected override Tensor?[] Backward(Tensor g)
        {
            int m = targetPositions.Length, c = s!.Size(1);
            var d = labelSmoothing > 0 ? s - labelSmoothing / c : s.Copy();
            Backend.Current.AddAt(labelSmoothing - 1, targetPositions, d);   // − (1 − ε)·onehot(t)
            return [d.Mul(g / m)];
        }
        protected override void Release() => s = null;
    }

    /// <summary>Row-major positions (i, targets[i]) of an (m, c) matrix.</summary>
    static int[] FlatPositions(ReadOnlySpan<int> targets, int c)
    {
        var at = new int[targets.Length];
        for (int i = 0; i < at.Length; i++) at[i] = i * c + targets[i];
        return at;
    }

    // Probability (or one-hot) targets P: L = −(1/m) Σᵢⱼ Pᵢⱼ log softmax(z)ᵢⱼ.
    //   ∂L/∂z = (softmax(z) ⊙ Σⱼ Pᵢⱼ − P) / m   (= (ŷ − y)/m for rows of P summing to 1);  ∂L/∂P = −log softmax(z) / m
    public static Tensor CrossEntropy(this Tensor logits, Tensor targets)
    {
        if (!ShapeUtil.Equal(logits.shape, targets.shape) || logits.Rank != 2)
            throw new ArgumentException($"cross_entropy: logits {ShapeUtil.Format(logits.shape)} and target probabilities {ShapeUtil.Format(targets.shape)} must be the same 2-D shape");
        int m = logits.shape[0];
        var logp = logits.Detach().LogSoftmax();
        var y = logp.Mul(targets.Detach()).Sum() * (-1.0 / m);
        return Autograd.Recording(logits, targets) ? new CrossEntropyProbsOp(logp, targets).Attach(y.Detach(), logits, targets) : y.Detach();
    }

    internal sealed class CrossEntropyProbsOp : Function
    {
        Tensor? logp;   // log softmax(z): the op's own intermediate
        public CrossEntropyProbsOp(Tensor logp, Tensor targets) { this.logp = logp; SaveForBackward(targets); }
        public override string Name => "cross_entropy_probs";
        protected override Tensor?[] Backward(Tensor g)
        {
            var p = Saved(0).Detach();
            int m = p.Size(0);
            return [
                NeedsInputGrad(0) ? logp!.Exp().Mul(p.Sum(-1, keepDim: true)).Sub(p).Mul(g / m) : null,
                NeedsInputGrad(1) ? logp!.Mul(g * (-1.0 / m)) : null];
        }
        protected override void Release() => logp = null;
    }

    // L = −(1/m) Σᵢ logpᵢ[tᵢ] on log-probabilities (pair with LogSoftmax); a composition, so autograd derives it.
    public static Tensor Nll(this Tensor logProbs, ReadOnlySpan<int> targets)
    {
        Rows2D(logProbs, targets.Length, "nll");
        return logProbs.Gather(targets).Mean().Neg();
    }

    // L = mean or sum of (ŷ − y)²;  ∂L/∂ŷ = 2(ŷ − y)/n (mean)
    public static Tensor Mse(this Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape(prediction, target, "mse");
        var d = prediction - target;
        var sq = (d * d).Sum();
        return reduction == Reduction.Sum ? sq : sq / prediction.Length;
    }

    // The classic regression loss L = (1/m) Σᵢ ½‖ŷᵢ − yᵢ‖², m = rows;  ∂L/∂ŷ = (ŷ − y)/m
    public static Tensor HalfSquaredError(this Tensor prediction, Tensor target)
    {
        SameShape(prediction, target, "half_squared_error");
        var d = prediction - target;
        return (d * d).Sum() * (0.5 / Math.Max(1, prediction.Size(0)));
    }

    // Binary cross-entropy on probabilities p: L = −mean(y log p + (1 − y) log(1 − p)), logs clamped at −100 as
    // PyTorch does, so p = 0 or 1 gives a finite loss.  ∂L/∂p = (p − y) / (p(1 − p)) / n
    public static Tensor Bce(this Tensor p, Tensor target)
    {
        SameShape(p, target, "bce");
        var pd = p.Detach(); var yd = target.Detach();
        var logP = pd.Log().Clamp(-100, double.MaxValue);
        var log1P = (1.0 - pd).Log().Clamp(-100, double.MaxValue);
        var y = (yd.Mul(logP) + (1.0 - yd).Mul(log1P)).Mean().Neg();
        return Autograd.Recording(p, target) ? new BceOp(pd, yd, log1P - logP).Attach(y, p, target) : y;
    }

    internal sealed class BceOp : Function
    {
        Tensor? logOdds;   // log(1 − p) − log p, clamped: the op's own intermediate
        public BceOp(Tensor p, Tensor target, Tensor logOdds) { SaveForBackward(p, target); this.logOdds = logOdds; }
        public override string Name => "bce";
        protected override Tensor?[] Backward(Tensor g)
        {
            Tensor p = Saved(0), y = Saved(1);
            int n = p.Length;
            return [
                NeedsInputGrad(0) ? (p - y).Div(p.Mul(1.0 - p).Clamp(1e-12, double.MaxValue)).Mul(g / n) : null,
                NeedsInputGrad(1) ? logOdds!.Mul(g / n) : null];
        }
        protected override void Release() => logOdds = null;
    }

    // BCE on logits z, stable form: L = mean(max(z, 0) − z·y + log1p(e^{−|z|}));  ∂L/∂z = (σ(z) − y)/n
    // The log1p term is kept apart from max(z, 0) − z·y, which cancels exactly for confident logits: folded together
    // (softplus(z) − z·y) the 2e-9 of a logit of +20 would round away against the 20.
    public static Tensor BceWithLogits(this Tensor logits, Tensor target)
    {
        SameShape(logits, target, "bce_with_logits");
        var z = logits.Detach(); var yd = target.Detach();
        Tensor terms;
        using (Autograd.NoGrad()) terms = z.Relu() - z.Mul(yd) + Map(UnaryOp.Softplus, Map(UnaryOp.Abs, z).Neg());
        int n = logits.Length;
        var y = Tensor.Scalar(Backend.Current.SumAll(terms) / n, logits.DType);
        return Autograd.Recording(logits, target) ? new BceWithLogitsOp(z, yd).Attach(y, logits, target) : y;
    }

    internal sealed class BceWithLogitsOp : Function
    {
        public BceWithLogitsOp(Tensor z, Tensor target) => SaveForBackward(z, target);
        public override string Name => "bce_with_logits";
        protected override Tensor?[] Backward(Tensor g)
        {
            Tensor z = Saved(0), y = Saved(1);
            int n = z.Length;
            return [NeedsInputGrad(0) ? (z.Sigmoid() - y).Mul(g / n) : null, NeedsInputGrad(1) ? z.Mul(g * (-1.0 / n)) : null];
        }
    }

    // The classic exercise's weight penalty λ Σ_W ‖W‖² (no ½);  ∂/∂W = 2λW — fused: one pass forward
    // (sum of squares) and one backward (added straight into a leaf's Grad), instead of a square, a sum and their backwards.
    public static Tensor L2Penalty(double lambda, params IEnumerable<Tensor> weights)
    {
        var ws = weights.ToArray();
        if (ws.Length == 0) throw new ArgumentException("l2_penalty: no weights given");
        double total = 0;
        foreach (var w in ws)
        {
            if (w.DType != ws[0].DType) throw new ArgumentException($"l2_penalty: dtypes {ws[0].DType} and {w.DType} differ");
            total += Backend.Current.Dot(w, w);
        }
        var y = Tensor.Scalar(lambda * total, ws[0].DType);
        if (!Autograd.IsEnabled || !Array.Exists(ws, w => w.RequiresGrad)) return y;
        return new L2PenaltyOp(lambda, ws).Attach(y, ws);
    }

    internal sealed class L2PenaltyOp : Function
    {
        readonly double lambda;
        public L2PenaltyOp(double lambda, Tensor[] weights) { this.lambda = lambda; SaveForBackward(weights); }
        public override string Name => "l2_penalty";
        public override IEnumerable<(string, object)> Attributes => [("lambda", lambda)];
        protected override Tensor?[] Backward(Tensor g)
        {
            double scale = 2 * lambda * g.Item();
            var grads = new Tensor?[InputCount];
            for (int i = 0; i < grads.Length; i++)
            {
                if (!NeedsInputGrad(i)) continue;
                var buffer = AccumulationBuffer(i);
                var d = buffer ?? Tensor.ZerosLike(Saved(i));
                Backend.Current.Axpy(scale, Saved(i), d);
                grads[i] = buffer is null ? d : null;   // null: already added where the engine accumulates
            }
            return grads;
        }
    }

    static (int M, int C) Rows2D(Tensor x, int targets, string op)
    {
        if (x.Rank != 2) throw new ArgumentException($"{op}: expects 2-D (batch, classes) input, got {ShapeUtil.Format(x.shape)}");
        if (x.shape[0] != targets) throw new ArgumentException($"{op}: {x.shape[0]} rows but {targets} targets");
        if (x.shape[0] == 0) throw new ArgumentException($"{op}: empty batch");
        return (x.shape[0], x.shape[1]);
    }

    static void SameShape(Tensor a, Tensor b, string op)
    {
        if (!ShapeUtil.Equal(a.shape, b.shape))
            throw new ArgumentException($"{op}: prediction {ShapeUtil.Format(a.shape)} and target {ShapeUtil.Format(b.shape)} differ in shape");
        if (a.DType != b.DType) throw new ArgumentException($"{op}: dtypes {a.DType} and {b.DType} differ");
    }
}
