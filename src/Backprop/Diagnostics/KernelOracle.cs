using Backprop.Backends;
using Backprop.Nn;
using Backprop.Optim;

namespace Backprop.Diagnostics;

/// <summary>One float32 case for <see cref="KernelOracle"/>: leaves drawn from a generator and the function of them.</summary>
public sealed record KernelCase(string Name, Func<Generator, (Tensor[] Leaves, Func<Tensor> Function)> Build)
{
    public override string ToString() => Name;
}

/// <summary>
/// The SIMD backend against the reference backend (scalar, float64 accumulation) in float32: each case runs forward and
/// backward (random upstream gradient) through both, and the outputs and every leaf's gradient must agree within float32
/// rounding. The shapes reach every hand-written kernel's vector body and ragged end — past the GEMM's blocking, the
/// direct and im2col convolutions, pooling rows of 1–3 and of many windows, GELU's tail — so a process whose runtime
/// stops at a narrower vector width (<see cref="Kernels.InstructionSets.Runtime"/>) checks that
/// width's code: <c>backprop gradcheck --kernels</c> under those settings is how the tests cover each path.
/// </summary>
public static class KernelOracle
{
    /// <summary>Largest accepted difference, relative to the largest magnitude of the tensor compared.</summary>
    public const double Tolerance = 1e-4;

    public static IReadOnlyList<KernelCase> Cases { get; } =
    [
        Matrices("add_broadcast", (a, b) => a + b.Sum(1)),
        Matrices("sub_mul_div", (a, b) => (a - b.Sum(1, keepDim: true).T()) * a / (a.Abs() + 1.0)),
        Matrices("unary", (a, _) => a.Exp().Log() + (a.Abs() + 0.1).Sqrt() + a.Sin() + a.Cos() + a.Tanh() + a.Sigmoid() + a.Relu() + a.Abs().Pow(1.5) + a.Clamp(-0.3, 0.4)),
        Matrices("gelu", (a, _) => a.Gelu() + (a * 3.0).Gelu(GeluApproximation.Tanh)),
        Matrices("maximum_where", (a, _) => a.Maximum(a.T().T() * 0.5) + Ops.Where(a.Relu(), a, a * 2.0)),
        Matrices("reductions", (a, _) => a.Sum(1) + a.Mean(1) + a.Max(1) + a.Min(1) + a.Sum()),
        Matrices("softmax", (a, _) => a.Softmax(0) + a.LogSoftmax(1)),
        Matrices("matmul", (a, b) => a.MatMul(b) + a.MatMul(b.T().Contiguous(), transposeB: true)),
        Matrices("matmul_strided", (a, b) => b.T().MatMul(a.T()).T()),
        Matrices("index_select_gather", (a, _) => a.IndexSelect([3, 0, 66, 3]).Sum(0) + a.Gather(Enumerable.Range(0, 67).Select(i => i % 45).ToArray()).Sum()),
        Matrices("cross_entropy", (a, _) => a.CrossEntropy(Enumerable.Range(0, 67).Select(i => i * 7 % 45).ToArray()) + a.BceWithLogits(a.Sigmoid().Detach())),
        Leaves("matmul_blocked", [[131, 300], [300, 77]], l => l[0].MatMul(l[1])),
        Leaves("matmul_one_row", [[1, 784], [300, 784]], l => l[0].MatMul(l[1], transposeB: true)),   // the matrix-vector pass
        Leaves("conv2d_direct_5x5", [[8, 1, 28, 28], [8, 1, 5, 5], [8]], l => l[0].Conv2d(l[1], l[2], padding: 2)),
        Leaves("conv2d_im2col_3x3", [[3, 5, 9, 11], [7, 5, 3, 3], [7]], l => l[0].Conv2d(l[1], l[2], padding: 1)),
        Leaves("conv2d_flipped_input_grad", [[4, 16, 8, 8], [16, 16, 3, 3]], l => l[0].Conv2d(l[1], padding: 1)),
        Leaves("conv2d_small_planes", [[6, 32, 3, 3], [24, 32, 3, 3]], l => l[0].Conv2d(l[1], padding: 1)),
        Leaves("conv2d_stride_dilation_groups", [[2, 4, 13, 10], [6, 2, 3, 2], [6]], l => l[0].Conv2d(l[1], l[2], stride: 2, padding: 3, dilation: 2, groups: 2)),
        Leaves("max_pool_2x2_rows", [[3, 5, 7, 7]], l => l[0].MaxPool2d(2)),
        Leaves("max_pool_2x2_wide", [[2, 3, 6, 70]], l => l[0].MaxPool2d(2).Sum(3) + l[0][.., .., ..6, ..6].MaxPool2d(2).Sum(3)),
        Leaves("max_pool_3x3_s2_p1", [[2, 3, 11, 9]], l => l[0].MaxPool2d(3, stride: 2, padding: 1)),
        Leaves("global_pools", [[3, 4, 5, 7]], l => l[0].GlobalMaxPool2d() + l[0].GlobalAvgPool2d() + l[0].AvgPool2d(2).Sum(3, keepDim: true).Sum(2, keepDim: true)),
        new("batch_norm2d", g =>
        {
            var x = GradCheckSuite.Leaf(Tensor.Normal([5, 6, 7, 9], 0.5, 2, g));
            var norm = new BatchNorm2d(6);
            norm.Weight.Detach().CopyFrom(Tensor.Normal([6], 1, 0.5, g));
            norm.Bias.Detach().CopyFrom(Tensor.Normal([6], 0, 1, g));
            return ([x, norm.Weight, norm.Bias], () => norm.Forward(x));
        }),
    ];

