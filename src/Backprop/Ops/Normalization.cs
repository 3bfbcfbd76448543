namespace Backprop;

public static partial class Ops
{
    /// <summary>
    /// Batch normalisation of x (N, C) over the batch, or of (N, C, …) — (N, C, L), (N, C, H, W) — over the batch and the
    /// trailing dimensions (per channel C). Training: batch mean μ and biased variance σ²,
    /// x̂ = (x − μ)/√(σ² + ε), y = γ x̂ + β; the running statistics (if given) move by <paramref name="momentum"/>
    /// (running variance with the unbiased estimate, as PyTorch). Eval: the running statistics stand in for μ, σ².
    /// </summary>
    public static Tensor BatchNorm(this Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean = null, Tensor? runningVar = null,
        bool training = true, double momentum = 0.1, double eps = 1e-5)
    {
        if (x.Rank >= 3) return BatchNormChannels(x, gamma, beta, runningMean, runningVar, training, momentum, eps);
        if (x.Rank != 2) throw new ArgumentException($"batch_norm: expects (N, C), (N, C, L) or (N, C, H, W), got {ShapeUtil.Format(x.shape)}");
        int n = x.shape[0], d = x.shape[1];
        foreach (var (name, t) in new[] { ("weight", gamma), ("bias", beta), ("running_mean", runningMean), ("running_var", runningVar) })
            if (t is not null && (t.Rank != 1 || t.shape[0] != d))
                throw new ArgumentException($"batch_norm: {name} has shape {ShapeUtil.Format(t.shape)}, expected ({d})");

        if (!training) return BatchNormEval(x, gamma, beta, runningMean, runningVar, eps);
        if (n < 2) throw new ArgumentException($"batch_norm: training needs more than one sample per batch, got {n}");

        Tensor xhat, invStd;
        using (Autograd.NoGrad())
        {
            var mu = x.Mean(0, keepDim: true);
            var centered = x - mu;
            var variance = (centered * centered).Mean(0, keepDim: true);
            invStd = 1.0 / (variance + eps).Sqrt();
            xhat = centered * invStd;
            if (runningMean is not null) runningMean.CopyFrom(runningMean * (1 - momentum) + mu.Reshape(d) * momentum);
            if (runningVar is not null) runningVar.CopyFrom(runningVar * (1 - momentum) + variance.Reshape(d) * (momentum * n / (n - 1)));
        }
        var y = xhat.Mul(gamma.Detach()).Add(beta.Detach());
        return Autograd.IsEnabled && (x.RequiresGrad || gamma.RequiresGrad || beta.RequiresGrad)
            ? new BatchNormOp(gamma, xhat, invStd.Reshape(d), eps).Attach(y, x, gamma, beta) : y;
    }

    // ∂L/∂γ = Σᵢ gᵢ ⊙ x̂ᵢ,  ∂L/∂β = Σᵢ gᵢ,
    // ∂L/∂x = (γ/√(σ²+ε)) ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))   (means over the batch)
    internal sealed class BatchNormOp : Function
    {
        readonly double eps;
        Tensor? xhat, invStd;   // intermediates the op owns: no one else can change them
        public BatchNormOp(Tensor gamma, Tensor xhat, Tensor invStd, double eps) { SaveForBackward(gamma); this.xhat = xhat; this.invStd = invStd; this.eps = eps; }
        public override string Name => "batch_norm";
        public override IEnumerable<(string, object)> Attributes => [("eps", eps), ("training", true)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var gx = g.Mul(xhat!);
            var dx = NeedsInputGrad(0)
                ? g.Sub(g.Mean(0, keepDim: true)).Sub(xhat!.Mul(gx.Mean(0, keepDim: true))).Mul(Saved(0).Detach().Mul(invStd!))
                : null;
            return [dx, NeedsInputGrad(1) ? gx.Sum(0) : null, NeedsInputGrad(2) ? g.Sum(0) : null];
        }
        protected override void Release() { xhat = null; invStd = null; }
    }

