namespace Backprop.Nn;

// Stateless layers: each forwards to its op (the derivative lives with the op, not here).

public sealed class ReLU : Module { public override Tensor Forward(Tensor input) => input.Relu(); }

public sealed class Sigmoid : Module { public override Tensor Forward(Tensor input) => input.Sigmoid(); }

public sealed class Tanh : Module { public override Tensor Forward(Tensor input) => input.Tanh(); }

public sealed class Sin : Module { public override Tensor Forward(Tensor input) => input.Sin(); }

public sealed class Identity : Module { public override Tensor Forward(Tensor input) => input; }

public sealed class Softmax(int dim = -1) : Module
{
    public override Tensor Forward(Tensor input) => input.Softmax(dim);
}

public sealed class LogSoftmax(int dim = -1) : Module
{
    public override Tensor Forward(Tensor input) => input.LogSoftmax(dim);
}

public sealed class Flatten(int startDim = 1) : Module
{
    public override Tensor Forward(Tensor input) => input.Flatten(startDim);
}
