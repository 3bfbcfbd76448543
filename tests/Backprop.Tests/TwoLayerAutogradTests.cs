using Backprop.Models;
using Backprop.Nn;

namespace Backprop.Tests;

/// <summary>
/// The library's 2-layer model — Linear(D,H) → ReLU → Linear(H,C), CrossEntropy + L2Penalty(λ, W1, W2), with
/// autograd — is the hand-written TwoLayerNet: same loss and gradients (float64, 1e-12) for the same weights and
/// batch. Linear stores W as (out, in), TwoLayerNet as (in, out), so the weights cross over transposed.
/// </summary>
public class TwoLayerAutogradTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.25)]
    public void Library_model_matches_the_manual_two_layer_net(double reg)
    {
        const int n = 32, d = 48, h = 20, c = 10;
        var rng = new NumpyRandom(7);
        var manual = new TwoLayerNet(d, h, c, rng, std: 0.1, dtype: DType.Float64);
        using (Autograd.NoGrad())
        {
            manual.Params["b1"].CopyFrom(rng.RandnTensor(h) * 0.1);   // non-zero biases, so their gradients are exercised too
            manual.Params["b2"].CopyFrom(rng.RandnTensor(c) * 0.1);
        }
        var x = rng.RandnTensor(n, d);
        var y = rng.RandInt(0, c, n).Select(v => (int)v).ToArray();

        var g = new Generator(0);
        var fc1 = new Linear(d, h, g, dtype: DType.Float64);
        var fc2 = new Linear(h, c, g, dtype: DType.Float64);
        var model = new Sequential(fc1, new ReLU(), fc2);
        using (Autograd.NoGrad())
        {
            fc1.Weight.CopyFrom(manual.Params["W1"].T());
            fc1.Bias!.CopyFrom(manual.Params["b1"]);
            fc2.Weight.CopyFrom(manual.Params["W2"].T());
            fc2.Bias!.CopyFrom(manual.Params["b2"]);
        }

        var (expectedLoss, grads) = manual.Loss(x, y, reg);
        var loss = model.Forward(x).CrossEntropy(y) + Ops.L2Penalty(reg, fc1.Weight, fc2.Weight);
        loss.Backward();

        Helpers.Close(expectedLoss, loss.Item(), 1e-12, "loss");
        Helpers.AllClose(grads["W1"].T(), fc1.Weight.Grad!, 1e-12, "dW1ᵀ");
        Helpers.AllClose(grads["b1"], fc1.Bias.Grad!, 1e-12, "db1");
        Helpers.AllClose(grads["W2"].T(), fc2.Weight.Grad!, 1e-12, "dW2ᵀ");
        Helpers.AllClose(grads["b2"], fc2.Bias.Grad!, 1e-12, "db2");
    }
}
