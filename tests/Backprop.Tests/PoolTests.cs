using Backprop.Models;
using Backprop.Nn;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>Recycling step storage changes nothing numerically and leaves steady-state steps (almost) allocation-free.</summary>
[Collection("serial")]   // allocation counts: no other test may crowd the thread pool the GEMM helpers are queued on
public class PoolTests
{
    static (Sequential Model, Sgd Opt, Tensor X, int[] Y) Setup(int[] hidden, int batch, double momentum)
    {
        var g = new Generator(17);
        var model = Mlp.Create(784, hidden, 10, g);
        var opt = new Sgd(model.Parameters(), 0.05, momentum);
        var x = Tensor.Uniform([batch * 8, 784], 0, 1, g);
        var y = Enumerable.Range(0, batch * 8).Select(i => i % 10).ToArray();
        return (model, opt, x, y);
    }

    static void Step(Module model, Optimizer opt, Tensor x, int[] y)
    {
        opt.ZeroGrad();
        model.Forward(x).CrossEntropy(y).Backward();
        opt.Step();
    }

    [Fact]
    public void Training_inside_pool_scopes_matches_training_without_them_bit_for_bit()
    {
        var (a, oa, x, y) = Setup([32, 16], 16, 0.9);
        var (b, ob, _, _) = Setup([32, 16], 16, 0.9);
        var pool = new TensorPool();
        for (int step = 0; step < 8; step++)
        {
            var xb = x.SliceRows(step * 16, 16);
            var yb = y.AsSpan(step * 16, 16).ToArray();
            Step(a, oa, xb, yb);
            using (pool.Enter()) Step(b, ob, x.SliceRows(step * 16, 16), yb);
        }
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.True(pa.ToFloatArray().SequenceEqual(pb.ToFloatArray()), name);
    }

    [Theory]
    [InlineData(new[] { 50 }, 16, 0.0)]          // W1's shape: 784-50-10, batch 16, plain SGD
    [InlineData(new[] { 1024, 1024 }, 128, 0.9)] // W2's shape: 784-1024-1024-10, batch 128, momentum
    public void A_steady_state_step_allocates_under_a_kilobyte(int[] hidden, int batch, double momentum)
    {
        var (model, opt, _, _) = Setup(hidden, batch, momentum);
        var g = new Generator(4);
        var x = Tensor.Uniform([batch * 100, 784], 0, 1, g);
        var y = Enumerable.Range(0, batch * 100).Select(i => i % 10).ToArray();
        var loader = new Data.DataLoader(x, y, batch, shuffle: true, generator: g);
        var pool = new TensorPool();
        long before = 0;
        int measured = 0, step = 0;
        using var e = loader.GetEnumerator();   // one epoch; its permutation is drawn before measuring
        while (true)
        {
            if (step++ == 10) before = GC.GetAllocatedBytesForCurrentThread();   // after warm-up: pools and optimizer state exist
            using var scope = pool.Enter();
            if (!e.MoveNext()) break;
            Step(model, opt, e.Current.X, e.Current.Y);
            if (step > 10) measured++;
        }
        double perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)measured;
        Assert.True(perStep < 1024, $"{perStep:F0} bytes per step");
    }

    [Fact]
    public void Modules_cannot_be_created_inside_a_pool_scope()
    {
        using var scope = new TensorPool().Enter();
        Assert.Throws<InvalidOperationException>(() => new Linear(2, 2, new Generator(0)));
    }
}

/// <summary>Tests that must run alone (no other test class in parallel).</summary>
[CollectionDefinition("serial", DisableParallelization = true)]
public sealed class SerialCollection;
