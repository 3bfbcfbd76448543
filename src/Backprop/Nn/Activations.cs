namespace Backprop.Nn;

// Stateless layers: each forwards to its op (the derivative lives with the op, not here).

public sealed class ReLU : Module { public override Tensor Forward(Tensor input) => input.Relu(); }

public sealed class Sigmoid : Module { public override Tensor Forward(Tensor input) => input.Sigmoid(); }

public sealed class Tanh : Module { public override Tensor Forward(Tensor input) => input.Tanh(); }

public sealed class Sin : Module { public override Tensor Forward(Tensor input) => input.Sin(); }

public sealed class Identity : Module { public override Tensor Forward(Tensor input) => input; }

/// <summary>Multiplies by a constant (airbench scales its logits by 1/9), as a Lambda(x * factor) would in PyTorch.</summary>
public sealed class Scale(double factor) : Module
{
    public double Factor { get; } = factor;
    public override Tensor Forward(Tensor input) => input * Factor;
    protected override string ExtraRepr() => $"factor={Factor}";
}

public sealed class Softmax(int dim = -1) : Module
{
    public override Tensor Forward(Tensor input) => input.Softmax(dim);
}

public sealed class LogSoftmax(int dim = -1) : Module
{
    public override Tensor Forward(Tensor input) => input.LogSoftmax(dim);
}

public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    public override Tensor Forward(Tensor input) => input.Flatten(startDim, endDim);
    protected override string ExtraRepr() => $"start_dim={startDim}, end_dim={endDim}";
}

/// <summary>Splits dimension <c>dim</c> into <c>sizes</c> (one may be −1), as torch.nn.Unflatten.</summary>
public sealed class Unflatten(int dim, params int[] sizes) : Module
{
    public override Tensor Forward(Tensor input) => input.Unflatten(dim, sizes);
    protected override string ExtraRepr() => $"dim={dim}, unflattened_size=({string.Join(", ", sizes)})";
}

public sealed class LeakyReLU(double negativeSlope = 0.01) : Module
{
    public override Tensor Forward(Tensor input) => input.LeakyRelu(negativeSlope);
    protected override string ExtraRepr() => $"negative_slope={negativeSlope}";
}

public sealed class ELU(double alpha = 1.0) : Module
{
    public override Tensor Forward(Tensor input) => input.Elu(alpha);
    protected override string ExtraRepr() => $"alpha={alpha}";
}

public sealed class GELU(GeluApproximation approximate = GeluApproximation.None) : Module
{
    public override Tensor Forward(Tensor input) => input.Gelu(approximate);
    protected override string ExtraRepr() => $"approximate='{(approximate == GeluApproximation.None ? "none" : "tanh")}'";
}

public sealed class Softplus(double beta = 1, double threshold = 20) : Module
{
    public override Tensor Forward(Tensor input) => input.Softplus(beta, threshold);
    protected override string ExtraRepr() => $"beta={beta}, threshold={threshold}";
}

public sealed class SiLU : Module { public override Tensor Forward(Tensor input) => input.Silu(); }
