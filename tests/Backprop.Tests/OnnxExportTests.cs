using Backprop.Models;
using Backprop.Nn;
using Backprop.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Backprop.Tests;

/// <summary>
/// Every model the CLI trains exports to ONNX, and ONNX Runtime computes the library's outputs from the file at two
/// batch sizes (float32: |Δ| ≤ 1e-5 + 1e-4·|y|); the file is the parameters' bytes plus a small graph.
/// </summary>
public class OnnxExportTests
{
    public static TheoryData<string> Models() => [.. Zoo.Keys];

    // name → (module, input features shape after the batch, outputs as functions of the input)
    internal static readonly Dictionary<string, Func<(Module Module, int[] Sample, Func<Tensor, IReadOnlyList<(string, Tensor)>> Outputs)>> Zoo = new()
    {
        ["mlp"] = () => Single(Mlp.Create(20, [16, 12], 5, new Generator(1)), 20),
        ["mlp-batchnorm-dropout"] = () => Single(Mlp.Create(20, [16, 12], 5, new Generator(2), dropout: 0.3, inputDropout: 0.1, batchNorm: true), 20),
        ["mlp-tanh"] = () => Single(Mlp.Create(20, [16], 5, new Generator(3), activation: Activation.Tanh), 20),
        ["mlp-sigmoid"] = () => Single(Mlp.Create(20, [16], 5, new Generator(3), activation: Activation.Sigmoid), 20),
        ["mnist-cnn"] = () => Single(Cnn.Create(1, 28, 28, [32, 64], 10, new Generator(4), kernel: 5, hidden: [64], dropout: 0.5), 784),
        ["cifar10-cnn-quick"] = () => Single(Cnn.Create(3, 32, 32, [8, 16, 32], 10, new Generator(5), batchNorm: true, poolFirst: true), 3 * 32 * 32),
        ["cnn-two-convs-per-stage"] = () => Single(Cnn.Create(3, 16, 16, [8, 16], 10, new Generator(6), convsPerStage: 2, batchNorm: true), 3 * 16 * 16),
        ["cnn-airbench-style"] = () => Single(Cnn.Create(3, 16, 16, [8, 16], 10, new Generator(10), convsPerStage: 2, batchNorm: true, poolFirst: true,
            activation: Activation.Gelu, whiten: 2, style: CnnStyle.Airbench), 3 * 16 * 16),
        ["two-layer-net"] = () => Single(new TwoLayerNet(20, 10, 3, new NumpyRandom(0), std: 1e-1, dtype: DType.Float32), 20),
        ["vae-encoder"] = () =>
        {
            var vae = new Vae(30, 12, 4, new Generator(7));
            return (vae, [30], x => { var (mu, logVar) = vae.Encode(x); return [("mu", mu), ("log_var", logVar)]; });
        },
        ["vae-decoder"] = () => { var vae = new Vae(30, 12, 4, new Generator(8)); return (vae, [4], z => [("reconstruction", vae.Decode(z))]); },
        ["multitask-cascade"] = () =>
        {
            var net = new MultiTaskCascade(20, 16, 3, 5, new Generator(9), batchNormBeforeRelu: true);
            return (net, [20], x => { var o = net.Outputs(x); return [("ya_hat", o.YaHat), ("logits", o.Logits)]; });
        },
    };

    static (Module, int[], Func<Tensor, IReadOnlyList<(string, Tensor)>>) Single(Module m, params int[] sample) => (m, sample, x => [("output", m.Forward(x))]);

    [Theory, MemberData(nameof(Models))]
    public void Exported_model_runs_in_onnx_runtime_as_in_the_library_at_two_batch_sizes(string name)
    {
        var (module, sample, outputs) = Zoo[name]();
        MoveRunningStatistics(module, sample);
        module.Eval();
        var bytes = OnnxExport.ToBytes(module, Input(3, sample, 10), outputs);
        using var session = new InferenceSession(bytes);
        foreach (int batch in new[] { 3, 7 })
        {
            var x = Input(batch, sample, 11 + (ulong)batch);
            var expected = Expected(outputs, x);
            var actual = OrtRun(session, "input", x);
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            foreach (var (output, y) in expected) AssertClose(y, actual[output], $"{name} {output} at batch {batch}");
        }
        Assert.True(module.Training is false, "the exporter restores the module's mode");

        // The state the outputs read is stored once, as raw float32 (a VAE's encoder leaves the decoder's out).
        var state = module.NamedParameters().Concat(module.NamedBuffers()).ToDictionary(p => p.Item1, p => p.Item2);
        var stored = global::Onnx.ModelProto.Parser.ParseFrom(bytes).Graph.Initializer.Select(i => i.Name).Where(state.ContainsKey).ToList();
        if (!name.StartsWith("vae")) Assert.Equal(state.Keys.Order(), stored.Order());
        long parameterBytes = stored.Sum(n => 4L * state[n].Length);
        Assert.InRange(bytes.Length, parameterBytes, parameterBytes + parameterBytes / 100 + 16_384);
    }

