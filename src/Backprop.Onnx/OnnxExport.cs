using Backprop.Nn;
using Backprop.Serialization;
using Google.Protobuf;
using Onnx;

namespace Backprop.Onnx;

/// <summary>How <see cref="OnnxExport"/> names and shapes the exported graph.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The graph input's name.</summary>
    public string InputName { get; init; } = "input";

    /// <summary>
    /// When true (the default) the first dimension of the input, and of every output that carries it, is the symbolic
    /// "batch", so the file runs at any batch size; reshapes keep it with ONNX's 0 ("copy this dimension").
    /// </summary>
    public bool DynamicBatch { get; init; } = true;

    /// <summary>The graph's name (ONNX GraphProto.name).</summary>
    public string GraphName { get; init; } = "backprop";
}

/// <summary>
/// ONNX export (opset 17): runs the forward pass once on an example input with recording on, walks the recorded graph
/// of typed ops (<see cref="Function.Name"/>, <see cref="Function.Attributes"/>) and writes one ONNX node, or a short
/// fixed pattern, per op. Parameters and buffers become initializers under their state-dict names; any other constant
/// tensor the graph reads (a scalar of <c>x * 0.5</c>) becomes a numbered initializer. The module is traced in eval
/// mode, so BatchNorm is ONNX's BatchNormalization with the running statistics and Dropout is absent.
/// </summary>
public static class OnnxExport
{
    /// <summary>The opset the exporter writes.</summary>
    public const int Opset = 17;

    /// <summary>Exports <paramref name="module"/>'s <see cref="Module.Forward"/> with one output named "output".</summary>
    public static void ExportOnnx(this Module module, string path, Tensor exampleInput, OnnxExportOptions? options = null) =>
        Export(path, module, exampleInput, x => [("output", module.Forward(x))], options);

    /// <summary>
    /// Exports the function <paramref name="outputs"/> of one input — a model with several heads, or one part of a
    /// model (a VAE's encoder) — naming each output. Parameters and buffers of <paramref name="module"/> keep their
    /// state-dict names. The module's train/eval mode is restored afterwards.
    /// </summary>
    public static void Export(string path, Module module, Tensor exampleInput,
        Func<Tensor, IReadOnlyList<(string Name, Tensor Value)>> outputs, OnnxExportOptions? options = null)
    {
        var model = ToModel(module, exampleInput, outputs, options ?? new());
        AtomicFile.Write(path, stream => model.WriteTo(stream));
    }

    /// <summary>The exported model as bytes (what <see cref="Export"/> writes).</summary>
    public static byte[] ToBytes(Module module, Tensor exampleInput, Func<Tensor, IReadOnlyList<(string Name, Tensor Value)>> outputs,
        OnnxExportOptions? options = null) => ToModel(module, exampleInput, outputs, options ?? new()).ToByteArray();

    internal static ModelProto ToModel(Module module, Tensor exampleInput, Func<Tensor, IReadOnlyList<(string Name, Tensor Value)>> outputs,
        OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(exampleInput);
        if (exampleInput.Rank == 0) throw new ArgumentException("onnx export: the example input needs a batch dimension, got a scalar");
        // Every submodule's own mode, restored one by one (parents first, so a child's own setting wins).
        var modes = new List<(Module Module, bool Training)>();
        void Record(Module m) { modes.Add((m, m.Training)); foreach (var (_, c) in m.Children()) Record(c); }
        Record(module);
        module.Eval();
        try
        {
            var model = Trace(module, exampleInput, outputs, options);
            if (options.DynamicBatch)
            {
                // Traced again with one more row, the graph and its constants must not change: a value computed from the
                // input outside autograd (frozen into a constant) or a shape tied to the batch size would.
                var larger = Ops.Cat([exampleInput.Detach(), exampleInput.Detach().Narrow(0, 0, 1)], 0);
                if (!Trace(module, larger, outputs, options).Graph.Equals(model.Graph))
                    throw new InvalidOperationException("onnx export: the traced graph changes with the batch size — a value computed from the input " +
                        "outside autograd became a constant, or a shape is tied to the batch; export with DynamicBatch = false to fix the batch size");
            }
            return model;
        }
        finally { foreach (var (m, training) in modes) m.Train(training); }
    }

