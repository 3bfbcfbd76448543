using Backprop.Backends;
using Backprop.Data;
using Backprop.Diagnostics;
using Backprop.Models;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Tests;

/// <summary>
/// The backend seam: the scalar float64 reference backend runs the whole gradient-check table and a real training
/// run, and the SIMD backend agrees with it within float rounding on every op.
/// </summary>
public class BackendTests
{
    public static TheoryData<string> CaseNames() => GradCheckTests.CaseNames();

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void The_gradient_check_table_passes_through_the_reference_backend(string name)
    {
        var counting = new CountingBackend(Backend.Reference);
        using var _ = Backend.Use(counting);
        var c = Helpers.AllCases.Single(x => x.Name == name);
        foreach (var e in GradCheckSuite.Run(c))
            Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"{name} on the reference backend: input '{e.Tensor}' max relative error {e.MaxRelError:E2}");
        Assert.True(counting.Calls > 0, $"{name}: no op reached the backend");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Simd_and_reference_agree_on_every_row_in_float64(string name)
    {
        var c = Helpers.AllCases.Single(x => x.Name == name);
        var (cpuOut, cpuGrads) = Evaluate(c, Backend.Cpu);
        var (refOut, refGrads) = Evaluate(c, Backend.Reference);
        Helpers.AllClose(refOut, cpuOut, 1e-12, $"{name} output");
        for (int i = 0; i < cpuGrads.Length; i++) Helpers.AllClose(refGrads[i], cpuGrads[i], 1e-11, $"{name} gradient {i}");
    }

    static (Tensor Output, Tensor[] Grads) Evaluate(GradCheckCase c, IBackend backend)
    {
        using var _ = Backend.Use(backend);
        var p = c.Build(new Generator(1234));
        var y = p.Function();
        y.Backward(Tensor.Normal(y.Shape, 0, 1, new Generator(99), DType.Float64));
        return (y.Detach().Clone(), [.. p.Inputs.Select(i => i.Tensor.Grad ?? Tensor.ZerosLike(i.Tensor))]);
    }

    // Shapes past the SIMD widths and the GEMM's blocking, odd sizes for the remainders, strided and broadcast operands.
    public static TheoryData<string> Float32Ops() => new(Float32Cases.Keys);

    static readonly Dictionary<string, Func<Tensor, Tensor, Tensor>> Float32Cases = new()
    {
        ["add_broadcast"] = (a, b) => a + b.Sum(1),
        ["sub_mul_div"] = (a, b) => (a - b.Sum(1, keepDim: true).T()) * a / (a.Abs() + 1.0),
        ["unary"] = (a, _) => a.Exp().Log() + (a.Abs() + 0.1).Sqrt() + a.Sin() + a.Cos() + a.Tanh() + a.Sigmoid() + a.Relu() + a.Abs().Pow(1.5) + a.Clamp(-0.3, 0.4),
        ["maximum_where"] = (a, _) => a.Maximum(a.T().T() * 0.5) + Ops.Where(a.Relu(), a, a * 2.0),
        ["reductions"] = (a, _) => a.Sum(1) + a.Mean(1) + a.Max(1) + a.Min(1) + a.Sum() ,
        ["softmax"] = (a, _) => a.Softmax(0) + a.LogSoftmax(1),
        ["matmul"] = (a, b) => a.MatMul(b) + a.MatMul(b.T().Contiguous(), transposeB: true),
        ["matmul_strided"] = (a, b) => b.T().MatMul(a.T()).T(),
        ["index_select_gather"] = (a, _) => a.IndexSelect([3, 0, 66, 3]).Sum(0) + a.Gather(Enumerable.Range(0, 67).Select(i => i % 45).ToArray()).Sum(),
        ["cross_entropy"] = (a, _) => a.CrossEntropy(Enumerable.Range(0, 67).Select(i => i * 7 % 45).ToArray()) + a.BceWithLogits(a.Sigmoid().Detach()),
    };

    [Theory]
    [MemberData(nameof(Float32Ops))]
    public void Simd_and_reference_agree_within_float32_rounding(string name)
    {
        Tensor Run(IBackend backend)
        {
            using var _ = Backend.Use(backend);
            var g = new Generator(7);
            var a = GradCheckSuite.Leaf(Tensor.Normal([67, 45], 0, 1, g));
            var b = GradCheckSuite.Leaf(Tensor.Normal([45, 33], 0, 1, g));
            var y = Float32Cases[name](a, b);
            y.Backward(Tensor.Normal(y.Shape, 0, 1, new Generator(8)));
            return Ops.Cat([y.Detach().Reshape(-1), a.Grad!.Reshape(-1), (b.Grad ?? Tensor.Zeros([1])).Reshape(-1)]);
        }
        Helpers.AllClose(Run(Backend.Reference), Run(Backend.Cpu), 2e-4, name);   // float32 sums of up to 67 terms
    }

