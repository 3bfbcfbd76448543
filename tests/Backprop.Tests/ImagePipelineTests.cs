using Backprop.Data;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>Augmentation, prefetching, label smoothing and the warm-up schedule used to train image models.</summary>
public class ImagePipelineTests
{
    // Two 1×3×4 images with distinct values 1 … 24.
    static Tensor Batch() => Tensor.From(Enumerable.Range(1, 24).Select(v => (float)v).ToArray(), [2, 12]);

    [Fact]
    public void Translate_shifts_the_reflection_padded_image_as_torch_pad_reflect_then_crop()
    {
        var x = Batch();
        var before = x.ToFloatArray();
        // F.pad(x, (1, 1, 1, 1), 'reflect')[..., 0:3, 0:4] and [..., 2:5, 2:6] for image 0 (rows 1-4, 5-8, 9-12).
        Assert.Equal(new float[] { 6, 5, 6, 7, 2, 1, 2, 3, 6, 5, 6, 7 }, Augment.Translate(x, 1, 3, 4, 1, 1).ToFloatArray()[..12]);
        Assert.Equal(new float[] { 6, 7, 8, 7, 10, 11, 12, 11, 6, 7, 8, 7 }, Augment.Translate(x, 1, 3, 4, -1, -1).ToFloatArray()[..12]);
        Assert.Equal(before, x.ToFloatArray());
        Assert.Throws<ArgumentException>(() => Augment.Translate(x, 1, 3, 4, 3, 0));   // a shift must stay below the image size
    }

    [Fact]
    public void Translate_and_flip_gives_each_image_one_of_its_shifted_or_mirrored_views()
    {
        var x = Batch();
        var views = new List<float[]>();
        for (int dy = -2; dy <= 2; dy++)
            for (int dx = -2; dx <= 2; dx++)
            {
                var t = Augment.Translate(x, 1, 3, 4, dy, dx);
                views.Add(t.ToFloatArray());
                views.Add(Augment.Mirror(t, 1, 3, 4).ToFloatArray());
            }
        var seen = new HashSet<string>();
        for (ulong seed = 0; seed < 40; seed++)
        {
            var y = Augment.TranslateAndFlip(1, 3, 4).Apply(x, new Generator(seed)).ToFloatArray();
            for (int k = 0; k < 2; k++)
            {
                var image = y[(k * 12)..((k + 1) * 12)];
                int match = views.FindIndex(v => v[(k * 12)..((k + 1) * 12)].SequenceEqual(image));
                Assert.True(match >= 0, $"seed {seed}, image {k}: not a shifted or mirrored view");
                seen.Add($"{k}:{match}");
            }
            Assert.Equal(y, Augment.TranslateAndFlip(1, 3, 4).Apply(x, new Generator(seed)).ToFloatArray());   // deterministic for a seed
        }
        Assert.True(seen.Count > 20, $"only {seen.Count} distinct views in 80 draws");
    }

    [Fact]
    public void Alternating_flip_mirrors_each_image_in_exactly_one_of_two_consecutive_epochs_and_resumes_by_epoch()
    {
        // 64 images of 1×1×4: [4i, 4i+1, 4i+2, 4i+3]; no shift, so each row comes back as itself or mirrored.
        const int n = 64;
        var x = Tensor.From(Enumerable.Range(0, 4 * n).Select(v => (float)v).ToArray(), [n, 4]);
        var before = x.ToFloatArray();
        bool[] MirroredIn(DataLoader loader)
        {
            var mirrored = new bool[n];
            foreach (var (batch, y) in loader)
            {
                var v = batch.ToFloatArray();
                for (int k = 0; k < y.Length; k++)
                {
                    int i = (int)(v[4 * k] + v[4 * k + 3]) / 8;   // the first and last values sum to 8i + 3 either way
                    Assert.Equal(i, y[k]);
                    mirrored[i] = v[4 * k] > v[4 * k + 3];
                }
            }
            return mirrored;
        }
        var labels = Enumerable.Range(0, n).ToArray();
        DataLoader Loader() => new(x, labels, 16, shuffle: true, generator: new Generator(3), transform: Augment.TranslateAndAlternatingFlip(1, 1, 4, max: 0));
        var loader = Loader();
        var e0 = MirroredIn(loader);
        var e1 = MirroredIn(loader);
        var e2 = MirroredIn(loader);
        Assert.All(Enumerable.Range(0, n), i => Assert.NotEqual(e0[i], e1[i]));   // both sides of every image in two epochs
        Assert.Equal(e0, e2);
        Assert.InRange(e0.Count(m => m), 16, 48);                                // about half start mirrored
        Assert.Equal(3, loader.Epoch);
        var resumed = Loader();
        resumed.Epoch = 1;
        Assert.Equal(e1, MirroredIn(resumed));
        Assert.Equal(before, x.ToFloatArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => resumed.Epoch = -1);
    }