    static ModelProto Trace(Module module, Tensor exampleInput, Func<Tensor, IReadOnlyList<(string Name, Tensor Value)>> outputs, OnnxExportOptions options)
    {
        var input = exampleInput.Detach().Clone();
        input.RequiresGrad = true;   // so every op downstream of the input records its node
        IReadOnlyList<(string Name, Tensor Value)> results;
        using (Autograd.EnableGrad()) results = outputs(input);
        if (results.Count == 0) throw new ArgumentException("onnx export: the function returned no outputs");
        var names = results.Select(r => r.Name).ToList();
        if (names.Distinct().Count() != names.Count || names.Contains(options.InputName))
            throw new ArgumentException($"onnx export: output names must be distinct and differ from the input's: {string.Join(", ", names)}");
        return new GraphWriter(module, input, options).Write(results);
    }

    internal static TensorProto.Types.DataType ElementType(DType dtype) =>
        dtype == DType.Float64 ? TensorProto.Types.DataType.Double : TensorProto.Types.DataType.Float;

    /// <summary>Builds the GraphProto: one pass over the recorded nodes, inputs before the nodes that read them.</summary>
    sealed class GraphWriter
    {
        readonly Tensor input;
        readonly OnnxExportOptions options;
        readonly int batch;
        readonly GraphProto graph;
        readonly Dictionary<Tensor, string> known = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<Tensor, string> stateNames = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<Tensor, string> wanted = new(ReferenceEqualityComparer.Instance);   // graph outputs, named by the caller
        readonly HashSet<string> used = [];
        int counter;

        public GraphWriter(Module module, Tensor input, OnnxExportOptions options)
        {
            this.input = input;
            this.options = options;
            batch = input.Shape[0];
            graph = new GraphProto { Name = options.GraphName };
            foreach (var (name, t) in module.NamedParameters()) stateNames.TryAdd(t, name);
            foreach (var (name, t) in module.NamedBuffers()) stateNames.TryAdd(t, name);
            known[input] = options.InputName;
            used.Add(options.InputName);
            graph.Input.Add(ValueInfo(options.InputName, input, batched: options.DynamicBatch));
        }

        public ModelProto Write(IReadOnlyList<(string Name, Tensor Value)> outputs)
        {
            foreach (var (name, t) in outputs) if (t.GradFn is not null) wanted.TryAdd(t, name);
            foreach (var (name, _) in outputs) used.Add(name);
            foreach (var (name, t) in outputs)
            {
                // A forward computed outside autograd (under NoGrad, or by hand) leaves no graph: exporting it would
                // freeze one batch's result into the file as a constant.
                if (!ReachesInput(t))
                    throw new InvalidOperationException($"onnx export: output '{name}' does not depend on the input through recorded ops; " +
                        "the forward pass ran outside autograd (a NoGrad scope, or a hand-written computation), so there is no graph to export");
                EmitUpTo(t);
                var value = ValueOf(t);
                if (value != name) Add("Identity", [value], [name]);   // an output that is a leaf, or the same tensor twice
                graph.Output.Add(ValueInfo(name, t, batched: options.DynamicBatch && t.Rank > 0 && t.Shape[0] == batch));
            }
            var model = new ModelProto
            {
                IrVersion = 8, ProducerName = "Backprop", ProducerVersion = typeof(Tensor).Assembly.GetName().Version?.ToString(3) ?? "",
                Graph = graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
            return model;
        }

        bool ReachesInput(Tensor output)
        {
            var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            var stack = new Stack<Tensor>([output]);
            while (stack.Count > 0)
            {
                var t = stack.Pop();
                if (ReferenceEquals(t, input)) return true;
                if (seen.Add(t) && t.GradFn is { } f) foreach (var i in f.Inputs) stack.Push(i);
            }
            return false;
        }

        // Emits every node t depends on, inputs first, with an explicit stack: a graph thousands of ops deep must not
        // overflow the call stack (ValueOf then finds each input already written).
        void EmitUpTo(Tensor root)
        {
            var stack = new Stack<(Tensor Tensor, bool Expanded)>();
            stack.Push((root, false));
            while (stack.Count > 0)
            {
                var (t, expanded) = stack.Pop();
                if (known.ContainsKey(t)) continue;
                if (expanded || t.GradFn is null) { ValueOf(t); continue; }
                stack.Push((t, true));
                var inputs = t.GradFn.Inputs;
                for (int i = inputs.Count - 1; i >= 0; i--)
                    if (!known.ContainsKey(inputs[i])) stack.Push((inputs[i], false));
            }
        }

        // The graph value holding t: the input, an initializer (a parameter, buffer or constant), or a node's output.
        string ValueOf(Tensor t)
        {
            if (known.TryGetValue(t, out var name)) return name;
            if (t.GradFn is null)
            {
                name = stateNames.TryGetValue(t, out var s) ? s : Fresh("const");
                graph.Initializer.Add(Initializer(name, t));
            }
            else name = Emit(t, t.GradFn);
            known[t] = name;
            return name;
        }

        string Fresh(string stem)
        {
            string name;
            do name = $"{stem}_{counter++}"; while (!used.Add(name));
            return name;
        }

        string Out(Tensor t, string stem) => wanted.TryGetValue(t, out var name) ? name : Fresh(stem);

        NodeProto Add(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = $"{op}_{graph.Node.Count}" };
            node.Input.AddRange(inputs);
            node.Output.AddRange(outputs);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return node;
        }