    [Fact]
    public void Two_epochs_of_mnist_train_through_the_reference_backend()
    {
        var data = new DatasetStore().Mnist(null);
        var pre = Preprocessor.Fit(data.Train, Normalization.Scale);
        var train = data.Train;
        var (x, y) = (pre.Apply(train), train.LabelsAsInts());
        var (tx, ty) = (pre.Apply(data.Test), data.Test.LabelsAsInts());
        double Accuracy(IBackend backend)
        {
            var counting = new CountingBackend(backend);
            using var _ = Backend.Use(counting);
            var g = new Generator(0);
            var model = Mlp.Create(784, [50], 10, g);
            var trainer = new Trainer(model, new Sgd(model.Parameters(), 0.1), (o, t) => o.CrossEntropy(t));
            trainer.Fit(epoch => new DataLoader(x, y, 16, shuffle: true, generator: g), epochs: 2);
            var acc = Trainer.Evaluate(model, new DataLoader(tx, ty, 1000), 10).Accuracy;
            Assert.True(counting.Calls > 10_000);
            return acc;
        }
        double reference = Accuracy(Backend.Reference), simd = Accuracy(Backend.Cpu);
        Assert.True(reference > 0.90, $"reference backend: {reference:P2} test accuracy after 2 epochs");
        Assert.True(Math.Abs(reference - simd) < 0.01, $"reference {reference:P2} vs SIMD {simd:P2}");
    }

    [Fact]
    public void The_backend_choice_flows_across_await_and_is_restored()
    {
        Assert.Same(Backend.Cpu, Backend.Current);
        var scope = Backend.Use(Backend.Reference);
        Assert.Same(Backend.Reference, Backend.Current);
        scope.Dispose();
        scope.Dispose();
        Assert.Same(Backend.Cpu, Backend.Current);
    }

    /// <summary>Forwards to another backend, counting the calls: shows that ops went through the seam.</summary>
    sealed class CountingBackend(IBackend inner) : IBackend
    {
        public int Calls;
        public string Name => "counting " + inner.Name;
        public void Copy(Tensor source, Tensor destination) { Calls++; inner.Copy(source, destination); }
        public void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0) { Calls++; inner.Unary(op, x, y, alpha, beta); }
        public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, double alpha = 0) { Calls++; inner.Binary(op, a, b, y, alpha); }
        public void Axpy(double alpha, Tensor x, Tensor y) { Calls++; inner.Axpy(alpha, x, y); }
        public double Dot(Tensor a, Tensor b) { Calls++; return inner.Dot(a, b); }
        public double SumAll(Tensor x) { Calls++; return inner.SumAll(x); }
        public void Sum(Tensor x, int axis, Tensor y) { Calls++; inner.Sum(x, axis, y); }
        public void Max(Tensor x, int axis, Tensor values, int[] indices) { Calls++; inner.Max(x, axis, values, indices); }
        public void SoftmaxRows(Tensor x, Tensor probs, Tensor? logSumExp) { Calls++; inner.SoftmaxRows(x, probs, logSumExp); }
        public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, bool accumulate) { Calls++; inner.MatMul(a, transposeA, b, transposeB, c, accumulate); }
        public void IndexSelect(Tensor x, ReadOnlySpan<int> rows, Tensor y) { Calls++; inner.IndexSelect(x, rows, y); }
        public void IndexAdd(Tensor source, ReadOnlySpan<int> rows, Tensor target) { Calls++; inner.IndexAdd(source, rows, target); }
        public void AddAt(double value, ReadOnlySpan<int> positions, Tensor target) { Calls++; inner.AddAt(value, positions, target); }
        public void Where(Tensor condition, Tensor a, Tensor b, Tensor y) { Calls++; inner.Where(condition, a, b, y); }
        public void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g) { Calls++; inner.Conv2d(x, weight, bias, y, g); }
        public void Conv2dInputGrad(Tensor gy, Tensor weight, Tensor gx, in Conv2dGeometry g) { Calls++; inner.Conv2dInputGrad(gy, weight, gx, g); }
        public void Conv2dWeightGrad(Tensor x, Tensor gy, Tensor gw, in Conv2dGeometry g) { Calls++; inner.Conv2dWeightGrad(x, gy, gw, g); }
        public void MaxPool2d(Tensor x, Tensor y, int[] indices, in Pool2dGeometry g) { Calls++; inner.MaxPool2d(x, y, indices, g); }
        public void MaxPool2dBackward(Tensor gy, int[] indices, Tensor gx, in Pool2dGeometry g) { Calls++; inner.MaxPool2dBackward(gy, indices, gx, g); }
        public void AvgPool2d(Tensor x, Tensor y, in Pool2dGeometry g) { Calls++; inner.AvgPool2d(x, y, g); }
        public void AvgPool2dBackward(Tensor gy, Tensor gx, in Pool2dGeometry g) { Calls++; inner.AvgPool2dBackward(gy, gx, g); }
        public void ChannelMeanVar(Tensor x, Tensor mean, Tensor variance) { Calls++; inner.ChannelMeanVar(x, mean, variance); }
        public void ChannelSums(Tensor a, Tensor? b, Tensor sumA, Tensor? sumAB) { Calls++; inner.ChannelSums(a, b, sumA, sumAB); }
        public void ChannelAffine(Tensor x, Tensor scale, Tensor? z, Tensor? zScale, Tensor shift, Tensor y) { Calls++; inner.ChannelAffine(x, scale, z, zScale, shift, y); }
    }
}
