using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peers.TorchSharp;

/// <summary>One reported figure: the median, min and max over repetitions, in an explicit unit.</summary>
sealed record Result(string Workload, string Unit, double Median, double Min, double Max, string? Shape = null, string? Data = null)
{
    public static Result Of(string workload, string unit, IReadOnlyList<double> values, string? shape = null, string? data = null)
    {
        var v = values.Order().ToArray();
        double median = v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        return new Result(workload, unit, median, v[0], v[^1], shape, data);
    }
}

/// <summary>An MLP of Linear layers with ReLU between them; layers registered by name (fc0, fc1, …) like torch's state dicts.</summary>
sealed class Mlp : nn.Module<Tensor, Tensor>
{
    public readonly Linear[] Layers;

    public Mlp(params int[] sizes) : base("Mlp")
    {
        Layers = new Linear[sizes.Length - 1];
        for (int i = 0; i < Layers.Length; i++)
            register_module($"fc{i}", Layers[i] = nn.Linear(sizes[i], sizes[i + 1]));
    }

    public override Tensor forward(Tensor x)
    {
        for (int i = 0; i < Layers.Length - 1; i++) x = F.relu(Layers[i].forward(x));
        return Layers[^1].forward(x);
    }
}

/// <summary>
/// Backprop's Models.Cnn as a torch user writes it: [a 2×2 whitening stem, frozen, → activation] then stages of
/// (Conv k×k same → [BatchNorm2d] → activation) × per stage → MaxPool 2 (with poolFirst, each stage's first convolution is
/// pooled before its BatchNorm2d and activation, and the stage's other convolutions run at the pooled size), then Flatten →
/// (Linear → ReLU → [Dropout])* → Linear. The airbench style (CnnStyle.Airbench) has batch norms with a frozen weight,
/// ε 1e-12 and momentum 0.4, and a max pool over the last map into a bias-free Linear whose output is scaled by 1/9.
/// </summary>
sealed class Cnn : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> body;
    readonly double scale = 1;

    public Cnn(int channels, int size, int[] widths, int kernel, int perStage, bool batchNorm, int[] hidden, double dropout, int classes, bool poolFirst = false,
        int whiten = 0, bool gelu = false, bool airbench = false) : base("Cnn")
    {
        var layers = new List<nn.Module<Tensor, Tensor>>();
        nn.Module<Tensor, Tensor> Activation() => gelu ? nn.GELU() : nn.ReLU();
        int c = channels, s = size;
        if (whiten > 0)
        {
            var stem = nn.Conv2d(c, 2 * c * whiten * whiten, whiten);
            stem.weight!.requires_grad_(false);
            layers.Add(stem);
            layers.Add(Activation());
            c = 2 * c * whiten * whiten; s -= whiten - 1;
        }
        foreach (int k in widths)
        {
            for (int i = 0; i < perStage; i++)
            {
                bool last = i == perStage - 1;
                layers.Add(nn.Conv2d(c, k, kernel, padding: kernel / 2, bias: !batchNorm));
                if (poolFirst && i == 0) layers.Add(nn.MaxPool2d(2));
                if (batchNorm)
                {
                    var norm = airbench ? nn.BatchNorm2d(k, eps: 1e-12, momentum: 0.4) : nn.BatchNorm2d(k);
                    if (airbench) norm.weight!.requires_grad_(false);
                    layers.Add(norm);
                }
                layers.Add(Activation());
                if (last && !poolFirst) layers.Add(nn.MaxPool2d(2));
                c = k;
            }
            s /= 2;
        }
        if (airbench) { layers.Add(nn.MaxPool2d(s)); s = 1; scale = 1.0 / 9; }
        layers.Add(nn.Flatten());
        long features = (long)c * s * s;
        foreach (int h in hidden)
        {
            layers.Add(nn.Linear(features, h));
            layers.Add(nn.ReLU());
            if (dropout > 0) layers.Add(nn.Dropout(dropout));
            features = h;
        }
        layers.Add(nn.Linear(features, classes, hasBias: !airbench));
        body = nn.Sequential(layers);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => scale == 1 ? body.forward(x) : body.forward(x) * scale;

    public static Cnn Mnist() => new(1, 28, [32, 64], 5, 1, false, [1024], 0.5, 10);
    public static Cnn Cifar() => new(3, 32, [32, 128, 128], 3, 2, true, [], 0, 10, poolFirst: true, whiten: 2, gelu: true, airbench: true);   // the cifar10-cnn preset's net
}

