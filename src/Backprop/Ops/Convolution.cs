using Backprop.Backends;

namespace Backprop;

/// <summary>A pair of sizes along height and width; an int means the same for both, as PyTorch's int-or-tuple arguments.</summary>
public readonly record struct Size2(int Height, int Width)
{
    public static implicit operator Size2(int size) => new(size, size);
    public static implicit operator Size2((int Height, int Width) size) => new(size.Height, size.Width);
    public override string ToString() => Height == Width ? $"{Height}" : $"({Height}, {Width})";
}

/// <summary>A convolution's padding: explicit sizes, or <see cref="Same"/> (output size = input size at stride 1) or <see cref="Valid"/> (none).</summary>
public readonly record struct Padding2d(int Height, int Width, bool IsSame = false)
{
    public static Padding2d Same { get; } = new(0, 0, true);
    public static Padding2d Valid { get; } = new(0, 0);
    public static implicit operator Padding2d(int size) => new(size, size);
    public static implicit operator Padding2d((int Height, int Width) size) => new(size.Height, size.Width);
    public override string ToString() => IsSame ? "same" : Height == Width ? $"{Height}" : $"({Height}, {Width})";
}

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of x (N, C, H, W) — or unbatched (C, H, W) —
    /// with weight (K, C/groups, KH, KW) and an optional bias (K):
    /// y[n, k, i, j] = b[k] + Σ_{c ∈ group(k), p, q} W[k, c, p, q] · x[n, c, i·s − pad + p·d, j·s − pad + q·d].
    /// </summary>
    public static Tensor Conv2d(this Tensor x, Tensor weight, Tensor? bias = null, Size2? stride = null, Padding2d padding = default,
        Size2? dilation = null, int groups = 1)
    {
        if (x.Rank == 3) return x.Unsqueeze(0).Conv2d(weight, bias, stride, padding, dilation, groups).Squeeze(0);
        var g = ConvGeometry("conv2d", x, weight, bias, stride ?? 1, padding, dilation ?? 1, groups);
        var y = Tensor.Uninitialized([g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], x.DType);
        Backend.Current.Conv2d(x, weight, bias, y, g);
        if (!Autograd.Recording(x, weight, bias)) return y;
        return bias is null ? new Conv2dOp(x, weight, g, padding).Attach(y, x, weight) : new Conv2dOp(x, weight, g, padding).Attach(y, x, weight, bias);
    }

    // ∂L/∂x = conv2d's input gradient (the transposed convolution of G with W),
    // ∂L/∂W[k, c, p, q] = Σ_{n, i, j} G[n, k, i, j] · x[n, c, i·s − pad + p·d, j·s − pad + q·d],  ∂L/∂b[k] = Σ_{n, i, j} G[n, k, i, j]
    internal sealed class Conv2dOp : Function
    {
        readonly Conv2dGeometry g;
        readonly Padding2d padding;
        public Conv2dOp(Tensor x, Tensor weight, Conv2dGeometry g, Padding2d padding) { this.g = g; this.padding = padding; SaveForBackward(x, weight); }
        public override string Name => "conv2d";
        public override IEnumerable<(string, object)> Attributes => ConvAttributes(g, padding);
        protected override Tensor?[] Backward(Tensor gy)
        {
            Tensor x = Saved(0), w = Saved(1);
            return [
                NeedsInputGrad(0) ? ConvInputGrad(gy, w, g, x.shape) : null,
                NeedsInputGrad(1) ? ConvWeightGrad(x, gy, g, w.shape) : null,
                NeedsInputGrad(2) ? ChannelTotals(gy) : null];
        }
    }

    /// <summary>
    /// 2-D transposed convolution (torch.nn.functional.conv_transpose2d) of x (N, C_in, H, W) with weight
    /// (C_in, C_out/groups, KH, KW): the gradient of conv2d with respect to its input, so that
    /// H_out = (H − 1)·s − 2·pad + d·(KH − 1) + output_padding + 1. output_padding must be smaller than the stride.
    /// </summary>
    public static Tensor ConvTranspose2d(this Tensor x, Tensor weight, Tensor? bias = null, Size2? stride = null, Size2? padding = null,
        Size2? outputPadding = null, int groups = 1, Size2? dilation = null)
    {
        if (x.Rank == 3) return x.Unsqueeze(0).ConvTranspose2d(weight, bias, stride, padding, outputPadding, groups, dilation).Squeeze(0);
        Size2 s = stride ?? 1, p = padding ?? 0, op = outputPadding ?? 0, d = dilation ?? 1;
        if (x.Rank != 4) throw new ArgumentException($"conv_transpose2d: input must be (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(x.shape)}");
        if (weight.Rank != 4) throw new ArgumentException($"conv_transpose2d: weight must be (C_in, C_out/groups, KH, KW), got {ShapeUtil.Format(weight.shape)}");
        if (op.Height < 0 || op.Width < 0 || op.Height >= s.Height || op.Width >= s.Width)
            throw new ArgumentException($"conv_transpose2d: output_padding {op} must be non-negative and smaller than the stride {s}");
        if (groups < 1 || weight.shape[0] % groups != 0)
            throw new ArgumentException($"conv_transpose2d: groups {groups} must be positive and divide the weight's first dimension {weight.shape[0]}");
        int outH = (x.shape[2] - 1) * s.Height - 2 * p.Height + d.Height * (weight.shape[2] - 1) + op.Height + 1;
        int outW = (x.shape[3] - 1) * s.Width - 2 * p.Width + d.Width * (weight.shape[3] - 1) + op.Width + 1;
        if (outH <= 0 || outW <= 0) throw new ArgumentException($"conv_transpose2d: input {ShapeUtil.Format(x.shape)} gives an empty output ({outH}×{outW})");
        // The convolution this is the input gradient of: input (N, C_out, outH, outW) → output (N, C_in, H, W).
        var cg = new Conv2dGeometry(x.shape[0], weight.shape[1] * groups, outH, outW, weight.shape[0], weight.shape[2], weight.shape[3],
            s.Height, s.Width, p.Height, p.Height, p.Width, p.Width, d.Height, d.Width, groups);
        if (x.shape[1] != weight.shape[0] || x.DType != weight.DType)
            throw new ArgumentException($"conv_transpose2d: input {ShapeUtil.Format(x.shape)} {x.DType} does not match weight {ShapeUtil.Format(weight.shape)} {weight.DType} (C_in first)");
        if (bias is not null && (bias.Rank != 1 || bias.shape[0] != cg.InChannels || bias.DType != x.DType))
            throw new ArgumentException($"conv_transpose2d: bias {ShapeUtil.Format(bias.shape)} {bias.DType} must be ({cg.InChannels}) {x.DType}");
        if (cg.OutHeight != x.shape[2] || cg.OutWidth != x.shape[3]) throw new InvalidOperationException("conv_transpose2d: internal error: geometry mismatch");
        var y = Tensor.Uninitialized([cg.Batch, cg.InChannels, outH, outW], x.DType);
        Backend.Current.Conv2dInputGrad(x, weight, y, cg);
        if (bias is not null) AddPerChannel(y, bias);
        if (!Autograd.Recording(x, weight, bias)) return y;
        var f = new ConvTranspose2dOp(x, weight, cg, op);
        return bias is null ? f.Attach(y, x, weight) : f.Attach(y, x, weight, bias);
    }

    // y = Cᵀ(x) for the convolution C above:  ∂L/∂x = C(G) (a convolution of G),  ∂L/∂W = C's weight gradient with G as its
    // input and x as its output gradient,  ∂L/∂b[c] = Σ_{n, i, j} G[n, c, i, j]
    internal sealed class ConvTranspose2dOp : Function
    {
        readonly Conv2dGeometry g;
        readonly Size2 outputPadding;
        public ConvTranspose2dOp(Tensor x, Tensor weight, Conv2dGeometry g, Size2 outputPadding) { this.g = g; this.outputPadding = outputPadding; SaveForBackward(x, weight); }
        public override string Name => "conv_transpose2d";
        public override IEnumerable<(string, object)> Attributes =>
            [.. ConvAttributes(g, new Padding2d(g.PadTop, g.PadLeft)), ("output_padding", outputPadding)];
        protected override Tensor?[] Backward(Tensor gy)
        {
            Tensor x = Saved(0), w = Saved(1);
            Tensor? gx = null, gw = null;
            if (NeedsInputGrad(0))
            {
                gx = Tensor.Uninitialized((int[])x.shape.Clone(), x.DType);
                Backend.Current.Conv2d(gy, w, null, gx, g);
            }
            if (NeedsInputGrad(1)) gw = ConvWeightGrad(gy, x, g, w.shape);
            return [gx, gw, NeedsInputGrad(2) ? ChannelTotals(gy) : null];
        }
    }

    static IEnumerable<(string, object)> ConvAttributes(Conv2dGeometry g, Padding2d padding) =>
    [
        ("kernel_size", new Size2(g.KernelHeight, g.KernelWidth)), ("stride", new Size2(g.StrideHeight, g.StrideWidth)),
        ("padding", padding), ("dilation", new Size2(g.DilationHeight, g.DilationWidth)), ("groups", g.Groups),
        ("pads", new[] { g.PadTop, g.PadLeft, g.PadBottom, g.PadRight }),
    ];

    static Tensor ConvInputGrad(Tensor gy, Tensor w, in Conv2dGeometry g, int[] xShape)
    {
        var gx = Tensor.Uninitialized((int[])xShape.Clone(), gy.DType);
        Backend.Current.Conv2dInputGrad(gy, w, gx, g);
        return gx;
    }

    static Tensor ConvWeightGrad(Tensor x, Tensor gy, in Conv2dGeometry g, int[] wShape)
    {
        var gw = Tensor.Uninitialized((int[])wShape.Clone(), gy.DType);
        Backend.Current.Conv2dWeightGrad(x, gy, gw, g);
        return gw;
    }

    /// <summary>Σ over every dimension but 1 of a (N, C, …) tensor: a per-channel bias's gradient.</summary>
    static Tensor ChannelTotals(Tensor g)
    {
        var sums = Tensor.Uninitialized([g.shape[1]], g.DType);
        Backend.Current.ChannelSums(g.Reshape(g.shape[0], g.shape[1], -1), null, sums, null);
        return sums;
    }

    /// <summary>y[:, c, …] += b[c] in place, on a tensor the caller has just made.</summary>
    static void AddPerChannel(Tensor y, Tensor b)
    {
        var y3 = y.Detach().Reshape(y.shape[0], y.shape[1], -1);
        var ones = Tensor.Full([y.shape[1]], 1.0, y.DType);
        Backend.Current.ChannelAffine(y3, ones, null, null, b.Detach(), y3);
    }

    static Conv2dGeometry ConvGeometry(string op, Tensor x, Tensor w, Tensor? bias, Size2 s, Padding2d p, Size2 d, int groups)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: input must be (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(x.shape)}");
        if (w.Rank != 4) throw new ArgumentException($"{op}: weight must be (K, C/groups, KH, KW), got {ShapeUtil.Format(w.shape)}");
        if (x.DType != w.DType) throw new ArgumentException($"{op}: input is {x.DType} but weight is {w.DType}");
        if (groups < 1) throw new ArgumentException($"{op}: groups must be positive, got {groups}");
        if (s.Height < 1 || s.Width < 1) throw new ArgumentException($"{op}: stride {s} must be positive");
        if (d.Height < 1 || d.Width < 1) throw new ArgumentException($"{op}: dilation {d} must be positive");
        if (!p.IsSame && (p.Height < 0 || p.Width < 0)) throw new ArgumentException($"{op}: padding {p} must be non-negative");
        int n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3], k = w.shape[0], kh = w.shape[2], kw = w.shape[3];
        if (k % groups != 0) throw new ArgumentException($"{op}: {k} output channels are not divisible by groups {groups}");
        if (c != w.shape[1] * groups)
            throw new ArgumentException($"{op}: input {ShapeUtil.Format(x.shape)} has {c} channels but weight {ShapeUtil.Format(w.shape)} with groups={groups} expects {w.shape[1] * groups}");
        if (bias is not null && (bias.Rank != 1 || bias.shape[0] != k || bias.DType != x.DType))
            throw new ArgumentException($"{op}: bias {ShapeUtil.Format(bias.shape)} {bias.DType} must be ({k}) {x.DType}");
        int top = p.Height, bottom = p.Height, left = p.Width, right = p.Width;
        if (p.IsSame)
        {
            if (s.Height != 1 || s.Width != 1) throw new ArgumentException($"{op}: padding 'same' needs stride 1, got {s} (as PyTorch)");
            int th = d.Height * (kh - 1), tw = d.Width * (kw - 1);   // PyTorch puts the odd one at the end
            top = th / 2; bottom = th - top; left = tw / 2; right = tw - left;
        }
        var g = new Conv2dGeometry(n, c, h, wd, k, kh, kw, s.Height, s.Width, top, bottom, left, right, d.Height, d.Width, groups);
        if (h + top + bottom < d.Height * (kh - 1) + 1 || wd + left + right < d.Width * (kw - 1) + 1)
            throw new ArgumentException($"{op}: the padded input ({h + top + bottom}×{wd + left + right}) is smaller than the dilated kernel ({d.Height * (kh - 1) + 1}×{d.Width * (kw - 1) + 1})");
        return g;
    }
}
