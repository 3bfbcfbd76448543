using System.Runtime.InteropServices;
using Backprop.Nn;
using Onnx;

namespace Backprop.Onnx;

/// <summary>
/// A trainable module read from an ONNX file: its float initializers become parameters (BatchNormalization's running
/// statistics become buffers) under their ONNX names — PyTorch's state-dict names, <c>0.weight</c>, when PyTorch wrote
/// the file — and <see cref="Forward"/> runs the graph's nodes with Backprop's ops, so gradients flow and any optimizer
/// fine-tunes it. Dropout is active and BatchNormalization uses batch statistics in training mode, as in PyTorch.
/// Graphs of the ops <see cref="OnnxExport"/> writes load (see <see cref="Supported"/>); anything else is refused
/// when loading, naming the node.
/// </summary>
public sealed class OnnxModel : Module
{
    readonly GraphProto graph;
    readonly Dictionary<string, Tensor> floats = [];              // initializers and Constant outputs: parameters, buffers, constants
    readonly Dictionary<string, IntTensor> ints = [];             // int64/int32 constants (shapes, axes)
    readonly Generator generator;

    /// <summary>The graph's input names (initializers excluded) and output names, in the file's order.</summary>
    public IReadOnlyList<string> InputNames { get; }
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>The ONNX ops <see cref="OnnxModel"/> runs (default domain, opset 13 to 17).</summary>
    public static IReadOnlyList<string> Supported { get; } =
    [
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Exp", "Log", "Sqrt", "Abs", "Sin", "Cos", "Erf", "Pow", "Max", "Clip",
        "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Softplus", "Softmax", "LogSoftmax", "BatchNormalization", "LayerNormalization",
        "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape",
        "Transpose", "Concat", "Dropout", "Identity", "Constant", "ReduceSum", "ReduceMax", "Cast", "Pad",
    ];

    OnnxModel(ModelProto model, Generator generator)
    {
        graph = model.Graph ?? throw new InvalidDataException("onnx: the file has no graph");
        this.generator = generator;
        var opset = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version
            ?? throw new InvalidDataException("onnx: the model imports no default-domain opset");
        if (opset < 13 || opset > OnnxExport.Opset)
            throw new NotSupportedException($"onnx: opset {opset} is not supported (Backprop reads opsets 13 to {OnnxExport.Opset}); re-export with opset_version=17");

        var runningStats = graph.Node.Where(n => n.OpType == "BatchNormalization").SelectMany(n => n.Input.Skip(3).Take(2)).ToHashSet();
        foreach (var init in graph.Initializer)
        {
            var (f, i) = Read(init, $"initializer '{init.Name}'");
            if (i is not null) { ints[init.Name] = i; continue; }
            if (f!.Rank == 0) floats[init.Name] = f;   // a scalar of the arithmetic (x * 0.5): a constant
            else floats[init.Name] = runningStats.Contains(init.Name) ? Register(init.Name, f, buffer: true) : Register(init.Name, f, buffer: false);
        }
        foreach (var node in graph.Node)
        {
            if (node.Domain is not ("" or "ai.onnx"))
                throw new NotSupportedException($"onnx: node '{node.Name}' is '{node.Domain}.{node.OpType}', outside the default domain; supported: {string.Join(", ", Supported)}");
            if (!Supported.Contains(node.OpType))
                throw new NotSupportedException($"onnx: node '{node.Name}' is '{node.OpType}', which Backprop does not import; supported: {string.Join(", ", Supported)}");
            if (node.OpType == "Constant")
            {
                var value = node.Attribute.FirstOrDefault(a => a.Name == "value")?.T
                    ?? throw new NotSupportedException($"onnx: Constant '{node.Name}' has no tensor 'value' attribute");
                var (f, i) = Read(value, $"Constant '{node.Name}'");
                if (i is not null) ints[node.Output[0]] = i; else floats[node.Output[0]] = f!;
            }
        }
        var initialized = graph.Initializer.Select(i => i.Name).ToHashSet();
        InputNames = [.. graph.Input.Select(i => i.Name).Where(n => !initialized.Contains(n))];
        OutputNames = [.. graph.Output.Select(o => o.Name)];
        if (InputNames.Count == 0) throw new InvalidDataException("onnx: the graph has no input");
    }