/// <summary>The issue-6 workloads, written as a TorchSharp user would write them.</summary>
static class Workloads
{
    /// <summary>
    /// One epoch of minibatch SGD over <paramref name="x"/> (shuffled, batches gathered with index_select);
    /// returns the seconds taken and the last step's loss. <paramref name="maxSteps"/> cuts it short for warm-up.
    /// </summary>
    public static (double Seconds, float Loss) MlpEpoch(Tensor x, Tensor y, int[] sizes, int batch, double lr, double momentum, int maxSteps = int.MaxValue)
    {
        using var model = new Mlp(sizes);
        using var sgd = optim.SGD(model.parameters(), lr, momentum);
        long n = x.shape[0];
        float loss = float.NaN;
        var clock = Stopwatch.StartNew();
        using (var order = randperm(n))
        {
            int step = 0;
            for (long start = 0; start < n && step < maxSteps; start += batch, step++)
            {
                using var scope = NewDisposeScope();
                var idx = order.narrow(0, start, Math.Min(batch, n - start));
                var output = F.cross_entropy(model.forward(x.index_select(0, idx)), y.index_select(0, idx));
                sgd.zero_grad();
                output.backward();
                sgd.step();
                if (start + batch >= n || step + 1 == maxSteps) loss = output.item<float>();
            }
        }
        return (clock.Elapsed.TotalSeconds, loss);
    }

    /// <summary>
    /// The classic two-layer CIFAR-10 exercise: batches of <paramref name="batch"/> drawn with replacement,
    /// loss = softmax CE + reg·(‖W1‖² + ‖W2‖²), weights ~ N(0, 1e-4²), biases 0, plain SGD.
    /// </summary>
    public static (double Seconds, float Loss) TwoLayer(Tensor x, Tensor y, int iterations, int batch = 200, int hidden = 100, double reg = 0.25, double lr = 1e-4)
    {
        using var model = new Mlp((int)x.shape[1], hidden, 10);
        using (no_grad())
            foreach (var layer in model.Layers) { layer.weight!.normal_(0, 1e-4); layer.bias!.zero_(); }
        using var sgd = optim.SGD(model.parameters(), lr);
        long n = x.shape[0];
        float loss = float.NaN;
        var clock = Stopwatch.StartNew();
        for (int it = 0; it < iterations; it++)
        {
            using var scope = NewDisposeScope();
            var idx = randint(0, n, [batch]);
            var w1 = model.Layers[0].weight!;
            var w2 = model.Layers[1].weight!;
            var output = F.cross_entropy(model.forward(x.index_select(0, idx)), y.index_select(0, idx))
                + reg * (w1.pow(2).sum() + w2.pow(2).sum());
            sgd.zero_grad();
            output.backward();
            sgd.step();
            if (it == iterations - 1) loss = output.item<float>();
        }
        return (clock.Elapsed.TotalSeconds, loss);
    }

