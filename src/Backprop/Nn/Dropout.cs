namespace Backprop.Nn;

/// <summary>
/// What the dropout layers share: in training, y = x ⊙ M with M drawn per forward pass (0 with probability p, else
/// 1/(1 − p), broadcast over the dimensions the mask leaves at 1), so E[y] = x; eval mode is the identity. The mask
/// of the last forward pass is kept in <see cref="LastMask"/>. Subclasses give the mask's shape.
/// </summary>
public abstract class DropoutBase : Module
{
    readonly Generator generator;

    private protected DropoutBase(string layer, double p, Generator generator)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, $"{layer}: p must be in [0, 1)");
        P = p;
        this.generator = generator;
    }

    public double P { get; }

    /// <summary>The mask drawn by the most recent training-mode forward pass.</summary>
    public Tensor? LastMask { get; private set; }

    /// <summary>The mask's shape for this input (checking the input's rank where the layer needs one).</summary>
    private protected abstract int[] MaskShape(Tensor input);

    public override Tensor Forward(Tensor input)
    {
        var shape = MaskShape(input);
        if (!IsTrainingNow || P == 0) return input;
        LastMask = Ops.DropoutMask(shape, P, generator, input.DType);
        return input.Dropout(LastMask);
    }

    protected override string ExtraRepr() => $"p={P}";
}

/// <summary>Inverted dropout of each element, as torch.nn.Dropout.</summary>
public sealed class Dropout(double p, Generator generator) : DropoutBase("Dropout", p, generator)
{
    private protected override int[] MaskShape(Tensor input) => input.Shape.ToArray();
}

/// <summary>
/// Channel dropout, as torch.nn.Dropout2d: in training each (sample, channel) plane of (N, C, H, W) — or channel of
/// (C, H, W) — is zeroed with probability p and the others scaled by 1/(1 − p).
/// </summary>
public sealed class Dropout2d(double p, Generator generator) : DropoutBase("Dropout2d", p, generator)
{
    private protected override int[] MaskShape(Tensor input) => input.Rank switch
    {
        4 => [input.Size(0), input.Size(1), 1, 1],
        3 => [input.Size(0), 1, 1],
        _ => throw new ArgumentException($"Dropout2d: expected (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(input.Shape.ToArray())}"),
    };
}
