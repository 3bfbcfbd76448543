using Backprop.Nn;
using Backprop.Optim;
using Backprop.Serialization;
using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Modules: naming, modes, state dicts and training end to end.</summary>
public class ModuleTests
{
    static Sequential Mlp(Generator g, DType dtype, params int[] sizes)
    {
        var net = new Sequential();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            net.Add(new Linear(sizes[i], sizes[i + 1], g, dtype: dtype));
            if (i + 2 < sizes.Length) net.Add(new ReLU());
        }
        return net;
    }

    [Fact]
    public void Parameters_have_pytorch_style_dotted_names()
    {
        var net = new Sequential(new Linear(4, 3, new Generator(0)), new ReLU(), new BatchNorm1d(3), new Linear(3, 2, new Generator(1)));
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"], net.NamedParameters().Select(p => p.Name));
        Assert.Equal(["2.running_mean", "2.running_var"], net.NamedBuffers().Select(b => b.Name));
        Assert.Equal(4 * 3 + 3 + 3 + 3 + 3 * 2 + 2, net.ParameterCount());
    }

    [Fact]
    public void Linear_default_init_is_pytorchs_uniform_bound()
    {
        var l = new Linear(100, 50, new Generator(0));
        double bound = 1 / Math.Sqrt(100);
        Assert.All(l.Weight.ToDoubleArray(), w => Assert.InRange(w, -bound, bound));
        var n = new Linear(100, 50, new Generator(0), std: 1e-4);
        Assert.All(n.Bias!.ToDoubleArray(), b => Assert.Equal(0, b));
        Assert.InRange(Math.Sqrt(n.Weight.Pow(2).Mean().Item()), 0.9e-4, 1.1e-4);
    }

    [Fact]
    public void Train_and_eval_switch_every_submodule()
    {
        var bn = new BatchNorm1d(2);
        var net = new Sequential(new Linear(2, 2, new Generator(0)), bn);
        net.Eval();
        Assert.False(bn.Training);
        net.Train();
        Assert.True(bn.Training);
    }

    [Fact]
    public void BatchNorm_tracks_running_statistics_and_uses_them_in_eval()
    {
        var bn = new BatchNorm1d(2, momentum: 0.5, dtype: DType.Float64);
        var x = Tensor.From(new double[,] { { 1, 10 }, { 3, 20 }, { 5, 30 } });
        bn.Forward(x);
        AllClose(Tensor.From([0.5 * 3, 0.5 * 20]), bn.RunningMean, 1e-12);
        AllClose(Tensor.From([0.5 + 0.5 * 4, 0.5 + 0.5 * 100]), bn.RunningVar, 1e-12);   // unbiased batch variance
        bn.Eval();
        var y = bn.Forward(Tensor.From(new double[,] { { 1.5, 10 } }));
        Close(0, y[0, 0], 1e-6); Close(0, y[0, 1], 1e-6);
    }

    [Fact]
    public void A_saved_model_loads_back_and_gives_identical_outputs()
    {
        var g = new Generator(3);
        var net = new Sequential(new Linear(5, 8, g), new ReLU(), new BatchNorm1d(8), new Linear(8, 3, g));
        net.Forward(Tensor.Normal([10, 5], 0, 1, g));   // move the running statistics off their defaults
        net.Eval();
        var x = Tensor.Normal([4, 5], 0, 1, g);
        var expected = net.Forward(x);

        string path = Path.Combine(Path.GetTempPath(), $"bp-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, net.StateDict(), new Dictionary<string, string> { ["format"] = "pt" });
            var copy = new Sequential(new Linear(5, 8, new Generator(99)), new ReLU(), new BatchNorm1d(8), new Linear(8, 3, new Generator(98)));
            var (state, meta) = SafeTensors.Load(path);
            copy.LoadStateDict(state);
            copy.Eval();
            Assert.Equal(expected.ToFloatArray(), copy.Forward(x).ToFloatArray());
            Assert.Equal("pt", meta["format"]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Safetensors_rejects_a_corrupt_header_clearly()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bp-{Guid.NewGuid():N}.safetensors");
        try
        {
            File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, (byte)'{', (byte)'}']);
            var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
            Assert.Contains("header length", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Load_state_dict_names_missing_and_mismatched_entries()
    {
        var net = new Sequential(new Linear(2, 3, new Generator(0)));
        var e = Assert.Throws<ArgumentException>(() => net.LoadStateDict(new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Zeros([3, 2]) }));
        Assert.Contains("0.bias", e.Message);
        e = Assert.Throws<ArgumentException>(() => net.LoadStateDict(new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Zeros([2, 2]), ["0.bias"] = Tensor.Zeros([3]) }));
        Assert.Contains("'0.weight' has shape (2,2)", e.Message);
    }

    /// <summary>Three interleaved spiral arms (the classic non-linear toy problem), 100 points each.</summary>
    static (Tensor X, int[] Y) Spiral(DType dtype)
    {
        var g = new Generator(0);
        const int perClass = 100, classes = 3;
        var x = Tensor.Zeros([perClass * classes, 2], dtype);
        var y = new int[perClass * classes];
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
            {
                double r = i / (double)(perClass - 1), t = c * 4 + 4.0 * i / perClass + 0.2 * g.NextNormal();
                int k = c * perClass + i;
                x[k, 0] = r * Math.Sin(t); x[k, 1] = r * Math.Cos(t); y[k] = c;
            }
        return (x, y);
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Three_layer_mlp_learns_a_spiral(DType dtype)
    {
        var (x, y) = Spiral(dtype);
        var net = Mlp(new Generator(1), dtype, 2, 64, 64, 3);
        var opt = new Adam(net.Parameters(), learningRate: 0.01);
        for (int step = 0; step < 400; step++)
        {
            opt.ZeroGrad();
            var loss = net.Forward(x).CrossEntropy(y);
            loss.Backward();
            opt.Step();
        }
        using var _ = Autograd.NoGrad();
        var pred = net.Forward(x).ArgMax(1);
        double accuracy = pred.Zip(y).Count(p => p.First == p.Second) / (double)y.Length;
        Assert.True(accuracy > 0.95, $"{dtype}: training accuracy {accuracy:P1}");
    }
}