    [Fact]
    public void Export_restores_training_mode_and_writes_the_file_atomically()
    {
        var net = Mlp.Create(4, [3], 2, new Generator(1), batchNorm: true);
        var path = Path.Combine(Path.GetTempPath(), $"backprop-onnx-{Guid.NewGuid():N}.onnx");
        try
        {
            net.ExportOnnx(path, Tensor.Normal([2, 4], 0, 1, new Generator(2)));
            Assert.True(net.Training);
            using var session = new InferenceSession(path);
            Assert.Equal("input", session.InputMetadata.Keys.Single());
            Assert.Equal([-1, 4], session.InputMetadata["input"].Dimensions);   // the symbolic batch
            Assert.Equal("output", session.OutputMetadata.Keys.Single());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Unsupported_op_names_the_op_and_what_is_exportable()
    {
        var net = new Sequential(new Linear(4, 3, new Generator(1)));
        var e = Assert.Throws<NotSupportedException>(() =>
            OnnxExport.ToBytes(net, Tensor.Normal([2, 4], 0, 1, new Generator(2)), x => [("loss", net.Forward(x).CrossEntropy([0, 1]))]));
        Assert.Contains("cross_entropy", e.Message);
        Assert.Contains("Exportable ops", e.Message);
    }

    [Fact]
    public void A_forward_pass_without_a_graph_is_refused_not_frozen_into_constants()
    {
        var net = new Sequential(new Linear(4, 3, new Generator(1)));
        var e = Assert.Throws<InvalidOperationException>(() =>
            OnnxExport.ToBytes(net, Tensor.Normal([2, 4], 0, 1, new Generator(2)), x => { using var _ = Autograd.NoGrad(); return [("y", net.Forward(x))]; }));
        Assert.Contains("'y' does not depend on the input", e.Message);
    }

    [Fact]
    public void A_value_computed_from_the_input_outside_autograd_is_refused_not_frozen()
    {
        // The mask depends on the input but is computed without a graph: traced once it would be a constant of the
        // example's batch; the second trace, one row larger, differs, and the export says so.
        var net = new Sequential(new Linear(4, 3, new Generator(1)));
        var e = Assert.Throws<InvalidOperationException>(() => OnnxExport.ToBytes(net, Tensor.Normal([2, 4], 0, 1, new Generator(2)), x =>
        {
            Tensor mask;
            using (Autograd.NoGrad()) mask = net.Forward(x).Relu() + 1.0;
            return [("y", net.Forward(x) * mask)];
        }));
        Assert.Contains("changes with the batch size", e.Message);
    }

    [Fact]
    public void A_graph_thousands_of_ops_deep_exports_without_recursion()
    {
        // 20,000 chained ops: a recursive walk of the graph would overflow the stack
        var net = new Sequential(new Linear(4, 4, new Generator(1)));
        var bytes = OnnxExport.ToBytes(net, Tensor.Normal([2, 4], 0, 1, new Generator(2)), x =>
        {
            var h = net.Forward(x);
            for (int i = 0; i < 10_000; i++) h = (h * 0.5).Tanh();
            return [("y", h)];
        });
        using var session = new InferenceSession(bytes);
        var x = Tensor.Normal([3, 4], 0, 1, new Generator(3));
        AssertClose(Expected(t => { var h = net.Forward(t); for (int i = 0; i < 10_000; i++) h = (h * 0.5).Tanh(); return [("y", h)]; }, x)["y"],
            OrtRun(session, "input", x)["y"], "deep chain");
    }

    [Fact]
    public void Export_restores_each_submodules_own_mode()
    {
        var net = Mlp.Create(4, [3], 2, new Generator(1), batchNorm: true);
        var bn = net.Children().Select(c => c.Module).OfType<BatchNorm1d>().Single();
        bn.Eval();   // frozen statistics inside a training model
        OnnxExport.ToBytes(net, Tensor.Normal([2, 4], 0, 1, new Generator(2)), x => [("y", net.Forward(x))]);
        Assert.True(net.Training);
        Assert.False(bn.Training);
    }

    [Fact]
    public void Every_activation_and_shape_op_exports()
    {
        // Ops the CLI's models do not use, through one graph: each maps to ONNX nodes ONNX Runtime agrees with.
        var w = Tensor.Normal([6, 6], 0, 0.5, new Generator(3));
        var gamma = Tensor.Uniform([6], 0.5, 1.5, new Generator(4));
        var beta = Tensor.Normal([6], 0, 1, new Generator(5));
        var holder = new Holder(w, gamma, beta);
        Func<Tensor, IReadOnlyList<(string, Tensor)>> f = x =>
        {
            var h = x.MatMul(holder.W).LeakyRelu(0.1) + x.Elu(0.7) + x.Gelu() + x.Gelu(GeluApproximation.Tanh) + x.Softplus() + x.Softplus(2) + x.Silu();
            h = h.LayerNorm([6], holder.Gamma, holder.Beta) * 0.5 - x.Abs().Sqrt() / (x.Exp() + 1.0).Log() + x.Clamp(-0.5, 0.5).Pow(2) + x.Sin() * x.Cos();
            var t = h.Reshape(-1, 2, 3).Transpose(1, 2).Permute(0, 2, 1).Reshape(-1, 6);
            var c = Ops.Cat([t, h.Neg().Maximum(t)], 1);
            return [("softmax", c.Softmax()), ("log_softmax", c.LogSoftmax()), ("sum", c.Sum(1)), ("max", c.Max(1)),
                ("narrow", c.Narrow(1, 2, 5)), ("select", c.Select(1, 3))];
        };
        var bytes = OnnxExport.ToBytes(holder, Tensor.Normal([3, 6], 0, 1, new Generator(6)), f);
        using var session = new InferenceSession(bytes);
        foreach (int batch in new[] { 3, 5 })
        {
            var x = Tensor.Normal([batch, 6], 0, 1, new Generator(7 + (ulong)batch));
            var expected = Expected(f, x);
            var actual = OrtRun(session, "input", x);
            foreach (var (output, y) in expected) AssertClose(y, actual[output], $"{output} at batch {batch}");
        }
    }

    sealed class Holder : Module
    {
        public Holder(Tensor w, Tensor gamma, Tensor beta) { W = RegisterParameter("w", w); Gamma = RegisterParameter("gamma", gamma); Beta = RegisterParameter("beta", beta); }
        public Tensor W { get; }
        public Tensor Gamma { get; }
        public Tensor Beta { get; }
        public override Tensor Forward(Tensor input) => input;
    }

    // A few training-mode passes, so BatchNorm's running statistics are not the trivial 0 and 1.
    internal static void MoveRunningStatistics(Module module, int[] sample)
    {
        if (!module.NamedBuffers().Any()) return;
        module.Train();
        using var _ = Autograd.NoGrad();
        for (int i = 0; i < 3; i++) module.Forward(Input(16, sample, 100 + (ulong)i) * 2.0 + 0.5);
    }

    internal static Tensor Input(int batch, int[] sample, ulong seed) => Tensor.Normal([batch, .. sample], 0, 1, new Generator(seed));

    internal static Dictionary<string, float[]> Expected(Func<Tensor, IReadOnlyList<(string, Tensor)>> outputs, Tensor x)
    {
        using var _ = Autograd.NoGrad();
        return outputs(x).ToDictionary(o => o.Item1, o => o.Item2.ToFloatArray());
    }

    internal static Dictionary<string, float[]> OrtRun(InferenceSession session, string inputName, Tensor x)
    {
        var input = new DenseTensor<float>(x.ToFloatArray(), x.Shape.ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(inputName, input)]);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    internal static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = 1e-5 + 1e-4 * Math.Abs(expected[i]);
            if (!(Math.Abs(expected[i] - actual[i]) <= tolerance))
                Assert.Fail($"{what}: element {i} is {actual[i]} in ONNX Runtime, {expected[i]} in Backprop (tolerance {tolerance:g3})");
        }
    }
}
