using BenchmarkDotNet.Attributes;

namespace Backprop.Benchmarks;

/// <summary>
/// The non-GEMM pieces of a training step, forward and backward through autograd, each inside a TensorPool scope
/// as the Trainer runs them: fused softmax–cross-entropy, fused Linear (+ bias), the ReLU gate, and an elementwise
/// chain (σ(x)·y + z), at the W1/W2 batch shapes.
/// </summary>
[MemoryDiagnoser]
public class OpBenchmarks
{
    Tensor logits = null!, x = null!, w = null!, b = null!, y = null!, z = null!;
    int[] labels = [];

    [Params(16, 128)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var g = new Generator(1);
        logits = Leaf(Tensor.Normal([Batch, 10], 0, 1, g));
        labels = Enumerable.Range(0, Batch).Select(i => i % 10).ToArray();
        x = Leaf(Tensor.Normal([Batch, 1024], 0, 1, g));
        w = Leaf(Tensor.Normal([1024, 1024], 0, 0.03, g));
        b = Leaf(Tensor.Zeros([1024]));
        y = Tensor.Normal([Batch, 1024], 0, 1, g);
        z = Tensor.Normal([Batch, 1024], 0, 1, g);
    }

    static Tensor Leaf(Tensor t) { t.RequiresGrad = true; return t; }

    [Benchmark]
    public double SoftmaxCrossEntropy()
    {
        var loss = logits.CrossEntropy(labels);
        loss.Backward();
        return loss.Item();
    }

    [Benchmark]
    public double LinearRelu()
    {
        var h = x.Linear(w, b).Relu();
        h.Backward(y);
        return h.Length;
    }

    [Benchmark]
    public double ElementwiseChain()
    {
        var o = x.Sigmoid() * y + z;
        o.Backward(y);
        return o.Length;
    }
}
