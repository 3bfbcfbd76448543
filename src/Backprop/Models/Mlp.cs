using Backprop.Nn;

namespace Backprop.Models;

public enum Activation { Relu, Sigmoid, Tanh, Gelu }

/// <summary>Builds fully connected classifiers: [Dropout] → (Linear → [BatchNorm1d] → f → [Dropout])* → Linear.</summary>
public static class Mlp
{
    /// <param name="hidden">Hidden widths, e.g. [50] or [1024, 1024].</param>
    /// <param name="dropout">Drop probability after each hidden activation (0 = none).</param>
    /// <param name="inputDropout">Drop probability on the inputs (0 = none).</param>
    public static Sequential Create(int inputs, IReadOnlyList<int> hidden, int classes, Generator generator,
        Activation activation = Activation.Relu, double dropout = 0, double inputDropout = 0, bool batchNorm = false,
        double? initStd = null, DType dtype = DType.Float32)
    {
        var net = new Sequential();
        if (inputDropout > 0) net.Add(new Dropout(inputDropout, generator));
        int width = inputs;
        foreach (int h in hidden)
        {
            net.Add(new Linear(width, h, generator, std: initStd, dtype: dtype));
            if (batchNorm) net.Add(new BatchNorm1d(h, dtype: dtype));
            net.Add(Layer(activation));
            if (dropout > 0) net.Add(new Dropout(dropout, generator));
            width = h;
        }
        net.Add(new Linear(width, classes, generator, std: initStd, dtype: dtype));
        return net;
    }

    /// <summary>The module of an activation (GELU exact, as torch.nn.GELU's default).</summary>
    public static Module Layer(Activation activation) => activation switch
    {
        Activation.Relu => new ReLU(),
        Activation.Sigmoid => new Sigmoid(),
        Activation.Tanh => new Tanh(),
        Activation.Gelu => new GELU(),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, null),
    };

    /// <summary>The first Linear layer (whose weights are drawn as images).</summary>
    public static Linear? FirstLinear(Module model)
    {
        if (model is Linear l) return l;
        foreach (var (_, child) in model.Children())
            if (FirstLinear(child) is Linear found) return found;
        return null;
    }
}
