namespace Backprop.Nn;

/// <summary>
/// Inverted dropout: in training, y = x ⊙ M with Mⱼ = 0 if rⱼ &lt; p else 1/(1 − p), so E[y] = x and eval mode
/// is the identity. The mask of the last forward pass is kept in <see cref="LastMask"/>.
/// </summary>
public sealed class Dropout : Module
{
    readonly Generator generator;

    public Dropout(double p, Generator generator)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: p must be in [0, 1)");
        P = p;
        this.generator = generator;
    }

    public double P { get; }

    /// <summary>The mask drawn by the most recent training-mode forward pass .</summary>
    public Tensor? LastMask { get; private set; }

    public override Tensor Forward(Tensor input)
    {
        if (!IsTrainingNow || P == 0) return input;
        LastMask = Ops.DropoutMask(input.Shape, P, generator, input.DType);
        return input.Dropout(LastMask);
    }

    protected override string ExtraRepr() => $"p={P}";
}

/// <summary>
/// Channel dropout, as torch.nn.Dropout2d: in training each (sample, channel) plane of (N, C, H, W) is zeroed with
/// probability p and the others scaled by 1/(1 − p); eval mode is the identity.
/// </summary>
public sealed class Dropout2d : Module
{
    readonly Generator generator;

    public Dropout2d(double p, Generator generator)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout2d: p must be in [0, 1)");
        P = p;
        this.generator = generator;
    }

    public double P { get; }

    public override Tensor Forward(Tensor input)
    {
        if (input.Rank is not (3 or 4)) throw new ArgumentException($"Dropout2d: expected (N, C, H, W) or (C, H, W), got {ShapeUtil.Format(input.Shape.ToArray())}");
        if (!IsTrainingNow || P == 0) return input;
        int[] maskShape = input.Rank == 4 ? [input.Size(0), input.Size(1), 1, 1] : [input.Size(0), 1, 1];
        return input.Dropout(Ops.DropoutMask(maskShape, P, generator, input.DType));
    }

    protected override string ExtraRepr() => $"p={P}";
}