        // One op node with a fresh output name (or the caller's, when t is a graph output).
        string Node(Tensor t, string op, string[] inputs, params AttributeProto[] attributes)
        {
            var name = Out(t, op.ToLowerInvariant());
            Add(op, inputs, [name], attributes);
            return name;
        }

        // An intermediate value inside a pattern of several nodes.
        string Step(string op, string[] inputs, params AttributeProto[] attributes)
        {
            var name = Fresh(op.ToLowerInvariant());
            Add(op, inputs, [name], attributes);
            return name;
        }

        string Constant(double value, DType dtype)
        {
            var name = Fresh("const");
            graph.Initializer.Add(Initializer(name, Tensor.Scalar(value, dtype)));
            return name;
        }

        string Int64s(params long[] values)
        {
            var name = Fresh("shape");
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            proto.Dims.Add(values.Length);
            proto.Int64Data.AddRange(values);
            graph.Initializer.Add(proto);
            return name;
        }

        string Emit(Tensor t, Function f)
        {
            var inputs = f.Inputs;   // a fresh list per call: read it once
            var ins = inputs.Select(ValueOf).ToArray();
            var x = inputs.Count > 0 ? inputs[0] : null;
            switch (f.Name)
            {
                case "add": return Node(t, "Add", ins);
                case "sub": return Node(t, "Sub", ins);
                case "mul": return Node(t, "Mul", ins);
                case "div": return Node(t, "Div", ins);
                case "neg": return Node(t, "Neg", ins);
                case "exp": return Node(t, "Exp", ins);
                case "log": return Node(t, "Log", ins);
                case "sqrt": return Node(t, "Sqrt", ins);
                case "abs": return Node(t, "Abs", ins);
                case "sin": return Node(t, "Sin", ins);
                case "cos": return Node(t, "Cos", ins);
                case "erf": return Node(t, "Erf", ins);
                case "tanh": return Node(t, "Tanh", ins);
                case "sigmoid": return Node(t, "Sigmoid", ins);
                case "relu": return Node(t, "Relu", ins);
                case "maximum": return Node(t, "Max", ins);
                case "pow": return Node(t, "Pow", [ins[0], Constant(Attr<double>(f, "exponent"), t.DType)]);
                case "clamp": return Node(t, "Clip", [ins[0], Constant(Attr<double>(f, "min"), t.DType), Constant(Attr<double>(f, "max"), t.DType)]);
                case "leaky_relu": return Node(t, "LeakyRelu", ins, Float("alpha", Attr<double>(f, "negative_slope")));
                case "elu": return Node(t, "Elu", ins, Float("alpha", Attr<double>(f, "alpha")));
                case "softplus":
                {
                    double beta = Attr<double>(f, "beta");
                    // At the default threshold (20) the switch to the identity is where softplus(βx)/β equals x in float
                    // precision, so ONNX's Softplus, which has none, computes the same; another threshold would not.
                    if (Attr<double>(f, "threshold") != 20) throw Unsupported(f, "softplus with a threshold other than 20");
                    if (beta == 1) return Node(t, "Softplus", ins);
                    var scaled = Step("Softplus", [Step("Mul", [ins[0], Constant(beta, t.DType)])]);
                    return Node(t, "Div", [scaled, Constant(beta, t.DType)]);
                }
                case "silu": return Node(t, "Mul", [ins[0], Step("Sigmoid", ins)]);
                case "gelu":
                {
                    string half = Step("Mul", [ins[0], Constant(0.5, t.DType)]), inner;
                    if (Attr<string>(f, "approximate") == "tanh")
                    {
                        // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
                        var cube = Step("Mul", [Step("Mul", [ins[0], ins[0]]), ins[0]]);
                        var arg = Step("Mul", [Step("Add", [ins[0], Step("Mul", [cube, Constant(0.044715, t.DType)])]), Constant(Math.Sqrt(2 / Math.PI), t.DType)]);
                        inner = Step("Tanh", [arg]);
                    }
                    else inner = Step("Erf", [Step("Div", [ins[0], Constant(Math.Sqrt(2), t.DType)])]);   // 0.5 x (1 + erf(x/√2))
                    return Node(t, "Mul", [half, Step("Add", [inner, Constant(1, t.DType)])]);
                }
                case "softmax": return Node(t, "Softmax", ins, Int("axis", -1));
                case "log_softmax": return Node(t, "LogSoftmax", ins, Int("axis", -1));
                case "linear":
                    return x!.Rank == 2
                        ? Node(t, "Gemm", ins, Int("transB", 1))
                        : throw Unsupported(f, "a linear layer on a rank-" + x.Rank + " input");
                case "matmul":
                {
                    string a = Attr<bool>(f, "transpose_a") ? Step("Transpose", [ins[0]], Ints("perm", 1, 0)) : ins[0];
                    string b = Attr<bool>(f, "transpose_b") ? Step("Transpose", [ins[1]], Ints("perm", 1, 0)) : ins[1];
                    return Node(t, "MatMul", [a, b]);
                }
                case "bmm": return Node(t, "MatMul", ins);
                case "layer_norm":
                {
                    var shape = Attr<int[]>(f, "normalized_shape");
                    if (ins.Length != 3) throw Unsupported(f, "a layer norm without both weight and bias");
                    return Node(t, "LayerNormalization", ins, Int("axis", -shape.Length), Float("epsilon", Attr<double>(f, "eps")));
                }
                case "batch_norm_eval": return Node(t, "BatchNormalization", ins, Float("epsilon", Attr<double>(f, "eps")));
                case "batch_norm":
                case "batch_norm_nd":
                case "dropout":
                    throw Unsupported(f, "a training-mode op (the exporter traces in eval mode; was it called directly, with training: true?)");
                case "conv2d":
                {
                    var (k, s, d) = (Attr<Size2>(f, "kernel_size"), Attr<Size2>(f, "stride"), Attr<Size2>(f, "dilation"));
                    return Node(t, "Conv", ins, Ints("kernel_shape", k.Height, k.Width), Ints("strides", s.Height, s.Width),
                        Ints("pads", Attr<int[]>(f, "pads")), Ints("dilations", d.Height, d.Width), Int("group", Attr<int>(f, "groups")));
                }
                case "conv_transpose2d":
                {
                    var (k, s, d, op) = (Attr<Size2>(f, "kernel_size"), Attr<Size2>(f, "stride"), Attr<Size2>(f, "dilation"), Attr<Size2>(f, "output_padding"));
                    var p = Attr<Padding2d>(f, "padding");
                    return Node(t, "ConvTranspose", ins, Ints("kernel_shape", k.Height, k.Width), Ints("strides", s.Height, s.Width),
                        Ints("pads", p.Height, p.Width, p.Height, p.Width), Ints("dilations", d.Height, d.Width),
                        Ints("output_padding", op.Height, op.Width), Int("group", Attr<int>(f, "groups")));
                }
                case "max_pool2d":
                {
                    var (k, s, p, d) = (Attr<Size2>(f, "kernel_size"), Attr<Size2>(f, "stride"), Attr<Size2>(f, "padding"), Attr<Size2>(f, "dilation"));
                    bool ceil = Attr<bool>(f, "ceil_mode");
                    CheckPoolShape(f, x!, t, k, s, p, d, ceil);
                    return Node(t, "MaxPool", ins, Ints("kernel_shape", k.Height, k.Width), Ints("strides", s.Height, s.Width),
                        Ints("pads", p.Height, p.Width, p.Height, p.Width), Ints("dilations", d.Height, d.Width), Int("ceil_mode", ceil ? 1 : 0));
                }
                case "avg_pool2d":
                {
                    var (k, s, p, d) = (Attr<Size2>(f, "kernel_size"), Attr<Size2>(f, "stride"), Attr<Size2>(f, "padding"), Attr<Size2>(f, "dilation"));
                    bool ceil = Attr<bool>(f, "ceil_mode");
                    if (d != new Size2(1, 1)) throw Unsupported(f, "a dilated average pooling (opset 17 has none)");
                    CheckPoolShape(f, x!, t, k, s, p, d, ceil);
                    return Node(t, "AveragePool", ins, Ints("kernel_shape", k.Height, k.Width), Ints("strides", s.Height, s.Width),
                        Ints("pads", p.Height, p.Width, p.Height, p.Width), Int("ceil_mode", ceil ? 1 : 0),
                        Int("count_include_pad", Attr<bool>(f, "count_include_pad") ? 1 : 0));
                }
                case "adaptive_avg_pool2d":
                {
                    var o = Attr<Size2>(f, "output_size");
                    int h = x!.Shape[2], w = x.Shape[3];
                    if (o == new Size2(1, 1)) return Node(t, "GlobalAveragePool", ins);
                    if (h % o.Height != 0 || w % o.Width != 0)
                        throw Unsupported(f, $"adaptive pooling from {h}×{w} to {o}, whose windows are not all the same size");
                    return Node(t, "AveragePool", ins, Ints("kernel_shape", h / o.Height, w / o.Width), Ints("strides", h / o.Height, w / o.Width));
                }
                case "view" or "reshape" or "squeeze" or "unsqueeze": return Node(t, "Reshape", [ins[0], Int64s(TargetShape(x!, t))]);
                case "contiguous" or "clone": return Node(t, "Identity", ins);
                case "transpose":
                {
                    var perm = Enumerable.Range(0, t.Rank).Select(i => (long)i).ToArray();
                    int d0 = Axis(Attr<int>(f, "dim0"), t.Rank), d1 = Axis(Attr<int>(f, "dim1"), t.Rank);
                    (perm[d0], perm[d1]) = (perm[d1], perm[d0]);
                    return Node(t, "Transpose", ins, Ints("perm", perm));
                }
                case "permute": return Node(t, "Transpose", ins, Ints("perm", Attr<int[]>(f, "dims").Select(i => (long)Axis(i, t.Rank)).ToArray()));
                case "cat": return Node(t, "Concat", ins, Int("axis", Attr<int>(f, "dim")));
                case "to": return Node(t, "Cast", ins, Int("to", (int)ElementType(t.DType)));
                case "sum":
                {
                    if (f.Attributes.Any(a => a.Name == "axis"))
                    {
                        int axis = Axis(Attr<int>(f, "axis"), x!.Rank);
                        return Node(t, "ReduceSum", [ins[0], Int64s(axis)], Int("keepdims", t.Rank == x.Rank ? 1 : 0));
                    }
                    return Node(t, "ReduceSum", ins, Int("keepdims", 0));
                }
                case "max":
                {
                    int axis = Axis(Attr<int>(f, "axis"), x!.Rank);
                    return Node(t, "ReduceMax", ins, Ints("axes", axis), Int("keepdims", t.Rank == x.Rank ? 1 : 0));
                }
                case "narrow" or "slice":
                {
                    int dim = Axis(Attr<int>(f, "dim"), x!.Rank), start = Attr<int>(f, "start"), length = Attr<int>(f, "length"), step = Attr<int>(f, "step");
                    return Node(t, "Slice", [ins[0], Int64s(start), Int64s(start + (long)(length - 1) * step + 1), Int64s(dim), Int64s(step)]);
                }
                case "select":
                {
                    int dim = Axis(Attr<int>(f, "dim"), x!.Rank);
                    var index = Fresh("index");
                    var proto = new TensorProto { Name = index, DataType = (int)TensorProto.Types.DataType.Int64 };
                    proto.Int64Data.Add(Attr<int>(f, "index"));   // a scalar index: Gather drops the axis, as select does
                    graph.Initializer.Add(proto);
                    return Node(t, "Gather", [ins[0], index], Int("axis", dim));
                }
                case "expand":
                {
                    var shape = t.Shape.ToArray().Select(i => (long)i).ToArray();
                    // Expand broadcasts both ways, so a 1 keeps the input's dimension: the batch stays symbolic.
                    if (options.DynamicBatch && x!.Rank == t.Rank && x.Shape[0] == batch && t.Shape[0] == batch) shape[0] = 1;
                    return Node(t, "Expand", [ins[0], Int64s(shape)]);
                }
                default: throw Unsupported(f, "an op with no ONNX mapping");
            }
        }

