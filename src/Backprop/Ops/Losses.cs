using Backprop.Backends;

namespace Backprop;

/// <summary>How a loss turns per-element terms into its output.</summary>
public enum Reduction { Mean, Sum }

public static partial class Ops
{
    // L = −(1/m) Σᵢ log softmax(zᵢ)[tᵢ], fused with a max-shifted log-sum-exp (stable for logits of ±1e4).
    //   ∂L/∂z = (softmax(z) − onehot(t)) / m
    public static Tensor CrossEntropy(this Tensor logits, ReadOnlySpan<int> targets)
    {
        var (m, c) = Rows2D(logits, targets.Length, "cross_entropy");
        CheckClasses(targets, c, "cross_entropy");
        var (s, lse) = SoftmaxRows(logits, "cross_entropy");
        var at = FlatPositions(targets, c);
        var picked = Tensor.Empty([m, 1], logits.DType);
        Backend.Current.IndexSelect(logits.Detach().Reshape(m * c, 1), at, picked);
        var y = Tensor.Scalar((Backend.Current.SumAll(lse) - Backend.Current.SumAll(picked)) / m, logits.DType);
        if (Autograd.Recording(logits))
        {
            var node = Autograd.RecordStatic(y, "cross_entropy", CrossEntropyBackward, logits);
            node.Saved0 = s;
            node.SavedInts = targets.ToArray();
        }
        return y;
    }

    static readonly Action<Node, Tensor> CrossEntropyBackward = static (node, g) =>
    {
        var s = node.Saved0!;
        var t = node.SavedInts!;
        int m = t.Length, c = s.Size(1);
        var d = s.Copy();
        Backend.Current.IndexAdd(Tensor.Full([m, 1], -1, s.DType), FlatPositions(t, c), d.View(m * c, 1));   // − onehot(t)
        node.Grads[0] = d.Mul(g / m);
    };

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
        var s = logp.Exp();
        return y.Detach().Record("cross_entropy", logits, targets, g => (
            logits.RequiresGrad ? s.Mul(targets.Sum(-1, keepDim: true)).Sub(targets).Mul(g / m) : null,
            targets.RequiresGrad ? logp.Mul(g * (-1.0 / m)) : null));
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
        int n = p.Length;
        return y.Record("bce", p, target, g => (
            p.RequiresGrad ? (pd - yd).Div(pd.Mul(1.0 - pd).Clamp(1e-12, double.MaxValue)).Mul(g / n) : null,
            target.RequiresGrad ? (log1P - logP).Mul(g / n) : null));
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
        return y.Record("bce_with_logits", logits, target, g => (
            logits.RequiresGrad ? (z.Sigmoid() - yd).Mul(g / n) : null,
            target.RequiresGrad ? z.Mul(g * (-1.0 / n)) : null));
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
        return y.Record("l2_penalty", ws, g =>
        {
            double scale = 2 * lambda * g.Item();
            var grads = new Tensor?[ws.Length];
            for (int i = 0; i < ws.Length; i++)
            {
                var w = ws[i];
                if (!w.RequiresGrad) continue;
                var target = Autograd.LeafGradBuffer(w);
                var d = target ?? Tensor.ZerosLike(w);
                Backend.Current.Axpy(scale, w, d);
                grads[i] = target is null ? d : null;   // null: already added to the leaf's Grad
            }
            return grads;
        });
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
