using Backprop.Models;

namespace Backprop.Diagnostics;

/// <summary>One row of the gradient-check table: builds float64 inputs and the function to check.</summary>
public sealed record GradCheckCase(string Name, Func<Generator, GradCheckProblem> Build)
{
    public override string ToString() => Name;
}

/// <summary>A function of named float64 leaves, ready for <see cref="GradCheck.Run"/>.</summary>
public sealed record GradCheckProblem(Func<Tensor> Function, (string Name, Tensor Tensor)[] Inputs)
{
    /// <summary>The finite-difference step (only a row whose function is exact on a grid, such as a cast, sets another).</summary>
    public double Step { get; init; } = GradCheck.DefaultStep;
}

/// <summary>
/// The table of every op, module and loss whose backward pass Backprop checks: random shapes with batch ≥ 3,
/// inputs kept away from kinks (ReLU at 0, clamp bounds, ties in max), BatchNorm in training mode, dropout
/// with its mask held fixed. Used by <c>backprop gradcheck</c> and by the test suite.
/// </summary>
public static class GradCheckSuite
{
    /// <summary>Maximum relative error accepted for a float64 check.</summary>
    public const double Tolerance = 1e-8;

    static readonly List<GradCheckCase> cases = [];

    public static IReadOnlyList<GradCheckCase> Cases => cases;

    /// <summary>The seed of the table's first run; <see cref="Seeds"/> gives the others.</summary>
    public const ulong DefaultSeed = 1234;

    /// <summary>Seeds 1234, 1, 2, …: the first <paramref name="count"/> seeds every row must pass at.</summary>
    public static IEnumerable<ulong> Seeds(int count) => Enumerable.Range(0, count).Select(i => i == 0 ? DefaultSeed : (ulong)i);

    /// <summary>Runs one case with inputs drawn from <paramref name="seed"/>; returns the per-input errors.</summary>
    public static GradCheckError[] Run(GradCheckCase c, ulong seed = DefaultSeed, double fault = 0)
    {
        var p = c.Build(new Generator(seed));
        return GradCheck.Run(p.Function, p.Inputs, p.Step, seed: seed + 1, fault: fault);   // v must not replay the inputs' stream
    }

    // ---- input helpers ----------------------------------------------------------------------------

    /// <summary>A float64 leaf with N(0, 1) entries.</summary>
    public static Tensor Normal(Generator g, params int[] shape) => Leaf(Tensor.Normal(shape, 0, 1, g, DType.Float64));

    /// <summary>Entries uniform in [lo, hi).</summary>
    public static Tensor Uniform(Generator g, double lo, double hi, params int[] shape) => Leaf(Tensor.Uniform(shape, lo, hi, g, DType.Float64));

    /// <summary>Entries with |x| in [0.2, 1.5) and random sign: away from the kink at 0.</summary>
    public static Tensor AwayFromZero(Generator g, params int[] shape)
    {
        var t = Tensor.Uniform(shape, 0.2, 1.5, g, DType.Float64);
        for (int i = 0; i < t.Length; i++) if (g.NextDouble() < 0.5) t.SetFlat(i, -t.GetFlat(i));
        return Leaf(t);
    }

    public static Tensor Leaf(Tensor t) { t.RequiresGrad = true; return t; }

    /// <summary>The values 0.05·(0 … n−1) − 1 in a random order: distinct enough that no finite-difference step reorders them.</summary>
    public static Tensor Grid(Generator g, params int[] shape)
    {
        var v = Enumerable.Range(0, ShapeUtil.Count(shape, "grid")).Select(i => 0.05 * i - 1).ToArray();
        g.Shuffle<double>(v);
        return Leaf(Tensor.From(v, shape));
    }

    public static int[] Labels(Generator g, int n, int classes)
    {
        var y = new int[n];
        for (int i = 0; i < n; i++) y[i] = g.NextInt(classes);
        return y;
    }