        // Reshape's target: the batch dimension stays symbolic (0 copies the input's; −1 when it merges with others).
        long[] TargetShape(Tensor x, Tensor y)
        {
            var shape = y.Shape.ToArray().Select(i => (long)i).ToArray();
            if (!options.DynamicBatch || x.Rank == 0 || y.Rank == 0 || x.Shape[0] != batch) return shape;
            if (y.Shape[0] == batch) shape[0] = 0;
            else if (y.Shape[0] % batch == 0 && x.Rank > y.Rank) shape[0] = -1;   // (N, T, F) → (N·T, F)
            return shape;
        }

        static void CheckPoolShape(Function f, Tensor x, Tensor y, Size2 k, Size2 s, Size2 p, Size2 d, bool ceil)
        {
            // ONNX's ceil mode keeps a last window that starts in the right padding; PyTorch drops it. Refuse those shapes.
            static int Onnx(int size, int k, int s, int p, int d, bool ceil)
            {
                double span = (size + 2.0 * p - d * (k - 1) - 1) / s;
                return (int)(ceil ? Math.Ceiling(span) : Math.Floor(span)) + 1;
            }
            if (Onnx(x.Shape[2], k.Height, s.Height, p.Height, d.Height, ceil) != y.Shape[2] || Onnx(x.Shape[3], k.Width, s.Width, p.Width, d.Width, ceil) != y.Shape[3])
                throw Unsupported(f, "a ceil-mode pooling whose last window starts in the padding (ONNX would keep it)");
        }

