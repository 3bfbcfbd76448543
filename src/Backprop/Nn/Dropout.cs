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
