using Backprop.Backends;
using Backprop.Nn;

namespace Backprop.Tests;

/// <summary>
/// Convolution, pooling and batch normalisation over images: the SIMD/GEMM kernels agree with the textbook sums of the
/// reference backend at odd shapes, in float32 and float64, forward and backward; shapes and edge cases follow PyTorch.
/// </summary>
public class ConvolutionTests
{
    public record ConvCase(string Name, int[] X, int[] W, Size2 Stride, Padding2d Padding, Size2 Dilation, int Groups, bool Bias)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<ConvCase> ConvCases => new()
    {
        new("stride 2", [2, 3, 9, 7], [4, 3, 3, 3], 2, 1, 1, 1, true),
        new("dilation 2", [2, 2, 9, 8], [3, 2, 3, 2], 1, 0, 2, 1, false),
        new("groups 2", [3, 4, 6, 5], [6, 2, 3, 3], 1, 1, 1, 2, true),
        new("padding 3, non-square", [1, 3, 5, 11], [2, 3, 2, 5], (1, 2), (3, 2), 1, 1, true),
        new("batch 1, 5x5 same", [1, 1, 28, 28], [4, 1, 5, 5], 1, Padding2d.Same, 1, 1, true),
        new("even kernel same", [2, 2, 7, 6], [3, 2, 2, 4], 1, Padding2d.Same, (2, 1), 1, false),
        new("pointwise", [3, 8, 4, 5], [6, 8, 1, 1], 1, 0, 1, 1, true),
        new("depthwise stride 3", [2, 4, 10, 9], [4, 1, 3, 3], 3, 1, 1, 4, true),
        new("batch 20 (threads)", [20, 3, 8, 8], [5, 3, 3, 3], 1, 1, 1, 1, true),
        new("samples unrolled side by side, groups 2, a lone last one", [7, 4, 6, 5], [6, 2, 3, 3], (2, 1), 1, 1, 2, false),
        // ≥ 16 input channels per group, ≤ 9 taps, stride 1: the input gradient runs as a flipped forward convolution
        new("flipped input gradient", [3, 16, 7, 6], [24, 16, 3, 3], 1, 1, 1, 1, true),
        new("flipped, groups 2, dilation 2, asymmetric", [2, 32, 9, 8], [20, 16, 3, 2], 1, Padding2d.Same, 2, 2, false),
        // ≤ 4 input channels, stride 1, float32: the direct kernels (padded rows, 32-pixel tiles, blocks of 8 or 4 channels)
        new("direct: 5x5 same, two tiles a row (the second ragged), 9 output channels", [3, 2, 13, 40], [9, 2, 5, 5], 1, Padding2d.Same, 1, 1, true),
        new("direct: even kernel same (pads 0/1 and 1/2)", [2, 3, 7, 6], [3, 3, 2, 4], 1, Padding2d.Same, 1, 1, false),
        new("direct: 7x3 valid, 5 output rows", [2, 1, 11, 9], [10, 1, 7, 3], 1, 0, 1, 1, true),
        new("direct: 4 channels, pad 2 on a 3x3 (output larger than the input)", [2, 4, 6, 5], [8, 4, 3, 3], 1, 2, 1, 1, false),
        new("direct: batch 40 (16 weight-gradient chunks of 3)", [40, 1, 9, 9], [6, 1, 5, 5], 1, 2, 1, 1, true),
        // "same" at stride 1 (the unrolled planes are shifted copies through a wrap mask); 8 channels keep im2col
        new("same, 5x5 on 3-wide rows (shifts of all but one column)", [2, 8, 6, 3], [4, 8, 5, 5], 1, Padding2d.Same, 1, 1, true),
        new("same, 3x3 on 2×3 planes (shorter than a 128-bit vector of floats)", [2, 8, 2, 3], [3, 8, 3, 3], 1, Padding2d.Same, 1, 1, false),
        new("same, dilation 2 on 2-wide rows (every shifted column wraps)", [2, 8, 5, 2], [3, 8, 3, 3], 1, Padding2d.Same, 2, 1, false),
        new("same, 5x5 on 17-wide rows", [3, 8, 4, 17], [5, 8, 5, 5], 1, Padding2d.Same, 1, 1, true),
        // unrolled rows a multiple of 256 bytes long are stored a cache line apart (32×32 floats: 4 KiB; 16×16: 1 KiB)
        new("32x32 planes, padded unrolled rows, flipped input gradient", [2, 16, 32, 32], [8, 16, 3, 3], 1, Padding2d.Same, 1, 1, true),
        new("16x16 planes, padded unrolled rows, input gradient by col2im", [3, 8, 16, 16], [5, 8, 3, 3], 1, 1, 1, 1, false),
        // planes under 64 pixels: every pass unrolls samples side by side (the weight gradient 3 at a time in chunks of 3,
        // the last chunk a lone sample), even with over 800 unrolled rows
        new("4x4 planes, 96 channels, batch 40", [40, 96, 4, 4], [8, 96, 3, 3], 1, 1, 1, 1, true),
        new("4x4 planes, groups 2, batch 32 (weight gradient 2 at a time)", [32, 8, 4, 4], [6, 4, 3, 3], 1, 1, 1, 2, false),
        new("4x4 planes, 810 unrolled rows, input gradient by col2im (184 > 2·90 outputs)", [32, 90, 4, 4], [184, 90, 3, 3], 1, 1, 1, 1, false),
        new("pointwise on 4x4 planes, batch 40 (x is its own unrolled matrix: one sample a product)", [40, 8, 4, 4], [6, 8, 1, 1], 1, 0, 1, 1, true),
    };

