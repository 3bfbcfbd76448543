using Backprop.Diagnostics;

namespace Backprop.Tests;

/// <summary>Every op, module and loss in the gradient-check table agrees with central differences in float64.</summary>
public class GradCheckTests
{
    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in GradCheckSuite.Cases) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Backward_matches_central_differences(string name)
    {
        var c = GradCheckSuite.Cases.Single(x => x.Name == name);
        foreach (var e in GradCheckSuite.Run(c))
            Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"{name}: input '{e.Tensor}' max relative error {e.MaxRelError:E2}");
    }

    [Fact]
    public void Table_covers_the_required_ops()
    {
        string[] required = ["add", "sub", "mul", "div", "matmul", "sum", "mean", "exp", "log", "pow", "sqrt", "relu", "sigmoid", "tanh",
            "sin", "softmax", "log_softmax", "dropout", "batchnorm1d", "linear", "mse", "cross_entropy", "nll", "bce", "bce_with_logits", "l2_penalty"];
        var names = GradCheckSuite.Cases.Select(c => c.Name).ToHashSet();
        Assert.Equal([], required.Where(r => !names.Contains(r)).ToArray());
    }

    [Fact]
    public void A_wrong_backward_is_caught()
    {
        // sin with cos's derivative: the checker must report a large error, not pass it.
        var x = GradCheckSuite.Normal(new Generator(3), 3, 4);
        var errors = GradCheck.Run(() => x.Sin().Detach().Add(x.Cos().Sub(x.Cos().Detach())).Add(x.Sub(x.Detach())), [("x", x)]);
        Assert.True(errors[0].MaxRelError > 1e-3);
    }
}