    [Fact]
    public void Flip_mirrors_rows_and_leaves_the_input_unchanged()
    {
        var x = Batch();
        var before = x.ToFloatArray();
        // Find a seed whose first coin flips image 0 and keeps image 1 (the draw order is documented: one coin per image).
        for (ulong seed = 0; seed < 64; seed++)
        {
            var y = Augment.RandomHorizontalFlip(1, 3, 4).Apply(x, new Generator(seed)).ToFloatArray();
            if (y[0] != 4f || y[12] != 13f) continue;
            Assert.Equal([4f, 3f, 2f, 1f, 8f, 7f, 6f, 5f, 12f, 11f, 10f, 9f], y[..12]);
            Assert.Equal(before[12..], y[12..]);
            Assert.Equal(before, x.ToFloatArray());
            return;
        }
        Assert.Fail("no seed in 0…63 flipped only the first image");
    }

    [Fact]
    public void Crops_of_the_padded_image_are_shifts_with_zero_fill_and_the_same_seed_gives_the_same_batch()
    {
        var x = Tensor.Ones([64, 3 * 8 * 8]);
        var crop = Augment.RandomCrop(3, 8, 8, 2);
        var a = crop.Apply(x, new Generator(5)).ToFloatArray();
        Assert.Equal(a, crop.Apply(x, new Generator(5)).ToFloatArray());
        Assert.NotEqual(a, crop.Apply(x, new Generator(6)).ToFloatArray());
        for (int k = 0; k < 64; k++)
        {
            // Each image is a shifted block of ones: every zero row/column is at an edge, at most 2 deep, the same in all channels.
            var img = a.AsSpan(k * 192, 192).ToArray();
            int rows = Enumerable.Range(0, 8).Count(i => Enumerable.Range(0, 8).All(j => img[i * 8 + j] == 0));
            int cols = Enumerable.Range(0, 8).Count(j => Enumerable.Range(0, 8).All(i => img[i * 8 + j] == 0));
            Assert.InRange(rows, 0, 2);
            Assert.InRange(cols, 0, 2);
            Assert.Equal(64 - 8 * (rows + cols) + rows * cols, img.Take(64).Count(v => v == 1));
            Assert.Equal(img[..64], img[64..128]);
        }
    }

    [Fact]
    public void A_loader_with_augmentation_is_deterministic_for_a_seed()
    {
        var x = Tensor.Normal([50, 3 * 8 * 8], 0, 1, new Generator(1));
        var y = Enumerable.Range(0, 50).ToArray();
        float[][] Epoch(ulong seed) => new DataLoader(x, y, 16, shuffle: true, generator: new Generator(seed), transform: Augment.CropAndFlip(3, 8, 8, 2))
            .Select(b => b.X.ToFloatArray()).ToArray();
        Assert.Equal(Epoch(3), Epoch(3));
        Assert.Throws<ArgumentException>(() => new DataLoader(x, y, 16, transform: Augment.CropAndFlip(3, 8, 8)));   // no generator
    }

    [Fact]
    public void Prefetch_yields_the_sources_items_in_order_and_passes_its_failure_on()
    {
        var items = Enumerable.Range(0, 100).ToArray();
        Assert.Equal(items, new Prefetch<int>(items, depth: 3).ToArray());
        Assert.Equal(100, new Prefetch<int>(items).Count);
        Assert.Equal([0, 1, 2], new Prefetch<int>(items).Take(3).ToArray());   // stopping early stops the producer
        var e = Assert.Throws<InvalidOperationException>(() => new Prefetch<int>(new Failing()).ToArray());
        Assert.Contains("boom", e.Message);
    }

    sealed class Failing : IReadOnlyCollection<int>
    {
        public int Count => 3;
        public IEnumerator<int> GetEnumerator() { yield return 1; throw new IOException("boom"); }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    [Fact]
    public void Label_smoothing_is_pytorchs_mix_of_cross_entropy_and_the_mean_negative_log_probability()
    {
        var g = new Generator(2);
        var z = Helpers.Leaf(Tensor.Normal([5, 4], 0, 2, g, DType.Float64));
        int[] t = [0, 3, 1, 1, 2];
        const double eps = 0.2;
        var loss = z.CrossEntropy(t, labelSmoothing: eps);
        var logp = z.Detach().LogSoftmax();
        double expected = 0;
        for (int i = 0; i < 5; i++) expected += -(1 - eps) * logp[i, t[i]] - eps * Enumerable.Range(0, 4).Average(j => logp[i, j]);
        Assert.Equal(expected / 5, loss.Item(), 12);
        loss.Backward();
        var p = z.Detach().Softmax();
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal((p[i, j] - (j == t[i] ? 1 - eps : 0) - eps / 4) / 5, z.Grad![i, j], 12);
    }