    /// <summary>
    /// float32 GEMM throughput, C = A·B in place (addmm_ with beta 0, so no output allocation is timed),
    /// repeated until one measurement takes at least <paramref name="minSeconds"/>; GFLOP/s per repetition.
    /// </summary>
    public static double[] Gemm(int m, int k, int n, int reps, double minSeconds = 0.2)
    {
        using var a = randn(m, k);
        using var b = randn(k, n);
        using var c = zeros(m, n);
        double Run(int calls)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++) c.addmm_(a, b, beta: 0, alpha: 1);
            return clock.Elapsed.TotalSeconds;
        }
        int calls = 1;
        for (double t = Run(calls); t < minSeconds; t = Run(calls))    // calibration doubles as warm-up
            calls = (int)Math.Min(calls * 8L, Math.Max(calls * 2L, (long)(calls * minSeconds * 1.2 / Math.Max(t, 1e-6))));
        var gflops = new double[reps];
        for (int r = 0; r < reps; r++) gflops[r] = 2.0 * m * n * k * calls / Run(calls) / 1e9;
        return gflops;
    }

    /// <summary>Training samples/s of a CNN: <paramref name="steps"/> SGD-momentum steps on (N, C, H, W) batches, after 3 warm-up steps.</summary>
    public static double CnnTraining(Func<Cnn> create, Tensor x, Tensor y, int batch, int steps)
    {
        using var model = create();
        model.train();
        using var sgd = optim.SGD(model.parameters(), 0.01, 0.9);
        void Step(int b)
        {
            using var scope = NewDisposeScope();
            var loss = F.cross_entropy(model.forward(x.narrow(0, (long)b * batch, batch)), y.narrow(0, (long)b * batch, batch));
            sgd.zero_grad();
            loss.backward();
            sgd.step();
            loss.item<float>();
        }
        for (int b = 0; b < 3; b++) Step(b);
        var clock = Stopwatch.StartNew();
        for (int b = 0; b < steps; b++) Step(3 + b);
        return (double)batch * steps / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Inference samples/s (eval mode, no_grad) over <paramref name="batches"/> batches.</summary>
    /// <summary>Median latency in µs of one-sample inference of a ReLU MLP (eval, no_grad), one dispose scope per call.</summary>
    public static double BatchOneLatency(int[] sizes, int calls)
    {
        var layers = new List<nn.Module<Tensor, Tensor>>();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            layers.Add(nn.Linear(sizes[i], sizes[i + 1]));
            if (i + 2 < sizes.Length) layers.Add(nn.ReLU());
        }
        using var model = nn.Sequential(layers.ToArray());
        model.eval();
        using var _ = no_grad();
        using var x = randn(1, sizes[0]);
        for (int i = 0; i < 200; i++) using (NewDisposeScope()) model.forward(x);
        var times = new double[calls];
        for (int i = 0; i < calls; i++)
        {
            long t = Stopwatch.GetTimestamp();
            using (NewDisposeScope()) model.forward(x);
            times[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }
        Array.Sort(times);
        return times[calls / 2];
    }

    public static double CnnInference(Func<Cnn> create, Tensor x, int batch, int batches)
    {
        using var model = create();
        model.eval();
        using var _ = no_grad();
        long available = x.shape[0] / batch;
        using (NewDisposeScope()) model.forward(x.narrow(0, 0, batch));
        var clock = Stopwatch.StartNew();
        for (int b = 0; b < batches; b++)
            using (NewDisposeScope()) model.forward(x.narrow(0, b % available * batch, batch));
        return (double)batch * batches / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Conv2d forward + input and weight gradients, GFLOP/s counted as 3 × 2·N·K·C·KH·KW·OH·OW.</summary>
    public static double ConvPass(int n, int c, int hw, int k, int kernel, int pad, int calls)
    {
        using var x = randn(n, c, hw, hw).requires_grad_();
        using var w = (randn(k, c, kernel, kernel) * 0.1).detach().requires_grad_();
        int o = hw + 2 * pad - kernel + 1;
        using var up = randn(n, k, o, o);
        double flop = 3 * 2.0 * n * k * c * kernel * kernel * o * o;
        void Pass()
        {
            using var scope = NewDisposeScope();
            x.grad?.zero_(); w.grad?.zero_();
            F.conv2d(x, w, padding: [pad, pad]).backward([up]);
        }
        Pass();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) Pass();
        return flop * calls / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>MaxPool2d 2×2 forward + backward, GB/s of x, y, gy and gx traffic.</summary>
    public static double PoolPass(int n, int c, int hw, int calls)
    {
        using var x = randn(n, c, hw, hw).requires_grad_();
        using var up = randn(n, c, hw / 2, hw / 2);
        double bytes = 4.0 * 2 * (x.numel() + up.numel());
        void Pass()
        {
            using var scope = NewDisposeScope();
            x.grad?.zero_();
            F.max_pool2d(x, [2, 2]).backward([up]);
        }
        Pass();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) Pass();
        return bytes * calls / clock.Elapsed.TotalSeconds / 1e9;
    }
}