    /// <summary>Reads an ONNX model file (dropout masks drawn from <paramref name="generator"/>, default seed 0).</summary>
    public static OnnxModel Load(string path, Generator? generator = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"onnx: no file '{path}'", path);
        using var stream = File.OpenRead(path);
        try { return Load(stream, generator); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>Reads an ONNX model from a stream.</summary>
    public static OnnxModel Load(Stream stream, Generator? generator = null)
    {
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(stream); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"onnx: not a valid ONNX model ({e.Message})", e); }
        return new OnnxModel(model, generator ?? new Generator(0));
    }

    /// <summary>The graph's one output for its one input.</summary>
    public override Tensor Forward(Tensor input)
    {
        if (OutputNames.Count != 1) throw new InvalidOperationException($"onnx: the graph has {OutputNames.Count} outputs ({string.Join(", ", OutputNames)}); use Outputs");
        return Outputs(input)[OutputNames[0]];
    }

    /// <summary>Every output of the graph for its one input, by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Outputs(Tensor input)
    {
        if (InputNames.Count != 1) throw new InvalidOperationException($"onnx: the graph has {InputNames.Count} inputs ({string.Join(", ", InputNames)}); use Run");
        return Run(new Dictionary<string, Tensor> { [InputNames[0]] = input });
    }

    /// <summary>Runs the graph on named inputs; returns its outputs by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var values = new Dictionary<string, object>(floats.Count + graph.Node.Count);
        foreach (var (name, t) in floats) values[name] = t;
        foreach (var (name, t) in ints) values[name] = t;
        foreach (var name in InputNames)
            values[name] = inputs.TryGetValue(name, out var x) ? x : throw new ArgumentException($"onnx: input '{name}' is missing");
        foreach (var node in graph.Node)
        {
            if (node.OpType == "Constant") continue;
            object result;
            try { result = Evaluate(node, values); }
            catch (Exception e) when (e is not (NotSupportedException or InvalidDataException or OutOfMemoryException))
            {
                // a malformed node (an axis past the rank, a short attribute) or inputs of the wrong shape: name the node
                throw new InvalidDataException($"onnx: node '{node.Name}' ({node.OpType}) failed: {e.Message}", e);
            }
            values[node.Output[0]] = result;
        }
        return OutputNames.ToDictionary(n => n, n => values.TryGetValue(n, out var v) && v is Tensor t ? t
            : throw new InvalidOperationException($"onnx: output '{n}' was not computed as a float tensor"));
    }

    object Evaluate(NodeProto node, Dictionary<string, object> values)
    {
        Tensor In(int i) => i < node.Input.Count && node.Input[i] != "" && values.TryGetValue(node.Input[i], out var v)
            ? v as Tensor ?? throw new NotSupportedException($"onnx: node '{node.Name}' input {i} is an integer tensor where a float one is needed")
            : throw new InvalidDataException($"onnx: node '{node.Name}' ({node.OpType}) reads '{(i < node.Input.Count ? node.Input[i] : "?")}', which is not computed before it");
        Tensor? Optional(int i) => i < node.Input.Count && node.Input[i] != "" ? In(i) : null;
        IntTensor IntIn(int i) => i < node.Input.Count && values.TryGetValue(node.Input[i], out var v) && v is IntTensor it ? it
            : throw new NotSupportedException($"onnx: node '{node.Name}' ({node.OpType}) needs input {i} as a constant integer tensor");
        long Int(string name, long fallback) => node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;
        double Float(string name, double fallback) => node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
        long[]? Ints(string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray();
        string Str(string name, string fallback) => node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.S.ToStringUtf8() : fallback;

        switch (node.OpType)
        {
            case "Identity": return node.Input.Count > 0 && values.TryGetValue(node.Input[0], out var v0) ? v0
                : throw new InvalidDataException($"onnx: Identity '{node.Name}' reads a value not computed before it");
            case "Add": return In(0) + In(1);
            case "Sub": return In(0) - In(1);
            case "Mul": return In(0) * In(1);
            case "Div": return In(0) / In(1);
            case "Neg": return -In(0);
            case "Exp": return In(0).Exp();
            case "Erf": return In(0).Erf();
            case "Log": return In(0).Log();
            case "Sqrt": return In(0).Sqrt();
            case "Abs": return In(0).Abs();
            case "Sin": return In(0).Sin();
            case "Cos": return In(0).Cos();
            case "Relu": return In(0).Relu();
            case "Sigmoid": return In(0).Sigmoid();
            case "Tanh": return In(0).Tanh();
            case "LeakyRelu": return In(0).LeakyRelu(Float("alpha", 0.01));
            case "Elu": return In(0).Elu(Float("alpha", 1.0));
            case "Softplus": return In(0).Softplus();
            case "Max":
                if (node.Input.Count != 2) throw new NotSupportedException($"onnx: Max '{node.Name}' with {node.Input.Count} inputs (Backprop imports two)");
                return In(0).Maximum(In(1));
            case "Pow":
            {
                var p = In(1);
                if (p.Length != 1 || p.RequiresGrad) throw new NotSupportedException($"onnx: Pow '{node.Name}' with a non-constant exponent");
                return In(0).Pow(p.Item());
            }
            case "Clip":
            {
                var min = Optional(1); var max = Optional(2);
                return In(0).Clamp(min?.Item() ?? double.NegativeInfinity, max?.Item() ?? double.PositiveInfinity);
            }
            case "Softmax": return In(0).Softmax((int)Int("axis", -1));
            case "LogSoftmax": return In(0).LogSoftmax((int)Int("axis", -1));
            case "Gemm":
            {
                Tensor a = In(0), b = In(1);
                var c = Optional(2);
                double alpha = Float("alpha", 1), beta = Float("beta", 1);
                bool ta = Int("transA", 0) != 0, tb = Int("transB", 0) != 0;
                if (!ta && tb && alpha == 1 && beta == 1 && (c is null || c.Rank == 1)) return a.Linear(b, c);   // PyTorch's Linear
                var y = a.MatMul(b, ta, tb);
                if (alpha != 1) y = y * alpha;
                if (c is not null) y = y + (beta == 1 ? c : c * beta);
                return y;
            }
            case "MatMul": return In(0).MatMul(In(1));
            case "BatchNormalization":
                if (Int("training_mode", 0) != 0) throw new NotSupportedException($"onnx: BatchNormalization '{node.Name}' in training mode (export the model in eval mode)");
                // ONNX's momentum weighs the old statistics (0.9); PyTorch's weighs the new batch (0.1).
                return In(0).BatchNorm(In(1), In(2), In(3), In(4), training: Training, momentum: 1 - Float("momentum", 0.9), eps: Float("epsilon", 1e-5));
            case "LayerNormalization":
            {
                var x = In(0);
                int axis = (int)Int("axis", -1);
                if (axis < 0) axis += x.Rank;
                return x.LayerNorm(x.Shape[axis..].ToArray(), In(1), Optional(2), Float("epsilon", 1e-5));
            }
            case "Conv":
            {
                var (k, s, d, p) = Window(node, In(1).Shape[2..].ToArray(), Ints, Str);
                return In(0).Conv2d(In(1), Optional(2), s, p, d, (int)Int("group", 1));
            }
            case "ConvTranspose":
            {
                var (k, s, d, p) = Window(node, In(1).Shape[2..].ToArray(), Ints, Str);
                if (p.IsSame) throw new NotSupportedException($"onnx: ConvTranspose '{node.Name}' with auto_pad");
                var op = Ints("output_padding") is { Length: 2 } o ? new Size2((int)o[0], (int)o[1]) : new Size2(0, 0);
                if (Ints("output_shape") is not null) throw new NotSupportedException($"onnx: ConvTranspose '{node.Name}' with output_shape (give pads and output_padding)");
                return In(0).ConvTranspose2d(In(1), Optional(2), s, new Size2(p.Height, p.Width), op, (int)Int("group", 1), d);
            }
            case "MaxPool":
            {
                if (node.Output.Count > 1 && node.Output[1] != "") throw new NotSupportedException($"onnx: MaxPool '{node.Name}' with an Indices output");
                var kernel = Ints("kernel_shape") ?? throw new InvalidDataException($"onnx: MaxPool '{node.Name}' has no kernel_shape");
                var (k, s, d, p) = Window(node, kernel.Select(v => (int)v).ToArray(), Ints, Str);
                if (p.IsSame) throw new NotSupportedException($"onnx: MaxPool '{node.Name}' with auto_pad");
                return CheckCeil(node, In(0), In(0).MaxPool2d(k, s, new Size2(p.Height, p.Width), d, Int("ceil_mode", 0) != 0), k, s, p, d);
            }
            case "AveragePool":
            {
                var kernel = Ints("kernel_shape") ?? throw new InvalidDataException($"onnx: AveragePool '{node.Name}' has no kernel_shape");
                var (k, s, d, p) = Window(node, kernel.Select(v => (int)v).ToArray(), Ints, Str);
                if (p.IsSame || d != new Size2(1, 1)) throw new NotSupportedException($"onnx: AveragePool '{node.Name}' with auto_pad or dilations");
                return CheckCeil(node, In(0), In(0).AvgPool2d(k, s, new Size2(p.Height, p.Width), Int("ceil_mode", 0) != 0, Int("count_include_pad", 0) != 0), k, s, p, d);
            }
            case "Pad":
            {
                // PyTorch writes a zero Pad before every AveragePool; Backprop imports that no-op and nothing else.
                var pads = IntIn(1).Values;
                if (Str("mode", "constant") != "constant" || pads.Any(p => p != 0))
                    throw new NotSupportedException($"onnx: Pad '{node.Name}' with pads [{string.Join(", ", pads)}] (Backprop imports zero pads; give the padding to Conv or the pooling)");
                return In(0);
            }
            case "GlobalAveragePool": return In(0).GlobalAvgPool2d();
            case "GlobalMaxPool": return In(0).GlobalMaxPool2d();
            case "Flatten":
            {
                var x = In(0);
                int axis = (int)Int("axis", 1);
                if (axis < 0) axis += x.Rank;
                int outer = 1;
                for (int i = 0; i < axis; i++) outer *= x.Shape[i];
                return x.Reshape(outer, -1);
            }
            case "Reshape":
            {
                var x = In(0);
                var target = IntIn(1).Values;
                if (Int("allowzero", 0) != 0 && target.Contains(0)) throw new NotSupportedException($"onnx: Reshape '{node.Name}' with allowzero");
                var shape = new int[target.Length];
                for (int i = 0; i < shape.Length; i++) shape[i] = target[i] == 0 ? x.Shape[i] : checked((int)target[i]);   // 0 copies the input's dimension
                return x.Reshape(shape);
            }
            case "Transpose":
            {
                var x = In(0);
                var perm = Ints("perm")?.Select(v => (int)v).ToArray() ?? [.. Enumerable.Range(0, x.Rank).Reverse()];
                return x.Permute(perm);
            }
            case "Concat": return Ops.Cat([.. Enumerable.Range(0, node.Input.Count).Select(In)], (int)Int("axis", 0));
            case "Dropout":
            {
                var x = In(0);
                if (node.Output.Count > 1 && node.Output[1] != "") throw new NotSupportedException($"onnx: Dropout '{node.Name}' with a mask output");
                double p = Optional(1)?.Item() ?? 0.5;
                if (!Training || p == 0) return x;
                return x.Dropout(Ops.DropoutMask(x.Shape, p, generator, x.DType));
            }
            case "ReduceSum":
            {
                var x = In(0);
                bool keep = Int("keepdims", 1) != 0;
                var axes = node.Input.Count > 1 && node.Input[1] != "" ? IntIn(1).Values : [];
                if (axes.Length == 0)
                {
                    if (Int("noop_with_empty_axes", 0) != 0) return x;
                    var all = x.Sum();
                    return keep ? all.Reshape([.. Enumerable.Repeat(1, x.Rank)]) : all;
                }
                foreach (var a in axes.Select(a => (int)(a < 0 ? a + x.Rank : a)).OrderDescending()) x = x.Sum(a, keep);
                return x;
            }
            case "ReduceMax":
            {
                var x = In(0);
                bool keep = Int("keepdims", 1) != 0;
                var axes = Ints("axes") ?? [.. Enumerable.Range(0, x.Rank).Select(i => (long)i)];
                foreach (var a in axes.Select(a => (int)(a < 0 ? a + x.Rank : a)).OrderDescending()) x = x.Max(a, keep);
                return x;
            }
            case "Cast":
            {
                var to = (TensorProto.Types.DataType)Int("to", 0);
                return to switch
                {
                    TensorProto.Types.DataType.Float => In(0).To(DType.Float32),
                    TensorProto.Types.DataType.Double => In(0).To(DType.Float64),
                    _ => throw new NotSupportedException($"onnx: Cast '{node.Name}' to {to} (Backprop computes in float32 and float64)"),
                };
            }
            default: throw new NotSupportedException($"onnx: node '{node.Name}' is '{node.OpType}', which Backprop does not import");
        }
    }

    // ONNX's ceil mode keeps a last window that starts in the padding, PyTorch's (and so Backprop's) drops it: refuse a
    // node where the two output sizes differ rather than compute another shape than ONNX Runtime would.
    static Tensor CheckCeil(NodeProto node, Tensor x, Tensor y, Size2 k, Size2 s, Padding2d p, Size2 d)
    {
        static int Onnx(int size, int k, int s, int p, int d) => (int)Math.Ceiling((size + 2.0 * p - d * (k - 1) - 1) / s) + 1;
        bool ceil = node.Attribute.FirstOrDefault(a => a.Name == "ceil_mode") is { I: not 0 };
        if (ceil && (Onnx(x.Shape[^2], k.Height, s.Height, p.Height, d.Height) != y.Shape[^2] || Onnx(x.Shape[^1], k.Width, s.Width, p.Width, d.Width) != y.Shape[^1]))
            throw new NotSupportedException($"onnx: {node.OpType} '{node.Name}' in ceil mode has a last window that starts in the padding, which ONNX keeps and Backprop drops");
        return y;
    }

    // kernel, strides, dilations and symmetric pads of a 2-D Conv/Pool node (auto_pad SAME_UPPER as "same").
    static (Size2 Kernel, Size2 Stride, Size2 Dilation, Padding2d Padding) Window(NodeProto node, int[] kernel,
        Func<string, long[]?> ints, Func<string, string, string> str)
    {
        if (kernel.Length != 2) throw new NotSupportedException($"onnx: {node.OpType} '{node.Name}' is {kernel.Length}-D (Backprop imports 2-D)");
        var s = ints("strides") ?? [1, 1];
        var d = ints("dilations") ?? [1, 1];
        var p = ints("pads") ?? [0, 0, 0, 0];
        if (s.Length != 2 || d.Length != 2 || p.Length != 4)
            throw new InvalidDataException($"onnx: {node.OpType} '{node.Name}' has {s.Length} strides, {d.Length} dilations and {p.Length} pads; a 2-D node needs 2, 2 and 4");
        var k = new Size2(kernel[0], kernel[1]);
        var autoPad = str("auto_pad", "NOTSET");
        Padding2d padding;
        if (autoPad == "SAME_UPPER" && s.All(v => v == 1)) padding = Padding2d.Same;
        else if (autoPad is "NOTSET" or "VALID")
        {
            if (p.Length != 4 || p[0] != p[2] || p[1] != p[3])
                throw new NotSupportedException($"onnx: {node.OpType} '{node.Name}' has asymmetric pads [{string.Join(", ", p)}]");
            padding = new Padding2d((int)p[0], (int)p[1]);
        }
        else throw new NotSupportedException($"onnx: {node.OpType} '{node.Name}' has auto_pad {autoPad}");
        return (k, new Size2((int)s[0], (int)s[1]), new Size2((int)d[0], (int)d[1]), padding);
    }

    // Parameters and buffers under their ONNX names, nested by dots as in PyTorch ("features.0.weight").
    Tensor Register(string name, Tensor t, bool buffer)
    {
        var parts = name.Split('.').Select(p => p.Length == 0 ? "_" : p).ToArray();
        Module owner = this;
        for (int i = 0; i < parts.Length - 1; i++) owner = Scope.Child(owner, parts[i]);
        return Scope.Add(owner, parts[^1], t, buffer);
    }

    // The registration calls are protected; a nested module type reaches them for any owner in this tree.
    sealed class Scope : Module
    {
        readonly Dictionary<string, Scope> children = [];
        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("onnx: a parameter scope has no forward pass");

        public static Module Child(Module owner, string name)
        {
            var map = owner is Scope s ? s.children : ((OnnxModel)owner).scopes;
            if (!map.TryGetValue(name, out var child))
            {
                child = new Scope();
                map[name] = child;
                if (owner is Scope o) o.RegisterModule(name, child); else ((OnnxModel)owner).AddScope(name, child);
            }
            return child;
        }

        public static Tensor Add(Module owner, string name, Tensor t, bool buffer) => owner switch
        {
            Scope s => buffer ? s.RegisterBuffer(name, t) : s.RegisterParameter(name, t),
            OnnxModel m => buffer ? m.AddBuffer(name, t) : m.AddParameter(name, t),
            _ => throw new InvalidOperationException(),
        };
    }

    readonly Dictionary<string, Scope> scopes = [];
    void AddScope(string name, Scope s) => RegisterModule(name, s);
    Tensor AddParameter(string name, Tensor t) => RegisterParameter(name, t);
    Tensor AddBuffer(string name, Tensor t) => RegisterBuffer(name, t);

    /// <summary>An integer tensor of the graph (a shape, axes): never differentiated, so plain values.</summary>
    sealed record IntTensor(long[] Values, int[] Shape);

    static (Tensor? Float, IntTensor? Int) Read(TensorProto proto, string what)
    {
        if (proto.DataLocation == TensorProto.Types.DataLocation.External)
            throw new NotSupportedException($"onnx: {what} keeps its data in an external file (save the model with the weights inside)");
        var shape = proto.Dims.Select(d => checked((int)d)).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var type = (TensorProto.Types.DataType)proto.DataType;
        var raw = proto.RawData.Span;
        long expected = type switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 => 4 * count,
            TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 => 8 * count,
            _ => throw new NotSupportedException($"onnx: {what} is {type}; Backprop reads float, double, int64 and int32 tensors"),
        };
        if (!raw.IsEmpty && raw.Length != expected)
            throw new InvalidDataException($"onnx: {what} has {raw.Length} bytes of data for shape ({string.Join(", ", shape)}) of {type}, expected {expected}");
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
            {
                var v = raw.IsEmpty ? proto.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(raw).ToArray();
                Check(v.Length);
                return (shape.Length == 0 ? Tensor.Scalar(v[0], DType.Float32) : Tensor.From(v, shape), null);
            }
            case TensorProto.Types.DataType.Double:
            {
                var v = raw.IsEmpty ? proto.DoubleData.ToArray() : MemoryMarshal.Cast<byte, double>(raw).ToArray();
                Check(v.Length);
                return (shape.Length == 0 ? Tensor.Scalar(v[0], DType.Float64) : Tensor.From(v, shape), null);
            }
            case TensorProto.Types.DataType.Int64:
            {
                var v = raw.IsEmpty ? proto.Int64Data.ToArray() : MemoryMarshal.Cast<byte, long>(raw).ToArray();
                Check(v.Length);
                return (null, new IntTensor(v, shape));
            }
            default:
            {
                var v = raw.IsEmpty ? proto.Int32Data.Select(i => (long)i).ToArray() : MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(i => (long)i).ToArray();
                Check(v.Length);
                return (null, new IntTensor(v, shape));
            }
        }
        void Check(int n)
        {
            if (n != count) throw new InvalidDataException($"onnx: {what} has {n} values for shape ({string.Join(", ", shape)})");
        }
    }
}
