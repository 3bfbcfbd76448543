using Backprop.Nn;

namespace Backprop.Models;

/// <summary>
/// Builds convolutional classifiers over images given as rows of C·H·W values (as the data loaders give them):
/// Unflatten → stages of (Conv k×k "same" → [BatchNorm2d] → ReLU) × convs per stage → MaxPool 2×2 (without batch norm the
/// pooling runs before the ReLU: the same function, cheaper; with <c>poolFirst</c> it follows each stage's first
/// convolution: Conv → MaxPool → BatchNorm2d → ReLU → (Conv → BatchNorm2d → ReLU)*) → Flatten →
/// (Linear → ReLU → [Dropout])* → Linear. A convolution followed by batch normalisation has no bias (the β of the
/// normalisation takes its place, as in ResNet-style networks). The activation may be another (GELU, as airbench); an
/// optional stem first, a frozen k×k patch-whitening convolution without padding (<see cref="Nn.Init.PatchWhitening"/>)
/// and the activation, decorrelates the pixels the first stage sees (Keller Jordan's airbench recipe for CIFAR-10).
/// </summary>
public static class Cnn
{
    /// <param name="widths">Output channels of each stage, e.g. [32, 64]; each stage pools 2×2 once (at its end, or after its first convolution with <paramref name="poolFirst"/>).</param>
    /// <param name="hidden">Widths of the fully connected layers after the convolutions ([] for a linear classifier).</param>
    /// <param name="poolFirst">
    /// Pool right after each stage's first convolution, before its normalisation and ReLU (as fast CIFAR-10 recipes do):
    /// the normalisation then sees the pooled map (its statistics differ), at a quarter of its and the activation's
    /// memory traffic, and a stage's further convolutions run at the pooled size (a quarter of their cost).
    /// </param>
    public static Sequential Create(int channels, int height, int width, IReadOnlyList<int> widths, int classes, Generator generator,
        int kernel = 3, int convsPerStage = 1, bool batchNorm = false, IReadOnlyList<int>? hidden = null, double dropout = 0,
        DType dtype = DType.Float32, bool poolFirst = false, Activation activation = Activation.Relu, int whiten = 0, CnnStyle style = CnnStyle.Standard)
    {
        if (channels <= 0 || height <= 0 || width <= 0) throw new ArgumentException($"Cnn: image size {channels}×{height}×{width} must be positive");
        if (widths.Count == 0 || widths.Any(w => w <= 0)) throw new ArgumentException($"Cnn: conv widths ({string.Join(",", widths)}) must be positive and at least one");
        if (kernel <= 0 || convsPerStage <= 0) throw new ArgumentException($"Cnn: kernel {kernel} and convs per stage {convsPerStage} must be positive");
        if (whiten < 0 || whiten > Math.Min(height, width)) throw new ArgumentException($"Cnn: a {whiten}×{whiten} whitening stem does not fit a {height}×{width} image");
        int h = height - Math.Max(whiten - 1, 0), w = width - Math.Max(whiten - 1, 0);
        foreach (var _ in widths)
        {
            if (h < 2 || w < 2) throw new ArgumentException($"Cnn: {widths.Count} stages of 2×2 pooling do not fit a {height}×{width} image");
            h /= 2; w /= 2;
        }
        bool airbench = style == CnnStyle.Airbench;
        var net = new Sequential(new Unflatten(1, channels, height, width));
        int c = channels;
        if (whiten > 0)
        {
            // A frozen patch-whitening convolution (its weights come from the data: Init.PatchWhitening); its bias trains.
            var stem = new Conv2d(c, WhitenedChannels(c, whiten), whiten, generator, dtype: dtype);
            stem.Weight.RequiresGrad = false;
            net.Add(stem);
            net.Add(Mlp.Layer(activation));
            c = stem.OutChannels;
        }
        foreach (int k in widths)
            for (int i = 0; i < convsPerStage; i++)
            {
                bool last = i == convsPerStage - 1;
                // Without batch norm, pooling before a monotone activation (not GELU) is the same function with the same
                // gradients (max and ReLU commute, and the first maximum is the same element), at a quarter of its memory traffic.
                bool monotone = activation != Activation.Gelu;
                bool poolNext = poolFirst ? i == 0 : last && !batchNorm && monotone;
                var conv = new Conv2d(c, k, kernel, generator, padding: Padding2d.Same, bias: !batchNorm, dtype: dtype);
                // An identity in the first min(k, c) filters (the rest as drawn): each convolution starts near a residual block.
                if (airbench) Init.Dirac(conv.Weight.Narrow(0, 0, Math.Min(k, c)));
                net.Add(conv);
                if (poolNext) net.Add(new MaxPool2d(2));
                if (batchNorm)
                {
                    var norm = airbench ? new BatchNorm2d(k, eps: 1e-12, momentum: 0.4, dtype: dtype) : new BatchNorm2d(k, dtype: dtype);
                    if (airbench) norm.Weight.RequiresGrad = false;   // γ stays 1: the convolutions before are scale-free, weight decay sets their step
                    net.Add(norm);
                }
                net.Add(Mlp.Layer(activation));
                if (last && !poolFirst && (batchNorm || !monotone)) net.Add(new MaxPool2d(2));
                c = k;
            }
        if (airbench) net.Add(new GlobalMaxPool2d());
        net.Add(new Flatten());
        int features = airbench ? c : c * h * w;
        foreach (int units in hidden ?? [])
        {
            net.Add(new Linear(features, units, generator, dtype: dtype));
            net.Add(Mlp.Layer(activation));
            if (dropout > 0) net.Add(new Dropout(dropout, generator));
            features = units;
        }
        net.Add(new Linear(features, classes, generator, bias: !airbench, dtype: dtype));
        if (airbench) net.Add(new Scale(1.0 / 9));
        return net;
    }

