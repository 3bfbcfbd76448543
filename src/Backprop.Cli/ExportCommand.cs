using System.CommandLine;
using Backprop.Onnx;
using Backprop.Serialization;

namespace Backprop.Cli;

/// <summary><c>backprop export</c>: a saved model as ONNX (for ONNX Runtime and friends) or as half-precision safetensors.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var onnx = new Option<string?>("--onnx") { Description = "Write the model as ONNX (opset 17, dynamic batch) to this file; a VAE writes NAME-encoder.onnx and NAME-decoder.onnx" };
        var safetensors = new Option<string?>("--safetensors") { Description = "Write the weights, with the file's metadata, to this safetensors file" };
        var dtype = new Option<string>("--dtype") { Description = "Element type of --safetensors: f32 | f16 | bf16", DefaultValueFactory = _ => "f32" };
        var cmd = new Command("export", "Export a saved model to ONNX, or its weights to safetensors in half precision")
            { EvalCommand.ModelOption, EvalCommand.ArchOption, onnx, safetensors, dtype };
        cmd.SetAction(r => Run(r.GetValue(EvalCommand.ModelOption)!, r.GetValue(EvalCommand.ArchOption), r.GetValue(onnx), r.GetValue(safetensors), r.GetValue(dtype)!));
        return cmd;
    }

    static int Run(string modelPath, string? arch, string? onnx, string? safetensors, string dtype)
    {
        if (onnx is null && safetensors is null) throw new ArgumentException("export: give --onnx FILE, --safetensors FILE or both");
        var storeAs = dtype switch
        {
            "f32" => SafeTensorsDType.F32, "f16" => SafeTensorsDType.F16, "bf16" => SafeTensorsDType.BF16,
            _ => throw new ArgumentException($"--dtype: '{dtype}' is not one of f32, f16, bf16"),
        };
        var file = ModelFile.Load(modelPath, arch);
        if (onnx is not null)
            foreach (var graph in file.Graphs)
            {
                string path = graph.Suffix == "" ? onnx : Path.Combine(Path.GetDirectoryName(onnx) ?? "", Path.GetFileNameWithoutExtension(onnx) + graph.Suffix + Path.GetExtension(onnx));
                OnnxExport.Export(path, file.Net, Tensor.Zeros([2, .. graph.Sample]), graph.Outputs);
                string outputs;
                using (Autograd.NoGrad()) outputs = string.Join(", ", graph.Outputs(Tensor.Zeros([1, .. graph.Sample])).Select(o => o.Name));
                ConsoleOutput.Line($"wrote {path} ({ConsoleOutput.F(new FileInfo(path).Length / 1024.0, "0.0")} KB): input (batch, {string.Join(", ", graph.Sample)}) → {outputs}");
            }
        if (safetensors is not null)
        {
            var (_, metadata) = SafeTensors.Load(modelPath);
            SafeTensors.Save(safetensors, file.Net.StateDict(), metadata, storeAs);
            ConsoleOutput.Line($"wrote {safetensors} ({ConsoleOutput.F(new FileInfo(safetensors).Length / 1024.0, "0.0")} KB, {storeAs})");
        }
        return 0;
    }
}