        static int Axis(int axis, int rank) => axis < 0 ? axis + rank : axis;

        static T Attr<T>(Function f, string name)
        {
            foreach (var (n, v) in f.Attributes)
                if (n == name)
                    return v is T value ? value : throw new InvalidOperationException($"onnx export: '{f.Name}' attribute '{name}' is {v?.GetType().Name ?? "null"}, expected {typeof(T).Name}");
            throw new InvalidOperationException($"onnx export: '{f.Name}' has no attribute '{name}'");
        }

        static NotSupportedException Unsupported(Function f, string what) =>
            new($"onnx export: cannot export '{f}': {what}. Exportable ops: {string.Join(", ", Exportable)}");

        ValueInfoProto ValueInfo(string name, Tensor t, bool batched)
        {
            var shape = new TensorShapeProto();
            for (int i = 0; i < t.Rank; i++)
                shape.Dim.Add(i == 0 && batched ? new TensorShapeProto.Types.Dimension { DimParam = "batch" } : new TensorShapeProto.Types.Dimension { DimValue = t.Shape[i] });
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)ElementType(t.DType), Shape = shape } },
            };
        }
    }

    /// <summary>The ops <see cref="OnnxExport"/> maps (by <see cref="Function.Name"/>).</summary>
    public static IReadOnlyList<string> Exportable { get; } =
    [
        "add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "maximum", "pow", "clamp",
        "leaky_relu", "elu", "softplus", "silu", "gelu", "softmax", "log_softmax", "linear", "matmul", "bmm", "layer_norm", "batch_norm_eval",
        "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "view", "reshape", "squeeze", "unsqueeze",
        "contiguous", "clone", "transpose", "permute", "cat", "to", "sum", "max", "narrow", "slice", "select", "expand",
    ];

    internal static TensorProto Initializer(string name, Tensor t)
    {
        var proto = new TensorProto { Name = name, DataType = (int)ElementType(t.DType) };
        for (int i = 0; i < t.Rank; i++) proto.Dims.Add(t.Shape[i]);
        // raw_data is little-endian; so is every machine .NET runs this library on (checked, not assumed).
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("onnx export: big-endian machines are not supported");
        proto.RawData = t.DType == DType.Float64
            ? ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.ToDoubleArray().AsSpan()))
            : ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.ToFloatArray().AsSpan()));
        return proto;
    }

    static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    static AttributeProto Float(string name, double value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };
    static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
    static AttributeProto Ints(string name, int[] values) => Ints(name, values.Select(v => (long)v).ToArray());
}
