using Backprop.Onnx;
using Backprop.Optim;
using Backprop.Serialization;
using Microsoft.ML.OnnxRuntime;

namespace Backprop.Tests;

/// <summary>
/// ONNX import: what Backprop exports loads back and computes the same numbers; models PyTorch exported (fixtures
/// written by tools/torch_interop.py) reproduce PyTorch's outputs and gradients and fine-tune.
/// </summary>
public class OnnxImportTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", name);
    static readonly Dictionary<string, Tensor> Torch = SafeTensors.Load(Fixture("outputs.safetensors")).Tensors;

    public static TheoryData<string> Models() => OnnxExportTests.Models();

    [Theory, MemberData(nameof(Models))]
    public void Export_then_import_gives_identical_outputs(string name)
    {
        var (module, sample, outputs) = OnnxExportTests.Zoo[name]();
        OnnxExportTests.MoveRunningStatistics(module, sample);
        module.Eval();
        var bytes = OnnxExport.ToBytes(module, OnnxExportTests.Input(3, sample, 10), outputs);
        var imported = OnnxModel.Load(new MemoryStream(bytes));
        imported.Eval();
        var x = OnnxExportTests.Input(6, sample, 21);
        var expected = OnnxExportTests.Expected(outputs, x);
        using var _ = Autograd.NoGrad();
        var actual = imported.Outputs(x);
        // GELU travels as its erf formula (opset 17 has no Gelu) and returns as that arithmetic: equal to float rounding, not bitwise.
        foreach (var (output, y) in expected)
            if (name.Contains("airbench")) OnnxExportTests.AssertClose(y, actual[output].ToFloatArray(), $"{name} {output}");
            else Assert.Equal(y, actual[output].ToFloatArray());
        // the state keeps its names, so the original's state dict loads into the imported model
        Assert.Equal(module.StateDict().Keys.Where(k => imported.StateDict().ContainsKey(k)).Order(), imported.StateDict().Keys.Order());
    }

    [Theory]
    [InlineData("mlp"), InlineData("cnn")]
    public void A_pytorch_export_reproduces_pytorchs_outputs_and_gradients(string name)
    {
        var model = OnnxModel.Load(Fixture(name + ".onnx"));
        model.Eval();
        Tensor x = Torch[name + "_input"], expected = Torch[name + "_output"];
        var y = model.Forward(x);
        OnnxExportTests.AssertClose(expected.ToFloatArray(), y.ToFloatArray(), $"{name} output");

        // Eval mode (running statistics, no dropout) makes the gradient deterministic: compare with PyTorch's.
        var labels = Torch["labels"].ToFloatArray().Select(v => (int)v).ToArray();
        var loss = y.CrossEntropy(labels);
        loss.Backward();
        Assert.Equal(Torch[name + "_loss"].Item(), loss.Item(), 5);
        int compared = 0;
        foreach (var (parameter, p) in model.NamedParameters())
        {
            if (!Torch.TryGetValue($"{name}_grad.{parameter}", out var g)) continue;   // PyTorch fused conv+BN into unnamed weights
            OnnxExportTests.AssertClose(g.ToFloatArray(), p.Grad!.ToFloatArray(), $"{name} gradient of {parameter}");
            compared++;
        }
        Assert.True(compared >= 4, $"{name}: only {compared} parameters kept PyTorch's names");
    }

    [Theory]
    [InlineData("mlp"), InlineData("cnn")]
    public void A_pytorch_export_fine_tunes_and_exports_again(string name)
    {
        var model = OnnxModel.Load(Fixture(name + ".onnx"), new Generator(5));
        Tensor x = Torch[name + "_input"];
        var labels = Torch["labels"].ToFloatArray().Select(v => (int)v).ToArray();
        double Loss() { using var _ = Autograd.NoGrad(); model.Eval(); var l = model.Forward(x).CrossEntropy(labels).Item(); model.Train(); return l; }
        double before = Loss();
        var sgd = new Sgd(model.Parameters(), learningRate: 0.05, momentum: 0.9);
        model.Train();   // dropout on, batch statistics, as PyTorch trains
        for (int step = 0; step < 30; step++)
        {
            sgd.ZeroGrad();
            model.Forward(x).CrossEntropy(labels).Backward();
            sgd.Step();
        }
        double after = Loss();
        Assert.True(after < before * 0.5, $"{name}: loss {before:F4} → {after:F4} after 30 steps");

        // the tuned model exports, and ONNX Runtime agrees with it
        model.Eval();
        var bytes = OnnxExport.ToBytes(model, x, t => [("output", model.Forward(t))]);
        using var session = new InferenceSession(bytes);
        using var __ = Autograd.NoGrad();
        OnnxExportTests.AssertClose(model.Forward(x).ToFloatArray(), OnnxExportTests.OrtRun(session, "input", x)["output"], $"{name} re-exported");
    }

    [Fact]
    public void Unsupported_ops_and_broken_files_are_refused_with_the_reason()
    {
        var garbage = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(new MemoryStream([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2])));
        Assert.Contains("not a valid ONNX model", garbage.Message);

        var model = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixture("mlp.onnx")));
        model.Graph.Node[2].OpType = "Hardmax";
        var e = Assert.Throws<NotSupportedException>(() => OnnxModel.Load(new MemoryStream(Google.Protobuf.MessageExtensions.ToByteArray(model))));
        Assert.Contains("'Hardmax'", e.Message);
        Assert.Contains(model.Graph.Node[2].Name, e.Message);

        model = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixture("mlp.onnx")));
        model.OpsetImport[0].Version = 9;
        Assert.Contains("opset 9", Assert.Throws<NotSupportedException>(() => OnnxModel.Load(new MemoryStream(Google.Protobuf.MessageExtensions.ToByteArray(model)))).Message);

        Assert.Throws<FileNotFoundException>(() => OnnxModel.Load(Path.Combine(Path.GetTempPath(), "no-such-model.onnx")));

        // a malformed node fails when run, naming the node, not with an index error from inside
        model = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixture("cnn.onnx")));
        var conv = model.Graph.Node.First(n => n.OpType == "Conv");
        conv.Attribute.First(a => a.Name == "strides").Ints.RemoveAt(1);
        var broken = OnnxModel.Load(new MemoryStream(Google.Protobuf.MessageExtensions.ToByteArray(model)));
        var bad = Assert.Throws<InvalidDataException>(() => broken.Forward(Torch["cnn_input"]));
        Assert.Contains(conv.Name, bad.Message);
    }
}
