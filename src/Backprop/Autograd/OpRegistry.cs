namespace Backprop;

/// <summary>One differentiable op: its name in the graph and the <see cref="Function"/> type that records it.</summary>
public sealed record OpInfo(string Name, Type Function);

/// <summary>
/// Every built-in op, in one list: what the gradient-check table must cover (a test fails when an op here appears in no
/// row's graph, or when a Function type of the library is missing here) and what a graph exporter can handle. A
/// recorded graph is walked from <see cref="Tensor.GradFn"/> through <see cref="Function.Inputs"/>; each node gives
/// its <see cref="Function.Name"/> and <see cref="Function.Attributes"/>.
/// </summary>
public static class OpRegistry
{
    public static IReadOnlyList<OpInfo> All { get; } =
    [
        new("add", typeof(Ops.AddOp)), new("sub", typeof(Ops.SubOp)), new("mul", typeof(Ops.MulOp)), new("div", typeof(Ops.DivOp)),
        new("neg", typeof(Ops.NegOp)),
        new("exp", typeof(Ops.ExpOp)), new("log", typeof(Ops.LogOp)), new("sqrt", typeof(Ops.SqrtOp)), new("pow", typeof(Ops.PowOp)),
        new("sin", typeof(Ops.SinOp)), new("cos", typeof(Ops.CosOp)), new("tanh", typeof(Ops.TanhOp)), new("sigmoid", typeof(Ops.SigmoidOp)),
        new("erf", typeof(Ops.ErfOp)),
        new("relu", typeof(Ops.ReluOp)), new("maximum", typeof(Ops.MaximumOp)), new("clamp", typeof(Ops.ClampOp)), new("abs", typeof(Ops.AbsOp)),
        new("where", typeof(Ops.WhereOp)),
        new("leaky_relu", typeof(Ops.LeakyReluOp)), new("elu", typeof(Ops.EluOp)), new("gelu", typeof(Ops.GeluOp)),
        new("softplus", typeof(Ops.SoftplusOp)), new("silu", typeof(Ops.SiluOp)),
        new("layer_norm", typeof(Ops.LayerNormOp)), new("embedding", typeof(Ops.EmbeddingOp)),
        new("sum", typeof(Ops.SumOp)), new("max", typeof(Ops.MaxOp)),
        new("softmax", typeof(Ops.SoftmaxOp)), new("log_softmax", typeof(Ops.LogSoftmaxOp)),
        new("matmul", typeof(Ops.MatMulOp)), new("bmm", typeof(Ops.BatchedMatMulOp)), new("linear", typeof(Ops.LinearOp)),
        new("batch_norm", typeof(Ops.BatchNormOp)), new("batch_norm_nd", typeof(Ops.BatchNormChannelsOp)), new("batch_norm_eval", typeof(Ops.BatchNormEvalOp)),
        new("conv2d", typeof(Ops.Conv2dOp)), new("conv_transpose2d", typeof(Ops.ConvTranspose2dOp)),
        new("max_pool2d", typeof(Ops.MaxPool2dOp)), new("avg_pool2d", typeof(Ops.AvgPool2dOp)), new("adaptive_avg_pool2d", typeof(Ops.AvgPool2dOp)), new("dropout", typeof(Ops.DropoutOp)),
        new("cross_entropy", typeof(Ops.CrossEntropyOp)), new("cross_entropy_probs", typeof(Ops.CrossEntropyProbsOp)),
        new("bce", typeof(Ops.BceOp)), new("bce_with_logits", typeof(Ops.BceWithLogitsOp)), new("l2_penalty", typeof(Ops.L2PenaltyOp)),
        new("index_select", typeof(Ops.IndexSelectOp)), new("cat", typeof(Ops.CatOp)), new("to", typeof(Ops.ToOp)),
        new("view", typeof(Ops.ReshapeOp)), new("reshape", typeof(Ops.ReshapeOp)), new("squeeze", typeof(Ops.ReshapeOp)), new("unsqueeze", typeof(Ops.ReshapeOp)),
        new("transpose", typeof(Ops.TransposeOp)), new("permute", typeof(Ops.PermuteOp)),
        new("narrow", typeof(Ops.SliceOp)), new("slice", typeof(Ops.SliceOp)), new("select", typeof(Ops.SelectOp)), new("expand", typeof(Ops.ExpandOp)),
        new("contiguous", typeof(Ops.CopyOp)), new("clone", typeof(Ops.CopyOp)),
    ];

    /// <summary>The names of the ops in the graph that produced <paramref name="output"/>.</summary>
    public static IReadOnlySet<string> OpsIn(Tensor output)
    {
        var names = new HashSet<string>();
        var seen = new HashSet<Function>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Function>();
        if (output.GradFn is { } root) stack.Push(root);
        while (stack.Count > 0)
        {
            var f = stack.Pop();
            if (!seen.Add(f)) continue;
            names.Add(f.Name);
            foreach (var input in f.Inputs)
                if (input.GradFn is { } next) stack.Push(next);
        }
        return names;
    }
}