    /// <summary>Leaves a (67, 45) and b (45, 33): odd sizes past every vector width.</summary>
    static KernelCase Matrices(string name, Func<Tensor, Tensor, Tensor> f) => Leaves(name, [[67, 45], [45, 33]], l => f(l[0], l[1]));

    static KernelCase Leaves(string name, int[][] shapes, Func<Tensor[], Tensor> f) => new(name, g =>
    {
        var leaves = shapes.Select(s => GradCheckSuite.Leaf(Tensor.Normal(s, 0, 1, g))).ToArray();
        return (leaves, () => f(leaves));
    });

    /// <summary>The case's output and leaf gradients on <paramref name="backend"/>, flattened into one float64 array per tensor.</summary>
    public static double[][] Evaluate(KernelCase c, IBackend backend)
    {
        using var _ = Backend.Use(backend);
        var (leaves, function) = c.Build(new Generator(7));
        var y = function();
        y.Backward(Tensor.Normal(y.Shape.ToArray(), 0, 1, new Generator(8)));
        return [y.Detach().ToDoubleArray(), .. leaves.Select(l => (l.Grad ?? Tensor.ZerosLike(l)).ToDoubleArray())];
    }

    /// <summary>
    /// The largest difference between the SIMD backend (or <paramref name="candidate"/>) and the reference backend over the
    /// case's output and gradients, each relative to the largest magnitude in the reference tensor (NaN if any value is
    /// not finite).
    /// </summary>
    public static double Compare(KernelCase c, IBackend? candidate = null)
    {
        var simd = Evaluate(c, candidate ?? Backend.Cpu);
        var reference = Evaluate(c, Backend.Reference);
        double worst = 0;
        for (int t = 0; t < simd.Length; t++)
        {
            double scale = Math.Max(1e-30, reference[t].Max(Math.Abs));
            for (int i = 0; i < simd[t].Length; i++)
            {
                double e = Math.Abs(simd[t][i] - reference[t][i]) / scale;
                if (!double.IsFinite(e)) return double.NaN;
                worst = Math.Max(worst, e);
            }
        }
        return worst;
    }

    /// <summary>
    /// The optimizers' fused updates (one vector pass over parameter, gradient and state) against their formulas in
    /// float64 scalar code, as PyTorch states them: three steps on 150,001 float32 parameters, so the vector body, the
    /// ragged end and the split among threads all run.
    /// </summary>
    public static IReadOnlyList<string> OptimizerCases { get; } = ["sgd_momentum", "sgd_nesterov", "adam", "adamw_amsgrad"];

    /// <summary>The largest difference between the fused update's change to the parameters and the formula's, relative to the largest change.</summary>
    public static double CompareOptimizer(string name)
    {
        const int n = 150_001, steps = 3;
        const double lr = 0.01, wd = 1e-3, mu = 0.9, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        var g = new Generator(11);
        var p = Tensor.Normal([n], 0, 1, g);
        p.RequiresGrad = true;
        var start = p.ToDoubleArray();
        Optimizer o = name switch
        {
            "sgd_momentum" => new Sgd([p], lr, mu, weightDecay: wd),
            "sgd_nesterov" => new Sgd([p], lr, mu, weightDecay: wd, nesterov: true),
            "adam" => new Adam([p], lr, weightDecay: wd),
            "adamw_amsgrad" => new AdamW([p], lr, weightDecay: wd, amsgrad: true),
            _ => throw new ArgumentException($"KernelOracle: no optimizer case '{name}'", nameof(name)),
        };
        double[] q = (double[])start.Clone(), b = new double[n], m = new double[n], v = new double[n], vMax = new double[n];
        for (int t = 1; t <= steps; t++)
        {
            var grad = Tensor.Normal([n], 0, 1, g);
            p.Grad = grad.Clone();
            o.Step();
            var gd = grad.ToDoubleArray();
            double c1 = 1 - Math.Pow(b1, t), c2 = 1 - Math.Pow(b2, t);
            for (int i = 0; i < n; i++)
            {
                if (name.StartsWith("sgd", StringComparison.Ordinal))
                {
                    double d = gd[i] + wd * q[i];
                    b[i] = t == 1 ? d : mu * b[i] + d;
                    q[i] -= lr * (name == "sgd_nesterov" ? d + mu * b[i] : b[i]);
                    continue;
                }
                double gi = name == "adam" ? gd[i] + wd * q[i] : gd[i];
                if (name != "adam") q[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                vMax[i] = Math.Max(vMax[i], v[i]);
                q[i] -= lr / c1 * m[i] / (Math.Sqrt(name == "adam" ? v[i] : vMax[i]) / Math.Sqrt(c2) + eps);
            }
        }
        var fused = p.ToDoubleArray();
        double scale = 0, worst = 0;
        for (int i = 0; i < n; i++) scale = Math.Max(scale, Math.Abs(q[i] - start[i]));
        for (int i = 0; i < n; i++)
        {
            double e = Math.Abs((fused[i] - start[i]) - (q[i] - start[i])) / scale;
            if (!double.IsFinite(e)) return double.NaN;
            worst = Math.Max(worst, e);
        }
        return worst;
    }
}
