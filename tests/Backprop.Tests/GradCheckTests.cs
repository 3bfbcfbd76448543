using Backprop.Diagnostics;

namespace Backprop.Tests;

/// <summary>Every op, module and loss in the gradient-check table agrees with central differences in float64.</summary>
public class GradCheckTests
{
    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Helpers.AllCases) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Backward_matches_central_differences(string name)
    {
        var c = Helpers.AllCases.Single(x => x.Name == name);
        foreach (var e in GradCheckSuite.Run(c))
            Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"{name}: input '{e.Tensor}' max relative error {e.MaxRelError:E2}");
    }

    // CI's handful of seeds (`backprop gradcheck --seeds 50` runs fifty): inputs drawn afresh, same criterion.
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Backward_matches_central_differences_at_other_seeds(string name)
    {
        var c = Helpers.AllCases.Single(x => x.Name == name);
        foreach (var seed in GradCheckSuite.Seeds(5).Skip(1))
            foreach (var e in GradCheckSuite.Run(c, seed))
                Assert.True(e.MaxRelError < GradCheckSuite.Tolerance, $"{name}, seed {seed}: input '{e.Tensor}' error {e.MaxRelError:E2}");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void A_backward_wrong_by_one_part_in_a_million_in_one_element_is_caught(string name)
    {
        var c = Helpers.AllCases.Single(x => x.Name == name);
        var errors = GradCheckSuite.Run(c, fault: 1e-6);
        var clean = GradCheckSuite.Run(c);
        for (int i = 0; i < errors.Length; i++)
        {
            if (clean[i].MaxRelError == 0 && errors[i].MaxRelError == 0) continue;   // an all-zero gradient has nothing to scale
            Assert.True(errors[i].MaxRelError >= GradCheckSuite.Tolerance,
                $"{name}: a 1e-6 relative fault in '{errors[i].Tensor}' went unnoticed (error {errors[i].MaxRelError:E2})");
        }
    }

    [Fact]
    public void Table_covers_the_required_ops()
    {
        string[] required = ["add", "sub", "mul", "div", "matmul", "sum", "mean", "exp", "log", "pow", "sqrt", "relu", "sigmoid", "tanh",
            "sin", "softmax", "log_softmax", "dropout", "batchnorm1d", "linear", "mse", "cross_entropy", "nll", "bce", "bce_with_logits", "l2_penalty"];
        var names = Helpers.AllCases.Select(c => c.Name).ToHashSet();
        Assert.Equal([], required.Where(r => !names.Contains(r)).ToArray());
    }

    [Fact]
    public void Every_op_in_the_registry_appears_in_some_rows_graph()
    {
        var covered = new HashSet<string>();
        foreach (var c in GradCheckSuite.Cases)
        {
            var p = c.Build(new Generator(GradCheckSuite.DefaultSeed));
            covered.UnionWith(OpRegistry.OpsIn(p.Function()));
        }
        Assert.Equal([], OpRegistry.All.Select(o => o.Name).Where(n => !covered.Contains(n)).ToArray());
    }

    [Fact]
    public void Every_function_type_of_the_library_is_in_the_registry()
    {
        var registered = OpRegistry.All.Select(o => o.Function).ToHashSet();
        var types = typeof(Function).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(Function)) && !t.IsAbstract && t.Namespace == "Backprop")
            .Where(t => !registered.Contains(t)).Select(t => t.FullName ?? t.Name).ToArray();
        Assert.Equal([], types);
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
