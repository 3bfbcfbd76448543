using Backprop.Data;
using Backprop.Models;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Tests;

/// <summary>A tensor a user holds never changes behind their back, however long they keep it and however training goes on.</summary>
public class MemoryTests
{
    sealed record Kept(Tensor Loss, Tensor Logits, Tensor Copied, Tensor Detached, float[] LossCopy, float[] LogitsCopy);

    static Kept Keep(Tensor logits, Tensor loss) =>
        new(loss, logits, logits.Detach().Clone(), logits.Detach(), loss.ToFloatArray(), logits.ToFloatArray());

    static void AssertUnchanged(List<Kept> kept)
    {
        Assert.Equal(100, kept.Count);
        for (int i = 0; i < kept.Count; i++)
        {
            var k = kept[i];
            Assert.Equal(k.LossCopy, k.Loss.ToFloatArray());
            Assert.Equal(k.LogitsCopy, k.Logits.ToFloatArray());
            Assert.Equal(k.LogitsCopy, k.Copied.ToFloatArray());
            Assert.Equal(k.LogitsCopy, k.Detached.ToFloatArray());
            Assert.Equal([16, 10], k.Logits.Shape.ToArray());
        }
    }

    static (Sequential Model, Sgd Optimizer, DataLoader Loader) Setup()
    {
        var g = new Generator(11);
        var model = new Sequential(new Linear(784, 50, g), new ReLU(), new Linear(50, 10, g));
        var x = Tensor.Uniform([1600, 784], 0, 1, g);
        var y = Enumerable.Range(0, 1600).Select(i => i % 10).ToArray();
        return (model, new Sgd(model.Parameters(), 0.1, momentum: 0.9), new DataLoader(x, y, 16, shuffle: true, generator: g));
    }

    [Fact]
    public void Loss_logits_clones_and_detached_tensors_from_100_trainer_steps_keep_their_values()
    {
        var (model, optimizer, loader) = Setup();
        var kept = new List<Kept>();
        var trainer = new Trainer(model, optimizer, (logits, y) =>
        {
            var loss = logits.CrossEntropy(y);
            kept.Add(Keep(logits, loss));
            return loss;
        });
        trainer.RunEpoch(1, loader);
        AssertUnchanged(kept);
    }

    [Fact]
    public void Loss_logits_clones_and_detached_tensors_from_100_plain_loop_steps_keep_their_values()
    {
        var (model, optimizer, loader) = Setup();
        var kept = new List<Kept>();
        foreach (var (x, y) in loader)
        {
            optimizer.ZeroGrad();
            var logits = model.Forward(x);
            var loss = logits.CrossEntropy(y);
            kept.Add(Keep(logits, loss));
            loss.Backward();
            optimizer.Step();
        }
        AssertUnchanged(kept);
    }

    [Fact]
    public void A_second_backward_through_a_freed_graph_throws_and_retain_graph_allows_it()
    {
        var w = Tensor.From([1.0, 2.0]); w.RequiresGrad = true;
        var loss = (w * w).Sum();
        loss.Backward(retainGraph: true);
        loss.Backward();
        Assert.Equal([4.0, 8.0], w.Grad!.ToDoubleArray());   // two passes accumulate 2w twice
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("second time", e.Message);
    }

    [Fact]
    public void Modifying_a_tensor_saved_for_backward_in_place_is_detected_and_names_the_op()
    {
        var x = Tensor.From([1.0, -2.0, 3.0]); x.RequiresGrad = true;
        var h = x * 2.0;
        var y = h.Sigmoid();       // saves its output
        var loss = (y * y).Sum();  // saves y
        y.Detach().Fill(0.5);      // a view of y: same memory, same version counter
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("modified by an in-place operation", e.Message);
        Assert.Contains("mul", e.Message);
    }

    [Fact]
    public void Autograd_grad_returns_gradients_without_touching_any_grad()
    {
        var x = Tensor.From([1.0, 2.0, 3.0]); x.RequiresGrad = true;
        var w = Tensor.From([0.5, -1.0, 2.0]); w.RequiresGrad = true;
        var h = x * w;
        var loss = (h * h).Sum();
        var grads = Autograd.Grad([loss], [x, h]);
        Assert.Null(x.Grad);
        Assert.Null(w.Grad);
        Assert.Equal([2 * 0.25 * 1, 2 * 1.0 * 2, 2 * 4.0 * 3], grads[0]!.ToDoubleArray());   // 2 w² x
        Assert.Equal([2 * 0.5, 2 * -2.0, 2 * 6.0], grads[1]!.ToDoubleArray());               // 2h
        var unused = Tensor.From([1.0]); unused.RequiresGrad = true;
        var l2 = (x * x).Sum();
        Assert.Throws<InvalidOperationException>(() => Autograd.Grad([l2], [unused], retainGraph: true));
        Assert.Null(Autograd.Grad([l2], [unused], allowUnused: true)[0]);
    }

    [Fact]
    public async Task NoGrad_flows_across_await_and_leaves_the_starting_thread_recording()
    {
        var w = Tensor.From([1.0]); w.RequiresGrad = true;
        async Task<Tensor> Inside()
        {
            using var _ = Autograd.NoGrad();
            await Task.Yield();
            await Task.Delay(1);
            return w * 2.0;   // after the await, possibly on another thread: still no-grad
        }
        var pending = Inside();
        Assert.True(Autograd.IsEnabled);   // the caller's context is untouched while Inside is suspended
        var y = await pending;
        Assert.False(y.RequiresGrad);
        Assert.True(Autograd.IsEnabled);
    }

    sealed class RecordingProbe : Function
    {
        public bool RecordsInBackward, RecordsUnderEnableGrad, RecordsAfterEnableGrad, RecordsOnAWorker;
        public override string Name => "probe";
        protected override Tensor Forward(Tensor[] inputs) => inputs[0] * 1.0;
        protected override Tensor?[] Backward(Tensor g)
        {
            RecordsInBackward = Autograd.IsEnabled;
            using (Autograd.EnableGrad())
            {
                var w = Tensor.From([1.0]); w.RequiresGrad = true;
                RecordsUnderEnableGrad = Autograd.IsEnabled && (w * 2.0).RequiresGrad;
            }
            RecordsAfterEnableGrad = Autograd.IsEnabled;
            var v = Tensor.From([1.0]); v.RequiresGrad = true;
            RecordsOnAWorker = Task.Run(() => (v * 2.0).RequiresGrad).Result;   // no-grad flows to work started here
            return [g];
        }
    }

    [Fact]
    public void A_backward_pass_records_nothing_unless_a_custom_backward_asks_with_enable_grad()
    {
        var x = Tensor.From([1.0, 2.0]); x.RequiresGrad = true;
        var probe = new RecordingProbe();
        probe.Apply(x).Sum().Backward();
        Assert.False(probe.RecordsInBackward);
        Assert.True(probe.RecordsUnderEnableGrad);
        Assert.False(probe.RecordsAfterEnableGrad);
        Assert.False(probe.RecordsOnAWorker);
        Assert.True(Autograd.IsEnabled);
        Assert.Equal([1.0, 1.0], x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void Disposing_a_no_grad_scope_twice_restores_the_state_once()
    {
        var outer = Autograd.NoGrad();
        var inner = Autograd.NoGrad();
        inner.Dispose();
        inner.Dispose();
        Assert.False(Autograd.IsEnabled);   // still inside outer
        outer.Dispose();
        Assert.True(Autograd.IsEnabled);
    }
}