    // (N, C, …): statistics per channel over N and the trailing dimensions, by the backend's per-channel passes.
    static Tensor BatchNormChannels(Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar, bool training, double momentum, double eps)
    {
        int n = x.shape[0], c = x.shape[1];
        foreach (var (name, t) in new[] { ("weight", gamma), ("bias", beta), ("running_mean", runningMean), ("running_var", runningVar) })
            if (t is not null && (t.Rank != 1 || t.shape[0] != c || t.DType != x.DType))
                throw new ArgumentException($"batch_norm: {name} has shape {ShapeUtil.Format(t.shape)} {t.DType}, expected ({c}) {x.DType}");
        var x3 = x.Reshape(n, c, -1);
        long count = (long)n * x3.shape[2];
        var backend = Backends.Backend.Current;
        if (!training) return BatchNormEval(x, gamma, beta, runningMean, runningVar, eps);
        if (count < 2) throw new ArgumentException($"batch_norm: training needs more than one value per channel, got input {ShapeUtil.Format(x.shape)}");
        Tensor xhat, invStd, y;
        using (Autograd.NoGrad())
        {
            Tensor mean = Tensor.Uninitialized([c], x.DType), variance = Tensor.Uninitialized([c], x.DType);
            backend.ChannelMeanVar(x3, mean, variance);
            invStd = 1.0 / (variance + eps).Sqrt();
            xhat = Tensor.Uninitialized((int[])x3.shape.Clone(), x.DType);
            backend.ChannelAffine(x3, invStd, null, null, -(mean * invStd), xhat);
            y = Tensor.Uninitialized((int[])x3.shape.Clone(), x.DType);
            backend.ChannelAffine(xhat, gamma.Detach(), null, null, beta.Detach(), y);
            if (runningMean is not null) runningMean.CopyFrom(runningMean * (1 - momentum) + mean * momentum);
            if (runningVar is not null) runningVar.CopyFrom(runningVar * (1 - momentum) + variance * (momentum * count / (count - 1)));
        }
        y = y.Reshape(x.shape);
        return Autograd.IsEnabled && (x.RequiresGrad || gamma.RequiresGrad || beta.RequiresGrad)
            ? new BatchNormChannelsOp(gamma, xhat, invStd, eps).Attach(y, x, gamma, beta) : y;
    }

    // The same derivative as batch_norm's, with the means over N and the trailing dimensions (M values per channel):
    // ∂L/∂x = g·(γ/σ̂) − x̂·(γ/σ̂)·Σ(g ⊙ x̂)/M − (γ/σ̂)·Σg/M,  ∂L/∂γ = Σ g ⊙ x̂,  ∂L/∂β = Σ g
    internal sealed class BatchNormChannelsOp : Function
    {
        readonly double eps;
        Tensor? xhat, invStd;   // (N, C, L) and (C): the op's own intermediates
        public BatchNormChannelsOp(Tensor gamma, Tensor xhat, Tensor invStd, double eps) { SaveForBackward(gamma); this.xhat = xhat; this.invStd = invStd; this.eps = eps; }
        public override string Name => "batch_norm_nd";
        public override IEnumerable<(string, object)> Attributes => [("eps", eps), ("training", true)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var backend = Backends.Backend.Current;
            int c = xhat!.shape[1];
            double m = (double)xhat.shape[0] * xhat.shape[2];
            var g3 = g.Reshape(xhat.shape);
            Tensor sumG = Tensor.Uninitialized([c], g.DType), sumGX = Tensor.Uninitialized([c], g.DType);
            backend.ChannelSums(g3, xhat, sumG, sumGX);
            Tensor? dx = null;
            if (NeedsInputGrad(0))
            {
                var a = Saved(0).Detach() * invStd!;
                dx = Tensor.Uninitialized((int[])xhat.shape.Clone(), g.DType);
                backend.ChannelAffine(g3, a, xhat, -(a * sumGX) / m, -(a * sumG) / m, dx);
                dx = dx.Reshape(g.Shape.ToArray());
            }
            return [dx, NeedsInputGrad(1) ? sumGX : null, NeedsInputGrad(2) ? sumG : null];
        }
        protected override void Release() { xhat = null; invStd = null; }
    }

    // Eval: y = γ (x − μ)/√(σ² + ε) + β per channel with the running μ, σ² as constants — one node, so a graph
    // exporter sees ONNX's BatchNormalization rather than its arithmetic.
    static Tensor BatchNormEval(Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar, double eps)
    {
        if (runningMean is null || runningVar is null) throw new ArgumentException("batch_norm: eval mode needs running statistics");
        int c = x.shape[1];
        var x3 = x.Reshape(x.shape[0], c, -1);
        Tensor invStd, y;
        using (Autograd.NoGrad())
        {
            invStd = 1.0 / (runningVar + eps).Sqrt();
            var scale = gamma * invStd;
            y = Tensor.Uninitialized((int[])x3.shape.Clone(), x.DType);
            Backends.Backend.Current.ChannelAffine(x3, scale, null, null, beta - runningMean * scale, y);
        }
        y = y.Reshape(x.shape);
        return Autograd.IsEnabled && (x.RequiresGrad || gamma.RequiresGrad || beta.RequiresGrad)
            ? new BatchNormEvalOp(x3, gamma, invStd, -(runningMean * invStd), eps).Attach(y, x, gamma, beta, runningMean, runningVar) : y;
    }

