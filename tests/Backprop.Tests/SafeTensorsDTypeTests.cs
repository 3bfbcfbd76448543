using Backprop.Models;
using Backprop.Serialization;

namespace Backprop.Tests;

/// <summary>safetensors in every dtype PyTorch writes (fixtures from tools/torch_interop.py), and F16/BF16 written back.</summary>
public class SafeTensorsDTypeTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", name);

    [Fact]
    public void Every_pytorch_dtype_reads_as_float_with_its_stored_dtype_reported()
    {
        // PyTorch stored [[-2.5, -1, 0], [0.5, 3, 100]] in each dtype (U8 its absolute value): integers truncate, BOOL is "≠ 0".
        var (tensors, _) = SafeTensors.Load(Fixture("dtypes.safetensors"), null, out var stored);
        double[] floats = [-2.5, -1, 0, 0.5, 3, 100];
        var expected = new Dictionary<string, double[]>
        {
            ["F16"] = floats, ["BF16"] = floats, ["F32"] = floats, ["F64"] = floats,
            ["I64"] = [-2, -1, 0, 0, 3, 100], ["I32"] = [-2, -1, 0, 0, 3, 100], ["I16"] = [-2, -1, 0, 0, 3, 100], ["I8"] = [-2, -1, 0, 0, 3, 100],
            ["U8"] = [2, 1, 0, 0, 3, 100], ["BOOL"] = [1, 1, 0, 1, 1, 1],
        };
        Assert.Equal(expected.Keys.Order(), tensors.Keys.Order());
        foreach (var (name, values) in expected)
        {
            Assert.Equal([2, 3], tensors[name].Shape.ToArray());
            Assert.Equal(values, tensors[name].ToDoubleArray());
            Assert.Equal(name == "F64" ? DType.Float64 : DType.Float32, tensors[name].DType);
            Assert.Equal(name, stored[name] == SafeTensorsDType.Bool ? "BOOL" : stored[name].ToString());
        }
        // a target dtype converts everything
        Assert.All(SafeTensors.Load(Fixture("dtypes.safetensors"), DType.Float64).Tensors.Values, t => Assert.Equal(DType.Float64, t.DType));
    }

    [Theory]
    [InlineData(SafeTensorsDType.F16), InlineData(SafeTensorsDType.BF16), InlineData(SafeTensorsDType.F32), InlineData(SafeTensorsDType.F64)]
    public void Floats_written_in_each_dtype_read_back_rounded_to_nearest_even(SafeTensorsDType storeAs)
    {
        // 1 + 2⁻⁸ is halfway between two bfloat16s (ties to the even 1); 1 + 3·2⁻⁸ rounds up to 1 + 2⁻⁶; 65504 is F16's
        // largest. The BF16 column is what PyTorch 1.13's tensor.bfloat16() gives for these values.
        float[] values = [1f + 1f / 256, 1f + 3f / 256, -0.1f, 65504f, 1e-3f, float.PositiveInfinity];
        var path = Path.Combine(Path.GetTempPath(), $"backprop-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = Tensor.From(values) }, storeAs: storeAs);
            var (back, _) = SafeTensors.Load(path, null, out var stored);
            Assert.Equal(storeAs, stored["x"]);
            float[] expected = storeAs switch
            {
                SafeTensorsDType.F16 => [.. values.Select(v => (float)(Half)v)],
                SafeTensorsDType.BF16 => [1f, 1f + 1f / 64, -0.10009765625f, 65536f, 0.00099945068359375f, float.PositiveInfinity],
                _ => values,
            };
            Assert.Equal(expected, back["x"].ToFloatArray());
            Assert.Equal(8 + HeaderLength(path) + values.Length * (storeAs switch { SafeTensorsDType.F64 => 8, SafeTensorsDType.F32 => 4, _ => 2 }), new FileInfo(path).Length);
        }
        finally { File.Delete(path); }
    }

    static long HeaderLength(string path) { using var f = File.OpenRead(path); var b = new byte[8]; f.ReadExactly(b); return BitConverter.ToInt64(b); }

    [Fact]
    public void Float64_rounds_to_bfloat16_once()
    {
        // 1 + 2⁻⁸ + 2⁻⁴⁰ lies just above a bfloat16 tie: rounded straight it is 1 + 2⁻⁷; through float32 it would first
        // become the tie 1 + 2⁻⁸ and then round to even, 1. Likewise below a tie, and for negative values.
        double above = 1 + Math.Pow(2, -8) + Math.Pow(2, -40), below = 1 + 3 * Math.Pow(2, -8) - Math.Pow(2, -40);
        string path = Path.Combine(Path.GetTempPath(), $"backprop-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = Tensor.From([above, below, -above]) }, storeAs: SafeTensorsDType.BF16);
            Assert.Equal([1 + 1.0 / 128, 1 + 1.0 / 128, -(1 + 1.0 / 128)], SafeTensors.Load(path).Tensors["x"].ToDoubleArray());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_value_beyond_half_precision_is_refused_not_written_as_infinity()
    {
        string path = Path.Combine(Path.GetTempPath(), $"backprop-st-{Guid.NewGuid():N}.safetensors");
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new Dictionary<string, Tensor> { ["running_var"] = Tensor.From([1f, 70000f]) },
            storeAs: SafeTensorsDType.F16));
        Assert.Contains("'running_var' holds 70000 at element 1", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Integer_dtypes_are_not_written()
    {
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.Save(Path.Combine(Path.GetTempPath(), "never.safetensors"),
            new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros([2]) }, storeAs: SafeTensorsDType.I64));
        Assert.Contains("I64", e.Message);
    }

    [Theory]
    [InlineData("mlp_state.safetensors", 1e-5), InlineData("mlp_state_f16.safetensors", 2e-2), InlineData("mlp_state_bf16.safetensors", 1e-1)]
    public void A_pytorch_batchnorm_state_dict_loads_strictly_and_reproduces_pytorchs_outputs(string file, double tolerance)
    {
        // nn.Sequential(Linear(20, 32), BatchNorm1d(32), ReLU(), Dropout(0.2), Linear(32, 10)), num_batches_tracked (I64) included
        var net = Mlp.Create(20, [32], 10, new Generator(0), dropout: 0.2, batchNorm: true);
        var (state, _) = SafeTensors.Load(Fixture(file), null, out var stored);
        Assert.Equal(SafeTensorsDType.I64, stored["1.num_batches_tracked"]);
        net.LoadStateDict(state);   // strict
        net.Eval();
        var torch = SafeTensors.Load(Fixture("outputs.safetensors")).Tensors;
        using var _ = Autograd.NoGrad();
        var y = net.Forward(torch["mlp_input"]).ToFloatArray();
        var expected = torch["mlp_output"].ToFloatArray();
        for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - expected[i]) <= tolerance * (1 + Math.Abs(expected[i])), $"{file}: output {i} is {y[i]}, PyTorch {expected[i]}");
    }
}