    /// <summary>
    /// The number of values in the state dict of <see cref="Create"/>'s network (parameters and batch-norm statistics),
    /// computed without building it: to check a file's tensors before allocating a model its settings declare.
    /// </summary>
    public static long StateSize(int channels, int height, int width, IReadOnlyList<int> widths, int classes,
        int kernel = 3, int convsPerStage = 1, bool batchNorm = false, IReadOnlyList<int>? hidden = null, int whiten = 0, CnnStyle style = CnnStyle.Standard)
    {
        long total = 0, c = channels, h = height - Math.Max(whiten - 1, 0), w = width - Math.Max(whiten - 1, 0);
        if (whiten > 0)
        {
            long k = WhitenedChannels(channels, whiten);
            total += k * channels * whiten * whiten + k;
            c = k;
        }
        foreach (int k in widths)
        {
            for (int i = 0; i < convsPerStage; i++) { total += (long)kernel * kernel * c * k + (batchNorm ? 4L * k : k); c = k; }
            h /= 2; w /= 2;
        }
        long features = style == CnnStyle.Airbench ? c : c * h * w;
        foreach (int units in hidden ?? []) { total += features * units + units; features = units; }
        return total + features * classes + (style == CnnStyle.Airbench ? 0 : classes);
    }

    /// <summary>Channels of a k×k patch-whitening stem over <paramref name="channels"/> input channels: each whitened direction and its negative.</summary>
    public static int WhitenedChannels(int channels, int kernel) => 2 * channels * kernel * kernel;

    /// <summary>The first convolution (whose filters are drawn as images).</summary>
    public static Conv2d? FirstConv(Module model)
    {
        if (model is Conv2d c) return c;
        foreach (var (_, child) in model.Children())
            if (FirstConv(child) is Conv2d found) return found;
        return null;
    }
}

/// <summary>How <see cref="Cnn.Create"/> details its network.</summary>
public enum CnnStyle
{
    /// <summary>PyTorch's defaults: Kaiming-uniform convolutions, batch norm with a trained γ, flattened features into a Linear with bias.</summary>
    Standard,
    /// <summary>
    /// Keller Jordan's airbench choices (94% on CIFAR-10 in a few GPU-seconds): each convolution's first filters start as
    /// the identity (Dirac), batch norm keeps γ = 1 with ε 1e-12 and momentum 0.4 (statistics that follow fast-moving
    /// weights), and the head is a global max pool into a bias-free Linear whose logits are scaled by 1/9.
    /// </summary>
    Airbench,
}

/// <summary>
/// Test-time flip averaging: the log of the mean of the model's class probabilities for each image and its left–right
/// mirror; with <c>translate</c>, as airbench's level 2, those two views weigh half and the other half goes to the four
/// views shifted one pixel up-left and down-right (reflection-padded), mirrored or not. For evaluation (in training mode it
/// would train on every view); the inner model's parameters are its own.
/// </summary>
public sealed class FlipAveraging : Module
{
    readonly Module inner;
    readonly int channels, height, width;
    readonly bool translate;

    public FlipAveraging(Module inner, int channels, int height, int width, bool translate = false)
    {
        this.inner = RegisterModule("inner", inner);
        this.channels = channels; this.height = height; this.width = width; this.translate = translate;
    }

    public override Tensor Forward(Tensor input)
    {
        var p = Views(input);
        if (translate)
            p = p * 0.5 + (Views(Data.Augment.Translate(input, channels, height, width, 1, 1))
                + Views(Data.Augment.Translate(input, channels, height, width, -1, -1))) * 0.25;
        return p.Log();
    }

    Tensor Views(Tensor x) => (inner.Forward(x).Softmax() + inner.Forward(Data.Augment.Mirror(x, channels, height, width)).Softmax()) * 0.5;
}
