using System.Runtime.CompilerServices;

namespace Backprop.Tests;

/// <summary>
/// Large storage arrays are handed out again only once the GC has proved that nothing — no tensor, view or span —
/// reaches them; a tensor a user holds never changes.
/// </summary>
[Collection("quiet")]   // alone: another test's full collection between dropping an array and asking for one would trim the pool
public class LargeArraysTests
{
    const int Large = 1 << 19;   // 2 MB of float32: recycled

    static void CollectAll()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
    }

    // Allocates and drops many tensors of the same size, each filled with a value of its own.
    static void Churn(int length, int count = 8)
    {
        for (int i = 0; i < count; i++)
        {
            var t = Tensor.Uninitialized([length], DType.Float32);
            t.Span<float>().Fill(-1000 - i);
            if (i % 2 == 1) CollectAll();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static WeakReference DropOne(int length) => new(Tensor.Uninitialized([length], DType.Float32).storage.Data, trackResurrection: true);

    [Fact]
    public void An_unreachable_array_is_handed_out_again_and_zeros_are_zeros()
    {
        // Identity through a weak reference that follows the array through its finalization (holding the array itself
        // would keep it out of the pool); the second full collection that finds it dead puts it in the pool.
        var weak = DropOne(Large + 3);
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
        bool seen = false;
        for (int i = 0; i < 4 && !seen; i++)
        {
            var t = Tensor.Zeros([Large + 3]);
            seen = ReferenceEquals(t.storage.Data, weak.Target);
            Assert.All(t.ToDoubleArray(), v => Assert.Equal(0.0, v));
        }
        Assert.True(seen, "a dropped 2 MB array was not reused");
    }

    [Fact]
    public void Arrays_from_the_large_object_threshold_up_are_recycled_when_it_is_below_1_MB()
    {
        // This test host keeps the GC's default large-object threshold, 85,000 bytes, as most applications do: 200 KB
        // arrays land in the large-object heap, so the pool takes them (with a threshold raised past 1 MB, as the
        // `backprop` command's, it starts at 1 MB).
        Assert.Equal(85_000, (long)GC.GetConfigurationVariables()["LOHThreshold"]);
        Assert.Equal(85_000 - 24, LargeArrays.MinBytes);   // data bytes: the GC counts the array's header too
        Assert.Null(LargeArrays.Rent<float>((85_000 - 24) / 4 - 1));
        int length = 50_000;   // 200 KB
        var weak = DropOne(length);
        CollectAll();
        bool seen = false;
        for (int i = 0; i < 4 && !seen; i++) seen = ReferenceEquals(Tensor.Zeros([length]).storage.Data, weak.Target);
        Assert.True(seen, "a dropped 200 KB array was not reused");
    }

    [Fact]
    public void A_first_gradient_in_recycled_memory_is_exact()
    {
        // A leaf's first gradient buffer is a pending zero in memory that may have been another tensor's (NaN here):
        // both the copy of an incoming gradient and an op adding into the buffer (the L2 penalty) must see zeros.
        for (int round = 0; round < 3; round++)
        {
            Poison(Large);
            CollectAll();
            var w = Tensor.Full([Large], 0.5f); w.RequiresGrad = true;
            (w * 3f).Sum().Backward();
            Assert.All(w.Grad!.ToDoubleArray(), v => Assert.Equal(3.0, v));
            Poison(Large);
            CollectAll();
            var u = Tensor.Full([Large], 0.5f); u.RequiresGrad = true;
            Ops.L2Penalty(1.0, u).Backward();   // ∂(Σu²)/∂u = 2u
            Assert.All(u.Grad!.ToDoubleArray(), v => Assert.Equal(1.0, v));
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        static void Poison(int length)
        {
            for (int i = 0; i < 4; i++) Tensor.Uninitialized([length], DType.Float32).Span<float>().Fill(float.NaN);
        }
    }

    [Fact]
    public void A_held_tensor_keeps_its_values_while_others_of_its_size_come_and_go()
    {
        var g = new Generator(3);
        var kept = Tensor.Normal([Large], 0, 1, g);
        var copy = kept.ToDoubleArray();
        Churn(Large);
        Assert.Equal(copy, kept.ToDoubleArray());
    }

    [Fact]
    public void A_view_keeps_the_memory_of_a_dropped_tensor()
    {
        var view = MakeView();
        var expected = view.ToDoubleArray();
        Churn(2 * Large);
        Assert.Equal(expected, view.ToDoubleArray());

        [MethodImpl(MethodImplOptions.NoInlining)]
        static Tensor MakeView() => Tensor.Normal([2, Large], 0, 1, new Generator(4)).Narrow(0, 1, 1);
    }

    [Fact]
    public void A_span_alone_keeps_the_memory_alive()
    {
        var span = SpanOfDroppedTensor();
        float first = span[0], last = span[^1];
        Churn(Large + 7);
        Assert.Equal(first, span[0]);
        Assert.Equal(last, span[^1]);

        [MethodImpl(MethodImplOptions.NoInlining)]
        static Span<float> SpanOfDroppedTensor() => Tensor.Normal([Large + 7], 0, 1, new Generator(5)).AsFloatSpan();
    }

    [Fact]
    public void Training_a_conv_net_gives_the_same_numbers_with_and_without_reuse_between_steps()
    {
        // Same seed, same steps: once in a fresh run of steps, once after other work has filled the pool.
        static double[] Run()
        {
            var g = new Generator(6);
            var model = Models.Cnn.Create(1, 28, 28, [32], 10, g, kernel: 5);
            var opt = new Optim.Sgd(model.Parameters(), 0.05, 0.9);
            var x = Tensor.Normal([32, 784], 0, 1, g);
            var y = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
            for (int step = 0; step < 3; step++)
            {
                opt.ZeroGrad();
                model.Forward(x).CrossEntropy(y).Backward();
                opt.Step();
            }
            return model.Parameters().SelectMany(p => p.ToDoubleArray()).ToArray();
        }
        var first = Run();
        Churn(32 * 32 * 28 * 28);
        Assert.Equal(first, Run());
    }
}