    [Fact]
    public void Warm_up_rises_linearly_per_step_then_the_cosine_decays_to_zero()
    {
        var w = Tensor.Zeros([1]);
        w.RequiresGrad = true;
        var s = new WarmupCosineLR(new Sgd([w], 0.2), warmupEpochs: 2, totalEpochs: 6);
        Assert.True(s.PerStep);
        Assert.Equal(0.05, s.RateAt(0.5), 12);
        Assert.Equal(0.2, s.RateAt(2.0), 12);
        Assert.Equal(0.1, s.RateAt(4.0), 12);
        Assert.Equal(0.0, s.RateAt(6.0), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineLR(new Sgd([w], 0.2), 6, 6));
    }
}

public class CnnModelTests
{
    [Theory]
    [InlineData(1, 28, 28, new[] { 32, 64 }, 5, 1, false, new[] { 1024 }, false)]
    [InlineData(3, 32, 32, new[] { 64, 128, 256 }, 3, 1, true, new int[0], true)]
    [InlineData(3, 17, 9, new[] { 8, 4 }, 3, 2, true, new[] { 7 }, false)]
    public void The_state_size_computed_from_settings_is_the_built_models(int c, int h, int w, int[] widths, int kernel, int perStage, bool bn, int[] hidden, bool poolFirst)
    {
        var net = Models.Cnn.Create(c, h, w, widths, 10, new Generator(1), kernel, perStage, bn, hidden, poolFirst: poolFirst);
        Assert.Equal(net.StateDict().Values.Sum(t => (long)t.Length), Models.Cnn.StateSize(c, h, w, widths, 10, kernel, perStage, bn, hidden));
        Assert.Equal([2, 10], net.Forward(Tensor.Normal([2, c * h * w], 0, 1, new Generator(2))).Shape.ToArray());
    }

    [Fact]
    public void Pool_first_puts_the_pooling_between_a_stages_first_convolution_and_its_batch_norm()
    {
        var net = Models.Cnn.Create(3, 8, 8, [4], 10, new Generator(1), batchNorm: true, poolFirst: true);
        Assert.Equal(["Unflatten", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"], Enumerable.Range(0, net.Count).Select(i => net[i].GetType().Name).ToArray());
        // two convolutions a stage: the pooling follows the first, so the second runs at the pooled size
        var two = Models.Cnn.Create(3, 8, 8, [4], 10, new Generator(1), convsPerStage: 2, batchNorm: true, poolFirst: true);
        Assert.Equal(["Unflatten", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"],
            Enumerable.Range(0, two.Count).Select(i => two[i].GetType().Name).ToArray());
        Assert.Throws<ArgumentException>(() => Models.Cnn.Create(1, 4, 4, [2, 2, 2], 10, new Generator(1)));   // 3 poolings do not fit 4×4
    }

    [Fact]
    public void Saved_settings_of_pool_first_with_several_convolutions_a_stage_from_before_the_first_convolution_layout_are_refused()
    {
        var s = new Cli.TrainSettings { Model = "cnn", Conv = [8, 16], ConvsPerStage = 2, PoolFirst = true, BatchNorm = true, Hidden = [] };
        string json = s.ToJson(), old = json.Replace(",\"pool_after\":\"first\"", "");
        Assert.Equal(2, Cli.TrainSettings.FromJson(json).ConvsPerStage);
        Assert.NotEqual(json, old);
        var e = Assert.Throws<InvalidDataException>(() => Cli.TrainSettings.FromJson(old));
        Assert.Contains("pool_first with 2 convolutions", e.Message);
        // one convolution a stage: the same network in both layouts
        Assert.True(Cli.TrainSettings.FromJson((s with { ConvsPerStage = 1 }).ToJson().Replace(",\"pool_after\":\"first\"", "")).PoolFirst);
    }

    [Fact]
    public void Without_batch_norm_pooling_before_the_relu_gives_the_same_outputs_and_gradients()
    {
        var x = Tensor.Normal([3, 2, 6, 6], 0, 1, new Generator(4), DType.Float64);
        var a = Helpers.Leaf(x.Clone().Detach()); var b = Helpers.Leaf(x.Clone().Detach());
        var ya = a.Relu().MaxPool2d(2);
        var yb = b.MaxPool2d(2).Relu();
        Assert.Equal(ya.ToDoubleArray(), yb.ToDoubleArray());
        var up = Tensor.Normal(ya.Shape, 0, 1, new Generator(5), DType.Float64);
        ya.Backward(up); yb.Backward(up);
        Assert.Equal(a.Grad!.ToDoubleArray(), b.Grad!.ToDoubleArray());
        var net = Models.Cnn.Create(1, 8, 8, [4], 10, new Generator(1));
        Assert.Equal(["Unflatten", "Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear"], Enumerable.Range(0, net.Count).Select(i => net[i].GetType().Name).ToArray());
    }
}