    /// <summary>
    /// A float64 multi-task cascade network (n_x = 5, n_1a = 6, n_ya = n_1b = 4, 3 classes) in training mode with random
    /// γ and β, a batch of 8 inputs, one-hot targets ya and yb, and a fixed DP1A mask (p = 0.3).
    /// </summary>
    public static (MultiTaskCascade Model, Tensor X, Tensor Ya, Tensor Yb, Tensor Mask) MultiTask(Generator g, bool batchNormBeforeRelu = false, bool cascade = true)
    {
        const int m = 8, nx = 5, n1a = 6, nya = 4, classes = 3;
        var model = new MultiTaskCascade(nx, n1a, nya, classes, g, dropout: 0.3, batchNormBeforeRelu, cascade, DType.Float64);
        model.Bn1b.Weight.CopyFrom(Tensor.Uniform([nya], 1, 2, g, DType.Float64));
        model.Bn1b.Bias.CopyFrom(Tensor.Normal([nya], 0, 1, g, DType.Float64));
        var x = Normal(g, m, nx);
        var ya = OneHot(Labels(g, m, nya), nya);
        var yb = OneHot(Labels(g, m, classes), classes);
        return (model, x, ya, yb, Ops.DropoutMask([m, n1a], 0.3, g, DType.Float64));
    }

    /// <summary>Rows of the identity: a float64 one-hot encoding of <paramref name="labels"/>.</summary>
    public static Tensor OneHot(int[] labels, int classes)
    {
        var t = Tensor.Zeros([labels.Length, classes], DType.Float64);
        for (int i = 0; i < labels.Length; i++) t[i, labels[i]] = 1;
        return t;
    }

    static GradCheckProblem P(Func<Tensor> f, params (string, Tensor)[] inputs) => new(f, inputs);

    static void Add(string name, Func<Generator, GradCheckProblem> build) => cases.Add(new GradCheckCase(name, build));