    static (Tensor Y, Tensor Gx, Tensor Gw, Tensor? Gb) RunConv(IBackend backend, ConvCase c, DType dtype, ulong seed)
    {
        var g = new Generator(seed);
        var x = Helpers.Leaf(Tensor.Normal(c.X, 0, 1, g, dtype));
        var w = Helpers.Leaf(Tensor.Normal(c.W, 0, 1, g, dtype));
        var b = c.Bias ? Helpers.Leaf(Tensor.Normal([c.W[0]], 0, 1, g, dtype)) : null;
        using (Backend.Use(backend))
        {
            var y = x.Conv2d(w, b, c.Stride, c.Padding, c.Dilation, c.Groups);
            var up = Tensor.Normal(y.Shape, 0, 1, g, dtype);
            (y * up).Sum().Backward();
            return (y.Detach(), x.Grad!, w.Grad!, b?.Grad);
        }
    }

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void Conv2d_forward_and_both_gradients_match_the_naive_sums(ConvCase c)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var fast = RunConv(Backend.Cpu, c, dtype, 7);
            var slow = RunConv(Backend.Reference, c, dtype, 7);
            // float32: the weight gradient sums N·OH·OW products (1,280 here) whose cancellation leaves ~1e-5 of rounding.
            double tol = dtype == DType.Float32 ? 1e-4 : 1e-12;
            Helpers.AllClose(slow.Y, fast.Y, tol, $"{c.Name} {dtype} y");
            Helpers.AllClose(slow.Gx, fast.Gx, tol, $"{c.Name} {dtype} ∂x");
            Helpers.AllClose(slow.Gw, fast.Gw, tol, $"{c.Name} {dtype} ∂W");
            if (c.Bias) Helpers.AllClose(slow.Gb!, fast.Gb!, tol, $"{c.Name} {dtype} ∂b");
        }
    }

    [Fact]
    public void Direct_convolution_geometries_match_the_naive_sums_in_all_three_passes_and_write_nothing_outside_their_outputs()
    {
        // Random shapes the direct kernels take (≤ 4 input channels, kernels up to 7×5, any padding below the kernel,
        // outputs 1–69 wide), written into views of a larger tensor whose guard values must survive; 1 and 2 threads.
        // The forward pass and weight gradient run the direct kernels; the input gradient of these shapes runs im2col.
        var rng = new Random(1234);
        var gen = new Generator(9);
        int tested = 0;
        for (int iter = 0; iter < 200; iter++)
        {
            int b = rng.Next(2, 24), c = rng.Next(1, 5), k = rng.Next(1, 14), kh = rng.Next(1, 8), kw = rng.Next(1, 6);
            int pt = rng.Next(kh), pb = rng.Next(kh), pl = rng.Next(kw), pr = rng.Next(kw);
            int oh = rng.Next(1, 12), ow = rng.Next(3) switch { 0 => rng.Next(1, 16), 1 => rng.Next(16, 34), _ => rng.Next(30, 70) };
            int h = oh + kh - 1 - pt - pb, w = ow + kw - 1 - pl - pr;
            var g = new Conv2dGeometry(b, c, h, w, k, kh, kw, 1, 1, pt, pb, pl, pr);
            if (h < 1 || w < 1 || !Backprop.Kernels.DirectConvolution.Applies(g)) continue;
            tested++;
            var x = Tensor.Normal([b, c, h, w], 0, 1, gen);
            var weight = Tensor.Normal([k, c, kh, kw], 0, 1, gen);
            var bias = rng.Next(2) == 0 ? null : Tensor.Normal([k], 0, 1, gen);
            var gy = Tensor.Normal([b, k, oh, ow], 0, 1, gen);
            string name = $"b{b} c{c} k{k} {kh}x{kw} pads {pt}/{pb}/{pl}/{pr} out {oh}x{ow}";
            var yRef = Tensor.Zeros([b, k, oh, ow]);
            Backend.Reference.Conv2d(x, weight, bias, yRef, g);
            var gwRef = Tensor.Zeros([k, c, kh, kw]);
            Backend.Reference.Conv2dWeightGrad(x, gy, gwRef, g);
            var gxRef = Tensor.Zeros([b, c, h, w]);
            Backend.Reference.Conv2dInputGrad(gy, weight, gxRef, g);
            float[]? first = null;
            foreach (int threads in new[] { 1, 2 })
            {
                using var _ = Parallelism.Use(threads);
                var y = Guarded([b, k, oh, ow], out var yAll);
                Backend.Cpu.Conv2d(x, weight, bias, y, g);
                Helpers.AllClose(yRef, y, 1e-4, name + " y");
                var gw = Guarded([k, c, kh, kw], out var gwAll);
                Backend.Cpu.Conv2dWeightGrad(x, gy, gw, g);
                Helpers.AllClose(gwRef, gw, 2e-4, name + " ∂W");
                var gx = Guarded([b, c, h, w], out var gxAll);
                Backend.Cpu.Conv2dInputGrad(gy, weight, gx, g);
                Helpers.AllClose(gxRef, gx, 1e-4, name + " ∂x");
                CheckGuards(yAll, b, name + " y");
                CheckGuards(gwAll, k, name + " ∂W");
                CheckGuards(gxAll, b, name + " ∂x");
                var all = y.ToFloatArray().Concat(gw.ToFloatArray()).Concat(gx.ToFloatArray()).ToArray();
                if (first is null) first = all; else Assert.Equal(first, all);   // thread count changes nothing
            }
        }
        Assert.True(tested > 100, $"only {tested} geometries reached the direct kernels");

        // A view of the middle of a tensor one sample longer on each side, filled with a guard value.
        static Tensor Guarded(int[] shape, out Tensor all)
        {
            var s = (int[])shape.Clone(); s[0] += 2;
            all = Tensor.Full(s, 12345.0);
            return all.Narrow(0, 1, shape[0]);
        }

        static void CheckGuards(Tensor all, int n, string what)
        {
            var a = all.ToFloatArray();
            int per = a.Length / (n + 2);
            Assert.True(a[..per].All(v => v == 12345f) && a[(per * (n + 1))..].All(v => v == 12345f), $"{what}: a write outside the output");
        }
    }

    [Fact]
    public void An_infinite_pixel_reaches_only_the_weight_gradients_of_the_taps_that_read_it()
    {
        // The direct weight gradient pads rows to whole vectors; lanes past a row must not multiply real pixels by zeros
        // (0·∞ = NaN would reach taps that never read the pixel).
        (float[] Gw, float[] Gx) Run(IBackend backend)
        {
            var values = Enumerable.Repeat(1f, 2 * 5 * 6).ToArray();
            values[2 * 6 + 5] = float.PositiveInfinity;
            var x = Helpers.Leaf(Tensor.From(values, [2, 1, 5, 6]));
            var w = Helpers.Leaf(Tensor.Ones([4, 1, 3, 3]));
            using var _ = Backend.Use(backend);
            x.Conv2d(w).Backward(Tensor.Ones([2, 4, 3, 4]));
            return (w.Grad!.ToFloatArray(), x.Grad!.ToFloatArray());
        }
        var fast = Run(Backend.Cpu);
        var slow = Run(Backend.Reference);
        Assert.Equal(slow.Gw, fast.Gw);
        Assert.Equal([24f, 24f, float.PositiveInfinity], slow.Gw[..3]);   // 12 products a sample; only column 2 reads the pixel
    }

    [Fact]
    public void A_batch_of_no_samples_gives_an_empty_output_and_a_zero_weight_gradient()
    {
        var x = Helpers.Leaf(Tensor.Zeros([0, 2, 5, 5]));
        var w = Helpers.Leaf(Tensor.Ones([3, 2, 3, 3]));
        var y = x.Conv2d(w, padding: 1);
        Assert.Equal([0, 3, 5, 5], y.Shape.ToArray());
        y.Sum().Backward();
        Assert.All(w.Grad!.ToFloatArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Conv2d_output_shapes_follow_pytorchs_formula()
    {
        var g = new Generator(1);
        var x = Tensor.Normal([2, 3, 11, 8], 0, 1, g);
        Assert.Equal([2, 5, 6, 5], x.Conv2d(Tensor.Normal([5, 3, 3, 2], 0, 1, g), stride: 2, padding: 1).Shape.ToArray());   // ⌊(11+2−3)/2⌋+1, ⌊(8+2−2)/2⌋+1
        Assert.Equal([2, 4, 11, 8], x.Conv2d(Tensor.Normal([4, 3, 4, 5], 0, 1, g), padding: Padding2d.Same).Shape.ToArray());
        Assert.Equal([2, 4, 7, 4], x.Conv2d(Tensor.Normal([4, 3, 3, 3], 0, 1, g), dilation: 2).Shape.ToArray());   // 11 − 4, 8 − 4
        Assert.Equal([4, 9, 6], x.Select(0, 0).Conv2d(Tensor.Normal([4, 3, 3, 3], 0, 1, g)).Shape.ToArray());   // unbatched
    }

    [Fact]
    public void Same_padding_with_an_even_kernel_pads_one_more_at_the_end_as_pytorch()
    {
        // A 1×2 kernel [1, 10] over a row [1, 2, 3]: PyTorch pads 0 left, 1 right → [1·1 + 10·2, 2 + 30, 3 + 0].
        var x = Tensor.From([1f, 2f, 3f], [1, 1, 1, 3]);
        var w = Tensor.From([1f, 10f], [1, 1, 1, 2]);
        Assert.Equal([21f, 32f, 3f], x.Conv2d(w, padding: Padding2d.Same).ToFloatArray());
    }

    [Fact]
    public void Bad_convolution_arguments_are_refused_with_the_shapes_named()
    {
        var g = new Generator(1);
        var x = Tensor.Normal([2, 3, 8, 8], 0, 1, g);
        var e = Assert.Throws<ArgumentException>(() => x.Conv2d(Tensor.Normal([4, 2, 3, 3], 0, 1, g)));
        Assert.Contains("3 channels", e.Message);
        Assert.Contains("smaller than the dilated kernel", Assert.Throws<ArgumentException>(() => x.Conv2d(Tensor.Normal([4, 3, 9, 9], 0, 1, g))).Message);
        Assert.Contains("stride 1", Assert.Throws<ArgumentException>(() => x.Conv2d(Tensor.Normal([4, 3, 3, 3], 0, 1, g), stride: 2, padding: Padding2d.Same)).Message);
        Assert.Contains("groups", Assert.Throws<ArgumentException>(() => x.Conv2d(Tensor.Normal([4, 1, 3, 3], 0, 1, g), groups: 3)).Message);
        Assert.Contains("(N, C, H, W)", Assert.Throws<ArgumentException>(() => Tensor.Normal([3, 8], 0, 1, g).Conv2d(Tensor.Normal([4, 3, 3, 3], 0, 1, g))).Message);
        Assert.Contains("Float64", Assert.Throws<ArgumentException>(() => x.Conv2d(Tensor.Normal([4, 3, 3, 3], 0, 1, g, DType.Float64))).Message);
    }

    [Fact]
    public void ConvTranspose2d_is_the_adjoint_of_conv2d_and_sizes_its_output_as_pytorch()
    {
        // ⟨conv(x), y⟩ = ⟨x, conv_transpose(y)⟩ for the same weight, stride, padding and groups.
        var g = new Generator(3);
        var w = Tensor.Normal([4, 3, 3, 2], 0, 1, g, DType.Float64);   // conv: 6 → 4 channels with groups 2
        var x = Tensor.Normal([2, 6, 9, 8], 0, 1, g, DType.Float64);
        var cx = x.Conv2d(w, stride: 2, padding: 1, groups: 2);
        var y = Tensor.Normal(cx.Shape, 0, 1, g, DType.Float64);
        var ty = y.ConvTranspose2d(w, stride: 2, padding: 1, groups: 2);
        Assert.Equal([2, 6, 9, 8], ty.Shape.ToArray());   // (5−1)·2 − 2 + 2 + 1 = 9, (5−1)·2 − 2 + 1 + 1 = 8
        Assert.Equal([2, 6, 10, 9], y.ConvTranspose2d(w, stride: 2, padding: 1, outputPadding: 1, groups: 2).Shape.ToArray());
        Assert.Equal((cx * y).Sum().Item(), (x * ty).Sum().Item(), 9);
        Assert.Contains("output_padding", Assert.Throws<ArgumentException>(() => y.ConvTranspose2d(w, stride: 2, outputPadding: 2, groups: 2)).Message);
    }

    public record PoolCase(string Name, int[] X, Size2 Kernel, Size2? Stride, Size2 Padding, Size2 Dilation, bool Ceil, bool IncludePad)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<PoolCase> PoolCases => new()
    {
        new("2x2 halving", [2, 3, 8, 6], 2, null, 0, 1, false, true),
        new("2x2 odd input", [1, 2, 7, 5], 2, null, 0, 1, false, true),
        new("2x2 halving, rows of vectors", [2, 3, 10, 40], 2, null, 0, 1, false, true),
        new("2x2 halving, odd and wide", [1, 2, 11, 37], 2, null, 0, 1, false, true),
        new("2x2 halving, rows of seven windows", [2, 4, 14, 14], 2, null, 0, 1, false, true),
        new("3x3 stride 2 pad 1 ceil", [2, 2, 9, 6], 3, 2, 1, 1, true, true),
        new("non-square exclude pad", [1, 3, 7, 10], (2, 4), (1, 3), (1, 2), 1, false, false),
        new("dilated", [2, 1, 9, 9], 3, 2, 1, 2, false, true),
        new("batch 1 global", [1, 16, 5, 5], 5, null, 0, 1, false, true),
        new("global over 3x3 planes", [4, 8, 3, 3], 3, null, 0, 1, false, true),
        new("2x2 halving, rows of three windows", [2, 3, 7, 7], 2, null, 0, 1, false, true),
    };

    [Theory]
    [MemberData(nameof(PoolCases))]
    public void Pooling_matches_the_naive_windows_forward_and_backward(PoolCase c)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            (Tensor, Tensor, Tensor?, Tensor?) Run(IBackend backend)
            {
                var g = new Generator(11);
                var x = Helpers.Leaf(Tensor.Normal(c.X, 0, 1, g, dtype));
                using var _ = Backend.Use(backend);
                var mx = x.MaxPool2d(c.Kernel, c.Stride, c.Padding, c.Dilation, c.Ceil);
                (mx * Tensor.Normal(mx.Shape, 0, 1, g, dtype)).Sum().Backward();
                var gMax = x.Grad!;
                if (c.Dilation != new Size2(1, 1)) return (mx.Detach(), gMax, null, null);
                x.Grad = null;
                var av = x.AvgPool2d(c.Kernel, c.Stride, c.Padding, c.Ceil, c.IncludePad);
                (av * Tensor.Normal(av.Shape, 0, 1, g, dtype)).Sum().Backward();
                return (mx.Detach(), gMax, av.Detach(), x.Grad);
            }
            var fast = Run(Backend.Cpu);
            var slow = Run(Backend.Reference);
            double tol = dtype == DType.Float32 ? 1e-6 : 1e-14;
            Helpers.AllClose(slow.Item1, fast.Item1, tol, $"{c.Name} {dtype} max");
            Helpers.AllClose(slow.Item2, fast.Item2, tol, $"{c.Name} {dtype} ∂max");
            if (slow.Item3 is not null)
            {
                Helpers.AllClose(slow.Item3, fast.Item3!, tol, $"{c.Name} {dtype} avg");
                Helpers.AllClose(slow.Item4!, fast.Item4!, tol, $"{c.Name} {dtype} ∂avg");
            }
        }
    }

    [Fact]
    public void Max_pooling_gives_a_tie_to_the_first_maximum_and_a_nan_window_to_its_last_nan_as_pytorch()
    {
        // PyTorch 1.13 (max_pool2d, return_indices): values [5, NaN], indices [0, 6], gradient [1, 0, 0, 0, 0, 0, 1, 0].
        foreach (var backend in new[] { Backend.Cpu, Backend.Reference })
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            {
                using var _ = Backend.Use(backend);
                var x = Helpers.Leaf(Tensor.From([5.0, 5, 1, double.NaN, 2, 5, double.NaN, 4], [1, 1, 2, 4]).To(dtype));
                var y = x.MaxPool2d(2);
                Assert.Equal(5.0, y[0, 0, 0, 0]);
                Assert.True(double.IsNaN(y[0, 0, 0, 1]));
                y.Sum().Backward();
                // the tie's gradient all to the first 5, the NaN window's to its second NaN
                Assert.Equal([1.0, 0, 0, 0, 0, 0, 1, 0], x.Grad!.ToDoubleArray());
                // The same rule over the whole plane (global pooling): the last NaN; without NaNs, the first 5.
                x.Grad = null;
                var global = x.GlobalMaxPool2d();
                Assert.True(double.IsNaN(global[0, 0, 0, 0]));
                global.Sum().Backward();
                Assert.Equal([0.0, 0, 0, 0, 0, 0, 1, 0], x.Grad!.ToDoubleArray());
                var ties = Helpers.Leaf(Tensor.From([5.0, 5, 1, 2, 2, 5, 0, 4], [1, 1, 2, 4]).To(dtype));
                ties.GlobalMaxPool2d().Sum().Backward();
                Assert.Equal([1.0, 0, 0, 0, 0, 0, 0, 0], ties.Grad!.ToDoubleArray());
            }
    }

    // Widths of 31, 9, 7, 4 and 3 windows: eight- and four-window steps, a ragged end redone by an overlapping step, and
    // the scalar loop; odd heights leave a row in no window; the large shape is shared between threads in runs of output
    // rows that start and end inside planes.
    [Theory]
    [InlineData(2, 3, 6, 62)]
    [InlineData(2, 3, 7, 18)]
    [InlineData(3, 5, 14, 14)]
    [InlineData(2, 4, 9, 8)]
    [InlineData(2, 3, 6, 7)]
    [InlineData(3, 8, 67, 66)]
    [InlineData(4, 6, 7, 7)]   // rows of 3 windows, through the 4-window form
    [InlineData(3, 5, 5, 4)]   // rows of 2
    [InlineData(5, 7, 3, 3)]   // rows of 1, the last rows of the tensor by the scalar form
    public void Vectorised_2x2_max_pooling_breaks_ties_and_propagates_nan_exactly_as_the_window_scan(int n, int c, int h, int w)
    {
        // Values from {0, 1, 2, NaN}: most windows hold ties, many a NaN or two, in every position of the window.
        var g = new Generator(5);
        var values = Enumerable.Range(0, n * c * h * w).Select(_ => g.NextDouble() switch { < 0.1 => float.NaN, var u => (float)Math.Floor(u * 3) }).ToArray();
        (float[] Y, float[] Gx) Run(IBackend backend)
        {
            using var _ = Backend.Use(backend);
            var x = Helpers.Leaf(Tensor.From(values, [n, c, h, w]));
            var y = x.MaxPool2d(2);
            var gy = Tensor.Arange(1, y.Length + 1).Reshape(y.Shape.ToArray());   // a distinct gradient per window
            y.Backward(gy);
            return (y.ToFloatArray(), x.Grad!.ToFloatArray());
        }
        var (fastY, fastGx) = Run(Backend.Cpu);
        var (slowY, slowGx) = Run(Backend.Reference);
        Assert.Equal(slowY, fastY);     // NaN equals NaN here
        Assert.Equal(slowGx, fastGx);   // each window's gradient lands on the same element

        // Through the seam into a gradient buffer full of NaN: every element, in a window or not, must be written.
        var geometry = new Pool2dGeometry(n, c, h, w, 2, 2, 2, 2);
        var xs = Tensor.From(values, [n, c, h, w]);
        var ys = Tensor.Zeros([n, c, h / 2, w / 2]);
        var indices = new int[ys.Length];
        Backend.Cpu.MaxPool2d(xs, ys, indices, geometry);
        var gx = Tensor.Full([n, c, h, w], double.NaN);
        Backend.Cpu.MaxPool2dBackward(Tensor.Arange(1, ys.Length + 1).Reshape(ys.Shape.ToArray()), indices, gx, geometry);
        Assert.Equal(slowGx, gx.ToFloatArray());
    }

    [Fact]
    public void Max_pooling_backward_turns_a_negative_zero_gradient_into_positive_zero_as_accumulating_into_zeros_does()
    {
        foreach (var backend in new[] { Backend.Cpu, Backend.Reference })
        {
            using var _ = Backend.Use(backend);
            var x = Helpers.Leaf(Tensor.Normal([1, 2, 4, 36], 0, 1, new Generator(3)));   // vector rows and a scalar tail
            var y = x.MaxPool2d(2);
            var gx = Autograd.Grad([y], [x], [Tensor.Full(y.Shape, -0.0)])[0]!;   // returned as computed (a leaf's Grad would add it to zeros)
            Assert.All(gx.ToFloatArray(), v => Assert.Equal(0, BitConverter.SingleToInt32Bits(v)));
        }
    }

    [Fact]
    public void Average_pooling_divisors_follow_count_include_pad_and_ceil_mode_as_pytorch()
    {
        var x = Tensor.Ones([1, 1, 3, 3]);
        // Padding 1, kernel 2, stride 2, ceil mode: windows start at −1 and 1 → 2×2 outputs; with padding counted, the
        // corner window (rows −1…0) averages one real 1 over 4 (0.25); the last window rows 1…2 is whole (1).
        Assert.Equal([0.25f, 0.5f, 0.5f, 1f], x.AvgPool2d(2, padding: 1, ceilMode: true).ToFloatArray());
        Assert.Equal([1f, 1f, 1f, 1f], x.AvgPool2d(2, padding: 1, ceilMode: true, countIncludePad: false).ToFloatArray());
        // Adaptive 3 → 2: rows [0, 2) and [1, 3) overlap, as PyTorch's ⌊i·3/2⌋ … ⌈(i+1)·3/2⌉.
        var r = Tensor.From([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f], [1, 1, 3, 3]).AdaptiveAvgPool2d(2).ToFloatArray();
        Assert.Equal([3f, 4f, 6f, 7f], r);
    }

    [Fact]
    public void Pooling_refuses_padding_over_half_the_kernel_and_too_small_inputs()
    {
        var x = Tensor.Ones([1, 1, 4, 4]);
        Assert.Contains("half the kernel", Assert.Throws<ArgumentException>(() => x.MaxPool2d(2, padding: 2)).Message);
        Assert.Contains("too small", Assert.Throws<ArgumentException>(() => x.MaxPool2d(5)).Message);
    }

    [Fact]
    public void BatchNorm2d_normalises_each_channel_over_batch_and_plane_and_updates_running_statistics_as_pytorch()
    {
        var g = new Generator(5);
        var bn = new BatchNorm2d(3, dtype: DType.Float64);
        var x = Tensor.Normal([4, 3, 5, 6], 2, 3, g, DType.Float64);
        var y = bn.Forward(x);
        var xs = x.Permute(1, 0, 2, 3).Reshape(3, -1);
        var ys = y.Permute(1, 0, 2, 3).Reshape(3, -1);
        var mean = xs.Mean(1);
        var biasedVar = ((xs - mean.Unsqueeze(1)) * (xs - mean.Unsqueeze(1))).Mean(1);
        for (int c = 0; c < 3; c++)
        {
            Assert.Equal(0, ys.Select(0, c).Mean().Item(), 12);
            Assert.Equal(biasedVar[c] / (biasedVar[c] + 1e-5), ((ys.Select(0, c) * ys.Select(0, c)).Mean()).Item(), 12);
            Assert.Equal(0.1 * mean[c], bn.RunningMean[c], 12);
            Assert.Equal(0.9 + 0.1 * biasedVar[c] * 120 / 119, bn.RunningVar[c], 12);   // unbiased, n = 4·5·6
        }
        bn.Eval();
        var e = bn.Forward(x);
        Assert.Equal((x[1, 2, 3, 4] - bn.RunningMean[2]) / Math.Sqrt(bn.RunningVar[2] + 1e-5), e[1, 2, 3, 4], 12);
    }

    [Fact]
    public void BatchNorm2d_statistics_match_the_reference_backend_in_float32_for_a_large_mean()
    {
        // A mean 1000× the spread: two-pass statistics keep the variance; Σx² − n·μ² in float32 would not.
        var g = new Generator(9);
        var x = Tensor.Normal([8, 4, 16, 16], 1000, 1, g);
        Tensor Run(IBackend b) { using var _ = Backend.Use(b); return x.BatchNorm(Tensor.Ones([4]), Tensor.Zeros([4])); }
        Helpers.AllClose(Run(Backend.Reference), Run(Backend.Cpu), 2e-3, "batch_norm (N, C, H, W) float32, μ = 1000");
    }

    [Fact]
    public void Dropout2d_zeroes_whole_channels_and_scales_the_rest()
    {
        var d = new Dropout2d(0.5, new Generator(2));
        var y = d.Forward(Tensor.Ones([4, 8, 3, 3])).ToFloatArray();
        for (int plane = 0; plane < 32; plane++)
        {
            var v = y.AsSpan(plane * 9, 9).ToArray();
            Assert.True(v.All(e => e == 0) || v.All(e => e == 2), $"plane {plane} is not all 0 or all 2");
        }
        Assert.Contains(0f, y);
        Assert.Contains(2f, y);
        d.Eval();
        Assert.All(d.Forward(Tensor.Ones([2, 3, 2, 2])).ToFloatArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Convolution_results_do_not_depend_on_the_thread_count()
    {
        // 9×9 planes: one sample per product; 4×4: several side by side in every pass
        foreach (var c in new[] { new ConvCase("threads", [13, 3, 9, 9], [8, 3, 3, 3], 1, 1, 1, 1, true), new ConvCase("threads, 4x4", [37, 32, 4, 4], [8, 32, 3, 3], 1, 1, 1, 1, true) })
        {
            (Tensor, Tensor, Tensor, Tensor?) One(int threads) { using var _ = Parallelism.Use(threads); return RunConv(Backend.Cpu, c, DType.Float32, 4); }
            var a = One(1);
            var b = One(2);
            Assert.Equal(a.Item1.ToFloatArray(), b.Item1.ToFloatArray());
            Assert.Equal(a.Item2.ToFloatArray(), b.Item2.ToFloatArray());
            Assert.Equal(a.Item3.ToFloatArray(), b.Item3.ToFloatArray());
        }
    }

    [Fact]
    public void Conv2d_module_initialises_as_pytorch_and_prints_its_arguments()
    {
        var conv = new Conv2d(8, 16, 3, new Generator(1), padding: 1);
        double bound = 1 / Math.Sqrt(8 * 9);
        var w = conv.Weight.ToFloatArray();
        Assert.True(w.All(v => Math.Abs(v) <= bound) && w.Max() > 0.9 * bound && w.Min() < -0.9 * bound, "weights fill U(±1/√fan_in)");
        Assert.Equal("Conv2d(8, 16, kernel_size=3, stride=1, padding=1)", conv.ToString().Trim());
        Assert.Equal(16 * 8 * 9 + 16, conv.ParameterCount());
    }

    [Fact]
    public void Init_functions_give_pytorchs_scales_and_orthogonal_matrices()
    {
        var g = new Generator(3);
        var w = Tensor.Empty([256, 128, 3, 3]);
        Init.KaimingNormal(w, g, nonlinearity: Nonlinearity.Relu);
        Assert.Equal(Math.Sqrt(2.0 / (128 * 9)), Std(w), 3);
        Init.KaimingUniform(w, g, mode: FanMode.FanOut);   // leaky ReLU with a = 0: gain √2, bound √2·√(3/fan_out)
        Assert.Equal(Math.Sqrt(2) * Math.Sqrt(3.0 / (256 * 9)) / Math.Sqrt(3), Std(w), 3);
        Init.XavierUniform(w, g);
        Assert.Equal(Math.Sqrt(2.0 / (128 * 9 + 256 * 9)), Std(w), 3);
        var q = Init.Orthogonal(Tensor.Empty([5, 12], DType.Float64), g, gain: 2);
        Helpers.AllClose(Eye(5) * 4.0, q.MatMul(q.T()), 1e-12, "Q Qᵀ = gain² I (wide)");
        var t = Init.Orthogonal(Tensor.Empty([12, 5], DType.Float64), g);
        Helpers.AllClose(Eye(5), t.T().MatMul(t), 1e-12, "Qᵀ Q = I (tall)");
        Assert.Equal([1f, 1f], Init.Ones(Tensor.Empty([2])).ToFloatArray());

        static Tensor Eye(int n) { var e = Tensor.Zeros([n, n], DType.Float64); for (int i = 0; i < n; i++) e[i, i] = 1; return e; }
        static double Std(Tensor t) { var v = t.ToDoubleArray(); double m = v.Average(); return Math.Sqrt(v.Sum(e => (e - m) * (e - m)) / v.Length); }
    }

    [Fact]
    public void Patch_whitening_filters_decorrelate_the_patches_they_were_fit_on_and_their_negatives_mirror_them()
    {
        // Non-square images whose three channels share most of their signal (the patch matrix is far from diagonal).
        var g = new Generator(21);
        var shared = Tensor.Normal([40, 1, 9, 7], 0, 1, g, DType.Float64);
        var images = shared.Expand(40, 3, 9, 7) + Tensor.Normal([40, 3, 9, 7], 0, 0.3, g, DType.Float64) + 0.2;
        var w = Init.PatchWhitening(Tensor.Empty([24, 3, 2, 2], DType.Float64), images, eps: 1e-12);
        var y = images.Conv2d(w, null).Permute(1, 0, 2, 3).Reshape(24, -1);    // every 2×2 patch's 24 responses
        var second = y.MatMul(y.T()) * (1.0 / y.Size(1));
        var eye = Tensor.Zeros([24, 24], DType.Float64);
        for (int i = 0; i < 12; i++) { eye[i, i] = 1; eye[i + 12, i + 12] = 1; eye[i, i + 12] = -1; eye[i + 12, i] = -1; }
        Helpers.AllClose(eye, second, 1e-8, "E[yyᵀ] = [I −I; −I I]");

        // With the recipe's ε the directions of least variance are damped, never amplified: each response's variance is λ/(λ + ε) ≤ 1.
        var damped = images.Conv2d(Init.PatchWhitening(Tensor.Empty([24, 3, 2, 2], DType.Float64), images), null).Permute(1, 0, 2, 3).Reshape(24, -1);
        var variances = (damped * damped).Mean(1).ToDoubleArray();
        Assert.All(variances, v => Assert.InRange(v, 0.5, 1.0));
        Assert.Throws<ArgumentException>(() => Init.PatchWhitening(Tensor.Empty([12, 3, 2, 2]), images));   // not 2·C·k·l filters
        Assert.Throws<ArgumentException>(() => Init.PatchWhitening(Tensor.Empty([24, 3, 2, 2]), images.Reshape(40, 3, 63)));
    }

    [Fact]
    public void A_whitened_gelu_cnn_trains_all_but_its_frozen_stem_and_its_state_size_is_known_before_building_it()
    {
        var g = new Generator(5);
        var model = Models.Cnn.Create(3, 8, 6, [4, 6], 10, g, convsPerStage: 2, batchNorm: true, poolFirst: true, activation: Models.Activation.Gelu, whiten: 2);
        var stem = Models.Cnn.FirstConv(model)!;
        Assert.Equal((3, 24, new Size2(2, 2)), (stem.InChannels, stem.OutChannels, stem.KernelSize));
        Assert.Contains(model.Children(), c => c.Module is GELU);
        Assert.Equal(Models.Cnn.StateSize(3, 8, 6, [4, 6], 10, convsPerStage: 2, batchNorm: true, whiten: 2), model.StateDict().Values.Sum(t => (long)t.Length));

        var before = stem.Weight.ToFloatArray();
        var bias = stem.Bias!.ToFloatArray();
        var sgd = new Optim.Sgd(model.Parameters(), 0.1, momentum: 0.9);   // a frozen parameter is accepted, as in torch.optim
        model.Forward(Tensor.Normal([5, 3 * 8 * 6], 0, 1, g)).CrossEntropy([1, 2, 3, 4, 5]).Backward();
        Assert.Null(stem.Weight.Grad);
        sgd.Step();
        Assert.Equal(before, stem.Weight.ToFloatArray());
        Assert.NotEqual(bias, stem.Bias!.ToFloatArray());
    }

    [Fact]
    public void Dirac_init_makes_the_identity_convolution_as_torch_dirac()
    {
        var g = new Generator(6);
        var conv = new Conv2d(3, 3, 3, g, padding: Padding2d.Same, bias: false);
        Init.Dirac(conv.Weight);
        var x = Tensor.Normal([2, 3, 5, 4], 0, 1, g);
        Assert.Equal(x.ToFloatArray(), conv.Forward(x).ToFloatArray());
        // torch.nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2): w[0,0,1,1] = w[1,1,1,1] = w[2,0,1,1] = w[3,1,1,1] = 1, the rest 0.
        var w = Init.Dirac(Tensor.Normal([4, 2, 3, 3], 0, 1, g), groups: 2).ToFloatArray();
        int[] ones = [(0 * 2 + 0) * 9 + 4, (1 * 2 + 1) * 9 + 4, (2 * 2 + 0) * 9 + 4, (3 * 2 + 1) * 9 + 4];
        for (int i = 0; i < w.Length; i++) Assert.Equal(ones.Contains(i) ? 1f : 0f, w[i]);
        // On a view of the first filters it leaves the others as drawn.
        var wide = Tensor.Normal([5, 2, 3, 3], 0, 1, g);
        var tail = wide.Narrow(0, 2, 3).ToFloatArray();
        Init.Dirac(wide.Narrow(0, 0, 2));
        Assert.Equal(tail, wide.Narrow(0, 2, 3).ToFloatArray());
        Assert.Equal(1f, wide.ToFloatArray()[4]);
        Assert.Throws<ArgumentException>(() => Init.Dirac(Tensor.Zeros([3, 3])));
        Assert.Throws<ArgumentException>(() => Init.Dirac(Tensor.Zeros([3, 2, 3, 3]), groups: 2));
    }

    [Fact]
    public void The_airbench_style_fixes_batch_norm_scales_starts_convolutions_at_the_identity_and_max_pools_into_a_scaled_bias_free_head()
    {
        var g = new Generator(7);
        var model = Models.Cnn.Create(3, 12, 12, [4, 8], 10, g, convsPerStage: 2, batchNorm: true, poolFirst: true, activation: Models.Activation.Gelu, whiten: 2, style: Models.CnnStyle.Airbench);
        Assert.Equal(Models.Cnn.StateSize(3, 12, 12, [4, 8], 10, convsPerStage: 2, batchNorm: true, whiten: 2, style: Models.CnnStyle.Airbench), model.StateDict().Values.Sum(t => (long)t.Length));
        var norms = model.Children().Select(c => c.Module).OfType<BatchNorm2d>().ToArray();
        Assert.Equal(4, norms.Length);
        Assert.All(norms, n => Assert.Equal((false, 1e-12, 0.4), (n.Weight.RequiresGrad, n.Eps, n.Momentum)));
        var convs = model.Children().Select(c => c.Module).OfType<Conv2d>().Skip(1).ToArray();   // after the stem
        foreach (var conv in convs)
        {
            int n = Math.Min(conv.OutChannels, conv.InChannels);
            var identity = Init.Dirac(Tensor.Zeros([n, conv.InChannels, 3, 3]));
            Assert.Equal(identity.ToFloatArray(), conv.Weight.Narrow(0, 0, n).ToFloatArray());
        }
        var linear = model.Children().Select(c => c.Module).OfType<Linear>().Single();
        Assert.Equal((8, null as Tensor), (linear.InFeatures, linear.Bias));
        Assert.Equal(1.0 / 9, model.Children().Select(c => c.Module).OfType<Scale>().Single().Factor);
        Assert.Equal([2, 10], model.Forward(Tensor.Normal([2, 3 * 12 * 12], 0, 1, g)).Shape.ToArray());
    }
}

public class BatchNormLargeTests
{
    [Fact]
    public void BatchNorm2d_forward_and_backward_match_the_reference_backend_at_training_sizes_on_all_threads()
    {
        var g = new Generator(12);
        var x0 = Tensor.Normal([16, 32, 16, 16], 0.5, 2, g);
        var gamma0 = Tensor.Uniform([32], 0.5, 1.5, g);
        var up = Tensor.Normal([16, 32, 16, 16], 0, 1, g);
        (Tensor, Tensor, Tensor) Run(Backends.IBackend b)
        {
            var x = Helpers.Leaf(x0.Clone().Detach()); var gamma = Helpers.Leaf(gamma0.Clone().Detach()); var beta = Helpers.Leaf(Tensor.Zeros([32]));
            using var _ = Backends.Backend.Use(b);
            var y = x.BatchNorm(gamma, beta);
            (y * up).Sum().Backward();
            return (y.Detach(), x.Grad!, gamma.Grad!);
        }
        var fast = Run(Backends.Backend.Cpu);
        var slow = Run(Backends.Backend.Reference);
        Helpers.AllClose(slow.Item1, fast.Item1, 1e-4, "y");
        Helpers.AllClose(slow.Item2, fast.Item2, 1e-4, "∂x");
        Helpers.AllClose(slow.Item3, fast.Item3, 1e-3, "∂γ");
    }
}
