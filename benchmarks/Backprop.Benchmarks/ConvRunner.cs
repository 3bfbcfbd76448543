using System.Diagnostics;
using Backprop.Backends;

namespace Backprop.Benchmarks;

/// <summary>
/// `quick-conv [--runs N] [--threads N] [--only NAME-PREFIX]`: median milliseconds and GFLOP/s of a convolution's forward pass, input gradient
/// and weight gradient (each 2·N·K·C/G·KH·KW·OH·OW flops) at the benchmark shapes (W9) and the mnist-cnn / cifar10-cnn
/// layers, for tuning the kernels.
/// </summary>
public static class ConvRunner
{
    static readonly (string Name, int N, int C, int H, int K, int Kernel, int Pad)[] Shapes =
    [
        ("W9a 64x32x32x32 k64 3x3", 64, 32, 32, 64, 3, 1),
        ("W9b 64x1x28x28 k32 5x5", 64, 1, 28, 32, 5, 2),
        ("mnist-cnn conv2 64x32x14x14 k64 5x5", 64, 32, 14, 64, 5, 2),
        ("cifar conv1 256x3x32x32 k32 3x3", 256, 3, 32, 32, 3, 1),
        ("cifar 256x64x16x16 k128 3x3", 256, 64, 16, 128, 3, 1),
        ("cifar 256x128x8x8 k256 3x3", 256, 128, 8, 256, 3, 1),
        ("cifar 256x32x16x16 k32 3x3", 256, 32, 16, 32, 3, 1),
        ("cifar 256x64x8x8 k64 3x3", 256, 64, 8, 64, 3, 1),
        ("cifar 256x128x4x4 k128 3x3", 256, 128, 4, 128, 3, 1),
        ("cifar 256x256x4x4 k256 3x3", 256, 256, 4, 256, 3, 1),
        // cifar10-cnn's convolutions after its 2×2 stem (32-128-128: the first of each stage pools after it)
        ("airbench 256x24x31x31 k32 3x3", 256, 24, 31, 32, 3, 1),
        ("airbench 256x32x15x15 k32 3x3", 256, 32, 15, 32, 3, 1),
        ("airbench 256x32x15x15 k128 3x3", 256, 32, 15, 128, 3, 1),
        ("airbench 256x128x7x7 k128 3x3", 256, 128, 7, 128, 3, 1),
        ("airbench 256x128x3x3 k128 3x3", 256, 128, 3, 128, 3, 1),
    ];

    public static void Run(string[] args)
    {
        int runs = 7;
        string? only = null;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--runs": runs = int.Parse(args[++i]); break;
                case "--threads": Parallelism.MaxThreads = int.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--layers": Layers(runs); return;
                case "--step": Step(runs, i + 1 < args.Length && args[i + 1] == "cifar-quick"); return;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        var b = Backend.Cpu;
        var rng = new Generator(1);
        foreach (var s in Shapes.Where(s => only is null || s.Name.StartsWith(only, StringComparison.OrdinalIgnoreCase)))
        {
            var g = new Conv2dGeometry(s.N, s.C, s.H, s.H, s.K, s.Kernel, s.Kernel, 1, 1, s.Pad, s.Pad, s.Pad, s.Pad);
            var x = Tensor.Normal([s.N, s.C, s.H, s.H], 0, 1, rng);
            var w = Tensor.Normal([s.K, s.C, s.Kernel, s.Kernel], 0, 1, rng);
            var y = Tensor.Zeros([s.N, s.K, g.OutHeight, g.OutWidth]);
            var gx = Tensor.Zeros(x.Shape);
            var gw = Tensor.Zeros(w.Shape);
            double flops = 2.0 * s.N * s.K * s.C * s.Kernel * s.Kernel * g.OutHeight * g.OutWidth;
            double f = Time(() => b.Conv2d(x, w, null, y, g), runs), i = Time(() => b.Conv2dInputGrad(y, w, gx, g), runs), wg = Time(() => b.Conv2dWeightGrad(x, y, gw, g), runs);
            // The same three passes through autograd, as `bench`'s W9 times them: what the kernels' sum leaves out.
            var xg = x.Detach(); xg.RequiresGrad = true;
            var wg2 = w.Detach(); wg2.RequiresGrad = true;
            double a = Time(() => { xg.Grad = null; wg2.Grad = null; xg.Conv2d(wg2, padding: s.Pad).Backward(y); }, runs);
            Console.WriteLine($"{s.Name,-38} fwd {f * 1e3,7:F2} ms {flops / f / 1e9,6:F1} GF/s | dx {i * 1e3,7:F2} ms {flops / i / 1e9,6:F1} | dW {wg * 1e3,7:F2} ms {flops / wg / 1e9,6:F1} | total {3 * flops / (f + i + wg) / 1e9,6:F1} GF/s | autograd {a * 1e3,7:F2} ms {3 * flops / a / 1e9,6:F1}");
        }
    }

