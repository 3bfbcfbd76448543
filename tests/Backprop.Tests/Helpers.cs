namespace Backprop.Tests;

internal static class Helpers
{
    /// <summary>The library's gradient-check table and the hand-derived models' rows (Backprop.Classic).</summary>
    public static IReadOnlyList<Diagnostics.GradCheckCase> AllCases { get; } = [.. Diagnostics.GradCheckSuite.Cases, .. Models.ClassicGradCheck.Cases];

    public static void Close(double expected, double actual, double tol, string what = "")
        => Assert.True(Math.Abs(expected - actual) <= tol, $"{what} expected {expected:R}, got {actual:R} (tolerance {tol})");

    public static void AllClose(Tensor expected, Tensor actual, double tol, string what = "")
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        var e = expected.ToDoubleArray(); var a = actual.ToDoubleArray();
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= tol * Math.Max(1, Math.Abs(e[i])), $"{what}[{i}]: expected {e[i]:R}, got {a[i]:R}");
    }

    public static Tensor D(double[,] v) => Tensor.From(v);

    public static Tensor Leaf(Tensor t) { t.RequiresGrad = true; return t; }

    /// <summary>Runs the backprop command in-process, capturing its output (tests using it share the "console" collection).</summary>
    public static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var (so, se) = (new StringWriter(), new StringWriter());
        Console.SetOut(so); Console.SetError(se);
        try { return (Cli.Cli.Run(Cli.Cli.CreateRoot(), args), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }
}
