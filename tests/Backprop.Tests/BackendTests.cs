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

    public static TheoryData<string> KernelCases() => new(KernelOracle.Cases.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Simd_and_reference_agree_within_float32_rounding(string name)
    {
        double error = KernelOracle.Compare(KernelOracle.Cases.Single(c => c.Name == name));
        Assert.True(error <= KernelOracle.Tolerance, $"{name}: SIMD and reference differ by {error:E2} of the tensor's scale");
    }

    public static TheoryData<string> OptimizerCases() => new(KernelOracle.OptimizerCases);

    [Theory]
    [MemberData(nameof(OptimizerCases))]
    public void Fused_optimizer_updates_follow_their_formulas(string name)
    {
        double error = KernelOracle.CompareOptimizer(name);
        Assert.True(error <= KernelOracle.Tolerance, $"{name}: the fused update differs from the formula by {error:E2} of the largest change");
    }

    [Fact]
    public void The_float32_oracle_catches_a_kernel_off_by_one_rounding_step_in_a_thousand()
    {
        var gelu = KernelOracle.Cases.Single(c => c.Name == "gelu");
        double error = KernelOracle.Compare(gelu, new SkewedGelu(Backend.Cpu));
        Assert.True(error > KernelOracle.Tolerance, $"a GELU 1.001 times too large passed with {error:E2}");
    }

    // The SIMD backend with its GELU forward scaled by 1.001.
    sealed class SkewedGelu(IBackend inner) : CountingBackend(inner)
    {
        public override void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0)
        {
            base.Unary(op, x, y, alpha, beta);
            if (op == UnaryOp.Gelu) for (int i = 0; i < y.Length; i++) y.SetFlat(i, y.GetFlat(i) * 1.001);
        }
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
    class CountingBackend(IBackend inner) : IBackend
    {
        public int Calls;
        public string Name => "counting " + inner.Name;
        public void Copy(Tensor source, Tensor destination) { Calls++; inner.Copy(source, destination); }
        public virtual void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0) { Calls++; inner.Unary(op, x, y, alpha, beta); }
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