    /// <summary>The memory-bound layers around the convolutions, forward + backward, at a cifar10-cnn-quick activation size.</summary>
    public static void Layers(int runs)
    {
        var rng = new Generator(2);
        var x0 = Tensor.Normal([128, 32, 32, 32], 0, 1, rng);
        var up = Tensor.Normal([128, 32, 32, 32], 0, 1, rng);
        var upPool = Tensor.Normal([128, 32, 16, 16], 0, 1, rng);
        var gamma = Tensor.Ones([32]); gamma.RequiresGrad = true;
        var beta = Tensor.Zeros([32]); beta.RequiresGrad = true;
        var x = x0.Detach(); x.RequiresGrad = true;
        double mb = x.Length * 4 / 1e6;
        void Report(string name, double t) => Console.WriteLine($"{name,-38} {t * 1e3,7:F2} ms  ({mb / 1e3 / t:F1} GB/s of one activation)");
        Report("batch_norm fwd+bwd 128x32x32x32", Time(() => { x.Grad = null; x.BatchNorm(gamma, beta).Backward(up); }, runs));
        Report("relu fwd+bwd", Time(() => { x.Grad = null; x.Relu().Backward(up); }, runs));
        Report("max_pool2d 2x2 fwd+bwd", Time(() => { x.Grad = null; x.MaxPool2d(2).Backward(upPool); }, runs));
        var b = Backend.Cpu;
        var x3 = x0.Reshape(128, 32, 1024);
        Tensor mean = Tensor.Zeros([32]), variance = Tensor.Zeros([32]), y3 = Tensor.Zeros([128, 32, 1024]);
        Report("  backend ChannelMeanVar", Time(() => b.ChannelMeanVar(x3, mean, variance), runs));
        Report("  backend ChannelSums (with dot)", Time(() => b.ChannelSums(x3, x3, mean, variance), runs));
        Report("  backend ChannelAffine", Time(() => b.ChannelAffine(x3, mean, null, null, variance, y3), runs));
        Report("  backend ChannelAffine (z)", Time(() => b.ChannelAffine(x3, mean, x3, mean, variance, y3), runs));
        Report("  allocate 16 MB", Time(() => Tensor.Zeros([128, 32, 1024]), runs));
        using (Autograd.NoGrad())
        {
            Report("batch_norm fwd (no grad)", Time(() => x.BatchNorm(gamma, beta), runs));
            Report("max_pool2d fwd (no grad)", Time(() => x.MaxPool2d(2), runs));
        }
    }

    /// <summary>
    /// Where a training step spends its time: each layer's forward, the backward, the optimizer — mnist-cnn at batch 64,
    /// or (`--step cifar-quick`) the cifar10-cnn presets' network at batch 256.
    /// </summary>
    public static void Step(int runs, bool cifarQuick)
    {
        var g = new Generator(3);
        var model = cifarQuick
            ? Models.Cnn.Create(3, 32, 32, [32, 128, 128], 10, g, kernel: 3, convsPerStage: 2, batchNorm: true, poolFirst: true,
                activation: Models.Activation.Gelu, whiten: 2, style: Models.CnnStyle.Airbench)
            : Models.Cnn.Create(1, 28, 28, [32, 64], 10, g, kernel: 5, hidden: [1024], dropout: 0.5);
        var opt = new Optim.Sgd(model.Parameters(), 0.01, 0.9);
        int batch = cifarQuick ? 256 : 64;
        var x = Tensor.Normal([batch, cifarQuick ? 3072 : 784], 0, 1, g);
        int[] y = [.. Enumerable.Range(0, batch).Select(i => i % 10)];
        for (int i = 0; i < model.Count; i++)
        {
            var input = x;
            using (Autograd.NoGrad()) for (int j = 0; j < i; j++) input = model[j].Forward(input);
            var layer = model[i];
            var inp = input.Detach(); inp.RequiresGrad = i > 0;
            double f = Time(() => layer.Forward(inp), runs);
            Tensor? up = null;
            double fb = Time(() => { var o = layer.Forward(inp); up ??= Tensor.Normal(o.Shape, 0, 1, g); inp.Grad = null; model.ZeroGrad(); if (o.RequiresGrad) o.Backward(up); }, runs);
            Console.WriteLine($"{i,2} {layer.GetType().Name,-12} fwd {f * 1e3,7:F2} ms   fwd+bwd {fb * 1e3,7:F2} ms");
        }
        Console.WriteLine($"   optimizer step {Time(() => opt.Step(), runs) * 1e3,7:F2} ms; whole step {Time(() => { opt.ZeroGrad(); model.Forward(x).CrossEntropy(y).Backward(); opt.Step(); }, runs) * 1e3,7:F2} ms");
    }

    static double Time(Action a, int runs)
    {
        // Tiered compilation optimises a method after some 30 calls and a background delay: a kernel timed from its
        // first calls is measured unoptimised (the first max pooling of mnist-cnn read 10 ms instead of 1.6).
        var warm = Stopwatch.StartNew();
        for (int calls = 0; calls < 40 || warm.Elapsed.TotalSeconds < 0.3; calls++) a();
        var t = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            int calls = 0;
            do { a(); calls++; } while (sw.Elapsed.TotalSeconds < 0.05);
            t[r] = sw.Elapsed.TotalSeconds / calls;
        }
        Array.Sort(t);
        return t[runs / 2];
    }
}