    // With x̂ = (x − μ)/σ̂ and σ̂ = √(σ² + ε) fixed:  ∂L/∂x = g·γ/σ̂,  ∂L/∂γ = Σ g ⊙ x̂,  ∂L/∂β = Σ g   (sums over N and L)
    internal sealed class BatchNormEvalOp : Function
    {
        readonly double eps;
        Tensor? invStd, shift;   // 1/σ̂ and −μ/σ̂ per channel
        public BatchNormEvalOp(Tensor x3, Tensor gamma, Tensor invStd, Tensor shift, double eps)
        { SaveForBackward(x3, gamma); this.invStd = invStd; this.shift = shift; this.eps = eps; }
        public override string Name => "batch_norm_eval";
        public override IEnumerable<(string, object)> Attributes => [("eps", eps), ("training", false)];
        protected override Tensor?[] Backward(Tensor g)
        {
            var backend = Backends.Backend.Current;
            var x3 = Saved(0).Detach();
            var g3 = g.Reshape(x3.shape);
            int c = x3.shape[1];
            Tensor? dx = null, sumG = null, sumGX = null;
            if (NeedsInputGrad(0))
            {
                dx = Tensor.Uninitialized((int[])x3.shape.Clone(), g.DType);
                backend.ChannelAffine(g3, Saved(1).Detach() * invStd!, null, null, Tensor.Zeros([c], g.DType), dx);
                dx = dx.Reshape(g.Shape.ToArray());
            }
            if (NeedsInputGrad(1) || NeedsInputGrad(2))
            {
                var xhat = Tensor.Uninitialized((int[])x3.shape.Clone(), g.DType);
                backend.ChannelAffine(x3, invStd!, null, null, shift!, xhat);
                sumG = Tensor.Uninitialized([c], g.DType); sumGX = Tensor.Uninitialized([c], g.DType);
                backend.ChannelSums(g3, xhat, sumG, sumGX);
            }
            return [dx, NeedsInputGrad(1) ? sumGX : null, NeedsInputGrad(2) ? sumG : null, null, null];
        }
        protected override void Release() { invStd = null; shift = null; }
    }

    // Inverted dropout with an explicit mask M (Mⱼ = 0 or 1/(1 − p)): y = x ⊙ M;  ∂y/∂x = M
    public static Tensor Dropout(this Tensor x, Tensor mask)
    {
        var y = Zip(Backends.BinaryOp.Mul, x, mask, "dropout");
        return Autograd.Recording(x) ? new DropoutOp(mask).Attach(y, x) : y;
    }

    internal sealed class DropoutOp : Function
    {
        public DropoutOp(Tensor mask) => SaveForBackward(mask);
        public override string Name => "dropout";
        protected override Tensor?[] Backward(Tensor g) => [g.Mul(Saved(0))];
    }

    /// <summary>A dropout mask: Mⱼ = 0 if rⱼ &lt; p else 1/(1 − p), with rⱼ ~ U[0, 1) from <paramref name="generator"/>.</summary>
    public static Tensor DropoutMask(ReadOnlySpan<int> shape, double p, Generator generator, DType dtype = DType.Float32)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout: p must be in [0, 1)");
        var m = Tensor.Uninitialized(shape.ToArray(), dtype);   // every element written below
        double keep = 1.0 / (1.0 - p);
        // Straight into the span (an element setter bumps the version counter each time: 0.6 ms for mnist-cnn's 64×1024)
        if (dtype == DType.Float32) Draw(m.Span<float>(), (float)keep);
        else Draw(m.Span<double>(), keep);
        return m;

        void Draw<T>(Span<T> mask, T kept) where T : unmanaged, System.Numerics.INumberBase<T>
        {
            for (int i = 0; i < mask.Length; i++) mask[i] = generator.NextDouble() < p ? T.Zero : kept;
        }
    }
}