    static GradCheckSuite()
    {
        // arithmetic, with broadcasting
        Add("add", g => { var a = Normal(g, 3, 4); var b = Normal(g, 4); return P(() => a + b, ("a", a), ("b", b)); });
        Add("sub", g => { var a = Normal(g, 3, 4); var b = Normal(g, 3, 1); return P(() => a - b, ("a", a), ("b", b)); });
        Add("mul", g => { var a = Normal(g, 4, 3); var b = Normal(g, 1, 3); return P(() => a * b, ("a", a), ("b", b)); });
        Add("div", g => { var a = Normal(g, 3, 4); var b = Uniform(g, 0.5, 2, 3, 4); return P(() => a / b, ("a", a), ("b", b)); });
        Add("neg", g => { var a = Normal(g, 3, 4); return P(() => -a, ("x", a)); });
        Add("matmul", g => { var a = Normal(g, 3, 5); var b = Normal(g, 5, 4); return P(() => a.MatMul(b), ("a", a), ("b", b)); });
        Add("matmul_at", g => { var a = Normal(g, 5, 3); var b = Normal(g, 5, 4); return P(() => a.MatMul(b, transposeA: true), ("a", a), ("b", b)); });
        Add("matmul_bt", g => { var a = Normal(g, 3, 5); var b = Normal(g, 4, 5); return P(() => a.MatMul(b, transposeB: true), ("a", a), ("b", b)); });
        Add("matmul_atbt", g => { var a = Normal(g, 5, 3); var b = Normal(g, 4, 5); return P(() => a.MatMul(b, true, true), ("a", a), ("b", b)); });
        Add("matmul_batched_broadcast", g => { var a = Normal(g, 2, 1, 3, 4); var b = Normal(g, 3, 4, 2); return P(() => a.MatMul(b), ("a", a), ("b", b)); });
        Add("matmul_vector", g => { var a = Normal(g, 4); var b = Normal(g, 2, 4, 3); var c = Normal(g, 3); return P(() => a.MatMul(b).MatMul(c), ("a", a), ("b", b), ("c", c)); });

        // reductions
        Add("sum", g => { var x = Normal(g, 3, 4); return P(() => x.Sum(), ("x", x)); });
        Add("sum_axis", g => { var x = Normal(g, 3, 4, 2); return P(() => x.Sum(1), ("x", x)); });
        Add("mean", g => { var x = Normal(g, 3, 4); return P(() => x.Mean(), ("x", x)); });
        Add("mean_axis", g => { var x = Normal(g, 3, 4); return P(() => x.Mean(0, keepDim: true), ("x", x)); });
        Add("max_axis", g => { var x = Normal(g, 4, 5); return P(() => x.Max(1), ("x", x)); });
        Add("max_dim0_keepdim", g => { var x = Normal(g, 4, 3, 2); return P(() => x.Max(0, keepDim: true), ("x", x)); });
        Add("min_axis", g => { var x = Normal(g, 4, 5); return P(() => x.Min(-1), ("x", x)); });
        Add("sum_negative_dim", g => { var x = Normal(g, 2, 3, 4); return P(() => x.Sum(-2, keepDim: true), ("x", x)); });
        Add("mean_middle_dim", g => { var x = Normal(g, 2, 3, 4); return P(() => x.Mean(1), ("x", x)); });

        // pointwise
        Add("exp", g => { var x = Normal(g, 3, 4); return P(() => x.Exp(), ("x", x)); });
        Add("log", g => { var x = Uniform(g, 0.5, 3, 3, 4); return P(() => x.Log(), ("x", x)); });
        Add("pow", g => { var x = Uniform(g, 0.5, 2, 3, 4); return P(() => x.Pow(2.5), ("x", x)); });
        Add("sqrt", g => { var x = Uniform(g, 0.5, 3, 3, 4); return P(() => x.Sqrt(), ("x", x)); });
        Add("sin", g => { var x = Normal(g, 3, 4); return P(() => x.Sin(), ("x", x)); });
        Add("erf", g => { var x = Normal(g, 3, 4); return P(() => x.Erf(), ("x", x)); });
        Add("cos", g => { var x = Normal(g, 3, 4); return P(() => x.Cos(), ("x", x)); });
        Add("tanh", g => { var x = Normal(g, 3, 4); return P(() => x.Tanh(), ("x", x)); });
        Add("sigmoid", g => { var x = Normal(g, 3, 4); return P(() => x.Sigmoid(), ("x", x)); });
        Add("relu", g => { var x = AwayFromZero(g, 3, 4); return P(() => x.Relu(), ("x", x)); });
        Add("maximum", g => { var a = AwayFromZero(g, 3, 4); var b = Tensor.ZerosLike(a) + 0.0; b = Leaf(b.Detach()); return P(() => a.Maximum(b), ("a", a), ("b", b)); });
        Add("clamp", g => { var x = AwayFromZero(g, 3, 4); return P(() => x.Clamp(-0.1, 0.1), ("x", x)); });
        Add("leaky_relu", g => { var x = AwayFromZero(g, 3, 4); return P(() => x.LeakyRelu(0.1), ("x", x)); });
        Add("elu", g => { var x = AwayFromZero(g, 3, 4); return P(() => x.Elu(1.3), ("x", x)); });
        Add("gelu", g => { var x = Normal(g, 3, 4) * 2.0; x = Leaf(x.Detach()); return P(() => x.Gelu(), ("x", x)); });
        Add("gelu_tanh", g => { var x = Normal(g, 3, 4) * 2.0; x = Leaf(x.Detach()); return P(() => x.Gelu(GeluApproximation.Tanh), ("x", x)); });
        Add("softplus", g => { var x = Normal(g, 3, 4) * 3.0; x = Leaf(x.Detach()); return P(() => x.Softplus(2, 4), ("x", x)); });   // some βx past the threshold, none within 1e-3 of it (almost surely)
        Add("silu", g => { var x = Normal(g, 3, 4) * 2.0; x = Leaf(x.Detach()); return P(() => x.Silu(), ("x", x)); });
        Add("layer_norm", g =>
        {
            var x = Normal(g, 2, 3, 4); var w = Uniform(g, 0.5, 1.5, 3, 4); var b = Normal(g, 3, 4);
            return P(() => x.LayerNorm([3, 4], w, b), ("x", x), ("weight", w), ("bias", b));
        });
        Add("embedding", g =>
        {
            // The padding row gets no gradient by definition (PyTorch's padding_idx), so it is one the indices do not use.
            var w = Normal(g, 8, 3);
            int[] idx = [.. Labels(g, 6, 8)];
            int padding = Enumerable.Range(0, 8).First(r => !idx.Contains(r));
            return P(() => Ops.Embedding(idx, w, [2, 3], padding), ("weight", w));
        });
        Add("softmax", g => { var x = Normal(g, 3, 5); return P(() => x.Softmax(), ("x", x)); });
        Add("log_softmax", g => { var x = Normal(g, 3, 5); return P(() => x.LogSoftmax(), ("x", x)); });
        Add("softmax_dim0", g => { var x = Normal(g, 4, 3); return P(() => x.Softmax(0), ("x", x)); });
        Add("log_softmax_dim1_3d", g => { var x = Normal(g, 2, 4, 3); return P(() => x.LogSoftmax(1), ("x", x)); });

        // shape
        Add("reshape", g => { var x = Normal(g, 3, 4); return P(() => x.Reshape(2, -1) * x.Reshape(2, 6), ("x", x)); });
        Add("transpose", g => { var x = Normal(g, 3, 4, 2); return P(() => x.Transpose(0, 2), ("x", x)); });
        Add("slice_rows", g => { var x = Normal(g, 5, 3); return P(() => x.SliceRows(1, 3), ("x", x)); });
        Add("index_select", g => { var x = Normal(g, 5, 3); return P(() => x.IndexSelect([4, 0, 4, 2]), ("x", x)); });
        Add("gather", g => { var x = Normal(g, 4, 3); var t = Labels(g, 4, 3); return P(() => x.Gather(t), ("x", x)); });
        Add("concat", g => { var a = Normal(g, 3, 2); var b = Normal(g, 3, 4); return P(() => Ops.Concat([a, b], 1), ("a", a), ("b", b)); });
        // A cast to float32 and back is exact on a grid of multiples of 2⁻⁷ below 2¹⁶, so inputs and steps on that grid
        // make the differences exact too (at h = 1e-5 float32's rounding alone would be a 1e-3 error).
        Add("to", g =>
        {
            var grid = Tensor.Uniform([3, 4], -64, 64, g, DType.Float64).ToDoubleArray().Select(v => Math.Round(v * 128) / 128).ToArray();
            var x = Leaf(Tensor.From(grid, [3, 4]));
            return P(() => x.To(DType.Float32).To(DType.Float64), ("x", x)) with { Step = 1.0 / 128 };
        });
        Add("clone", g => { var x = Normal(g, 3, 4); return P(() => x.Clone() * x, ("x", x)); });
        Add("stack", g => { var a = Normal(g, 3, 2); var b = Normal(g, 3, 2); return P(() => Ops.Stack([a, b], -1), ("a", a), ("b", b)); });
        Add("split_chunk", g => { var x = Normal(g, 5, 4); return P(() => { var p = x.Split([2, 3]); var q = x.Chunk(2, 1); return p[0].Sum(0) * 2.0 + p[1].Max(0) + Ops.Cat([q[1], q[0]], 1).Sum(0); }, ("x", x)); });

        // views: a new layout over the same memory, and ops reading strided inputs
        Add("view", g => { var x = Normal(g, 3, 4); return P(() => x.View(2, 6) * x.View(12).View(2, -1), ("x", x)); });
        Add("reshape_copy", g => { var x = Normal(g, 3, 4); return P(() => x.T().Reshape(12), ("x", x)); });
        Add("permute", g => { var x = Normal(g, 2, 3, 4); return P(() => x.Permute(2, 0, 1) * 1.5, ("x", x)); });
        Add("narrow", g => { var x = Normal(g, 4, 5); return P(() => x.Narrow(1, 1, 3), ("x", x)); });
        Add("slice_step", g => { var x = Normal(g, 5, 6); return P(() => x.Slice(1, 1, -1, 2).Slice(0, -4, 5), ("x", x)); });
        Add("select", g => { var x = Normal(g, 3, 4, 2); return P(() => x.Select(1, -2), ("x", x)); });
        Add("range_index", g => { var x = Normal(g, 5, 4); return P(() => x[1..4, ..^1], ("x", x)); });
        Add("expand", g => { var x = Normal(g, 3, 1); return P(() => x.Expand(2, 3, 4) * Tensor.Arange(1, 25, 1, DType.Float64).Reshape(2, 3, 4), ("x", x)); });
        Add("squeeze_unsqueeze", g => { var x = Normal(g, 3, 1, 4); return P(() => x.Squeeze(1).Unsqueeze(0).Unsqueeze(-1), ("x", x)); });
        Add("flatten_unflatten", g => { var x = Normal(g, 2, 3, 4); return P(() => x.Flatten(0, 1).Unflatten(0, 3, 2), ("x", x)); });
        Add("contiguous", g => { var x = Normal(g, 3, 4); return P(() => x.T().Contiguous(), ("x", x)); });
        Add("strided_inputs", g =>
        {
            var a = Normal(g, 4, 3); var b = Normal(g, 5, 4);
            return P(() => a.T().MatMul(b.T()).Relu() + a.T().Exp().Sum(1, keepDim: true), ("a", a), ("b", b));
        });
        Add("where", g => { var c = Tensor.Uniform([3, 4], -1, 1, g, DType.Float64).Clamp(0, 1); var a = Normal(g, 3, 4); var b = Normal(g, 4); return P(() => Ops.Where(c, a, b), ("a", a), ("b", b)); });
        Add("abs", g => { var x = AwayFromZero(g, 3, 4); return P(() => x.Abs(), ("x", x)); });

        // layers as ops
        Add("linear", g => { var x = Normal(g, 4, 5); var w = Normal(g, 3, 5); var b = Normal(g, 3); return P(() => x.Linear(w, b), ("x", x), ("weight", w), ("bias", b)); });
        Add("linear_nd", g => { var x = Normal(g, 2, 3, 5); var w = Normal(g, 4, 5); var b = Normal(g, 4); return P(() => x.Linear(w, b), ("x", x), ("weight", w), ("bias", b)); });
        Add("dropout", g =>
        {
            var x = Normal(g, 4, 6);
            var mask = Ops.DropoutMask([4, 6], 0.3, g, DType.Float64);
            return P(() => x.Dropout(mask), ("x", x));
        });
        Add("batchnorm1d", g =>
        {
            // Batch-norm gradients are centred per feature, so some are small; a spread of 0.5 doubles 1/σ and keeps
            // them above the ~1e-10 round-off floor of the finite differences.
            var x = Leaf(Tensor.Normal([6, 4], 0, 0.5, g, DType.Float64)); var gamma = Uniform(g, 1, 2, 4); var beta = Normal(g, 4);
            return P(() => x.BatchNorm(gamma, beta, training: true), ("x", x), ("weight", gamma), ("bias", beta));
        });

        Add("batchnorm1d_ncl", g =>
        {
            var x = Leaf(Tensor.Normal([3, 4, 5], 0, 0.5, g, DType.Float64)); var gamma = Uniform(g, 1, 2, 4); var beta = Normal(g, 4);
            return P(() => x.BatchNorm(gamma, beta, training: true), ("x", x), ("weight", gamma), ("bias", beta));
        });

        // convolution and pooling (NCHW), at odd shapes: stride, padding, dilation and groups all in play
        Add("conv2d", g =>
        {
            var x = Normal(g, 2, 4, 5, 6); var w = Normal(g, 4, 2, 3, 2); var b = Normal(g, 4);
            return P(() => x.Conv2d(w, b, stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2), ("x", x), ("weight", w), ("bias", b));
        });
        Add("conv2d_same_unbatched", g =>
        {
            var x = Normal(g, 3, 4, 5); var w = Normal(g, 2, 3, 2, 4);
            return P(() => x.Conv2d(w, padding: Padding2d.Same), ("x", x), ("weight", w));
        });
        Add("conv2d_pointwise", g => { var x = Normal(g, 3, 4, 2, 3); var w = Normal(g, 5, 4, 1, 1); return P(() => x.Conv2d(w), ("x", x), ("weight", w)); });
        Add("conv_transpose2d", g =>
        {
            var x = Normal(g, 2, 4, 3, 2); var w = Normal(g, 4, 3, 3, 2); var b = Normal(g, 6);
            return P(() => x.ConvTranspose2d(w, b, stride: 2, padding: (1, 0), outputPadding: (1, 0), groups: 2), ("x", x), ("weight", w), ("bias", b));
        });
        // Max pooling's inputs are a shuffled grid 0.05 apart, so no window holds two values the differences could swap.
        Add("max_pool2d", g => { var x = Grid(g, 2, 3, 5, 6); return P(() => x.MaxPool2d((3, 2), stride: (2, 1), padding: (1, 1), ceilMode: true), ("x", x)); });
        Add("max_pool2d_halving", g => { var x = Grid(g, 2, 2, 4, 6); return P(() => x.MaxPool2d(2), ("x", x)); });
        Add("max_pool2d_dilated_global", g => { var x = Grid(g, 2, 2, 5, 5); return P(() => x.MaxPool2d(2, stride: 1, dilation: 2) + x.GlobalMaxPool2d(), ("x", x)); });
        Add("avg_pool2d", g => { var x = Normal(g, 2, 3, 5, 4); return P(() => x.AvgPool2d(3, stride: 2, padding: 1, ceilMode: true), ("x", x)); });
        Add("avg_pool2d_exclude_pad", g => { var x = Normal(g, 2, 2, 4, 5); return P(() => x.AvgPool2d((2, 3), stride: (1, 2), padding: (1, 1), countIncludePad: false), ("x", x)); });
        Add("adaptive_avg_pool2d", g => { var x = Normal(g, 2, 2, 5, 7); return P(() => x.AdaptiveAvgPool2d((3, 4)) * 2.0 + x.GlobalAvgPool2d(), ("x", x)); });
        Add("batchnorm2d", g =>
        {
            var x = Leaf(Tensor.Normal([3, 2, 3, 4], 0, 0.5, g, DType.Float64)); var gamma = Uniform(g, 1, 2, 2); var beta = Normal(g, 2);
            return P(() => x.BatchNorm(gamma, beta, training: true), ("x", x), ("weight", gamma), ("bias", beta));
        });
        Add("batchnorm_eval", g =>
        {
            // Eval mode: the running statistics are constants; (N, C) and (N, C, H, W) share the node.
            var x = Normal(g, 3, 2, 3, 4); var x2 = Normal(g, 3, 2); var gamma = Uniform(g, 1, 2, 2); var beta = Normal(g, 2);
            var mean = Tensor.Normal([2], 0, 1, g, DType.Float64); var variance = Tensor.Uniform([2], 0.5, 2, g, DType.Float64);
            return P(() => x.BatchNorm(gamma, beta, mean, variance, training: false).Sum(3).Sum(2) + x2.BatchNorm(gamma, beta, mean, variance, training: false),
                ("x", x), ("x2", x2), ("weight", gamma), ("bias", beta));
        });
        Add("dropout2d", g =>
        {
            var x = Normal(g, 3, 4, 2, 2);
            var mask = Ops.DropoutMask([3, 4, 1, 1], 0.5, g, DType.Float64);
            return P(() => x.Dropout(mask), ("x", x));
        });

        // models: the multi-task cascade network by autograd and by its hand-written backward (same parameters)
        Add("multitask", g =>
        {
            var (model, x, ya, yb, mask) = MultiTask(g);
            return new GradCheckProblem(() => MultiTaskCascade.Loss(model.Outputs(x, mask), ya, yb), [("x", x), .. model.NamedParameters()]);
        });
        // losses
        Add("mse", g => { var p = Normal(g, 4, 3); var y = Normal(g, 4, 3); return P(() => p.Mse(y), ("input", p), ("target", y)); });
        Add("mse_sum", g => { var p = Normal(g, 4, 3); var y = Normal(g, 4, 3); return P(() => p.Mse(y, Reduction.Sum), ("input", p), ("target", y)); });
        Add("half_squared_error", g => { var p = Normal(g, 4, 3); var y = Normal(g, 4, 3); return P(() => p.HalfSquaredError(y), ("input", p), ("target", y)); });
        Add("cross_entropy", g => { var z = Normal(g, 4, 5); var t = Labels(g, 4, 5); return P(() => z.CrossEntropy(t), ("logits", z)); });
        Add("cross_entropy_label_smoothing", g => { var z = Normal(g, 4, 5); var t = Labels(g, 4, 5); return P(() => z.CrossEntropy(t, labelSmoothing: 0.1), ("logits", z)); });
        Add("cross_entropy_probs", g =>
        {
            var z = Normal(g, 4, 5);
            var p = Leaf((Tensor.Normal([4, 5], 0, 2, g, DType.Float64)).Softmax().Detach());
            return P(() => z.CrossEntropy(p), ("logits", z), ("target", p));
        });
        Add("nll", g => { var z = Normal(g, 4, 5); var t = Labels(g, 4, 5); return P(() => z.LogSoftmax().Nll(t), ("logits", z)); });
        Add("bce", g => { var p = Uniform(g, 0.2, 0.8, 4, 3); var y = Uniform(g, 0, 1, 4, 3); return P(() => p.Bce(y), ("input", p), ("target", y)); });
        Add("bce_with_logits", g => { var z = Normal(g, 4, 3); var y = Uniform(g, 0, 1, 4, 3); return P(() => z.BceWithLogits(y), ("logits", z), ("target", y)); });
        Add("l2_penalty", g => { var w1 = Normal(g, 4, 3); var w2 = Normal(g, 3, 2); return P(() => Ops.L2Penalty(0.05, w1, w2), ("W1", w1), ("W2", w2)); });

        // The VAE's negative ELBO through autograd with its noise ε held fixed. 0/1-like pixels make the residuals σ(logit) − x
        // about ½, so the gradients stay well above the ~1e-11 round-off floor of the differences of an O(1) loss.
        Add("vae", g =>
        {
            var vae = new Vae(inputs: 4, hidden: 5, latent: 2, g, DType.Float64);
            var x = Leaf(Tensor.Uniform([4, 4], 0, 1, g, DType.Float64));
            var xs = x.AsDoubleSpan();
            for (int i = 0; i < xs.Length; i++) xs[i] = xs[i] < 0.5 ? 0.05 : 0.95;
            var eps = Tensor.Normal([4, 2], 0, 1, g, DType.Float64);
            return new GradCheckProblem(() => vae.Loss(x, eps).Loss, [("x", x), .. vae.NamedParameters()]);
        });
    }
}
