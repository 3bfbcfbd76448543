using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Backprop.Diagnostics;
using Spectre.Console;

namespace Backprop.Cli;

/// <summary><c>backprop gradcheck</c>: every op, module and loss against central differences in float64.</summary>
internal static class GradCheckCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array of {name, max_rel_error} instead of a table" };
        var filter = new Option<string?>("--filter") { Description = "Only cases whose name contains this text" };
        var seeds = new Option<int>("--seeds") { Description = "Check every row at this many seeds (1234, 1, 2, …), inputs drawn afresh at each [default: 1]", DefaultValueFactory = _ => 1 };
        var kernels = new Option<bool>("--kernels") { Description = "Instead: the SIMD kernels against the reference backend in float32, forward and backward, and the fused optimizer updates against their formulas, on the vector path this process runs" };
        var cmd = new Command("gradcheck", "Check every backward pass against numerical gradients (float64, central differences)") { json, filter, seeds, kernels };
        cmd.SetAction(r => r.GetValue(kernels) ? RunKernels(r.GetValue(json), r.GetValue(filter))
            : Run(r.GetValue(json), r.GetValue(filter), Validate.Positive(r.GetValue(seeds), "--seeds")));
        return cmd;
    }

    static int RunKernels(bool json, string? filter)
    {
        bool Wanted(string name) => filter is null || name.Contains(filter, StringComparison.OrdinalIgnoreCase);
        var rows = KernelOracle.Cases.Where(c => Wanted(c.Name)).Select(c => (Name: c.Name, Error: KernelOracle.Compare(c)))
            .Concat(KernelOracle.OptimizerCases.Where(Wanted).Select(name => (Name: name, Error: KernelOracle.CompareOptimizer(name)))).ToList();
        bool Passes(double e) => e <= KernelOracle.Tolerance;   // NaN fails
        if (json) Write(rows, "max_error");
        else
        {
            Console.WriteLine($"vectors: {Kernels.InstructionSets.Runtime} (the runtime's widest), matrix kernels: {Kernels.InstructionSets.Active}");
            var table = new Table().AddColumns("name", "max error / scale", "result");
            foreach (var (name, err) in rows)
                table.AddRow(name, err.ToString("0.00e+00", CultureInfo.InvariantCulture), Passes(err) ? "[green]pass[/]" : "[red]FAIL[/]");
            AnsiConsole.Write(table);
            Console.WriteLine($"{rows.Count(r => Passes(r.Error))}/{rows.Count} SIMD kernels within {KernelOracle.Tolerance:0e+0} of the reference");
        }
        return rows.TrueForAll(r => Passes(r.Error)) ? 0 : 1;
    }

    static void Write(List<(string Name, double Error)> rows, string field)
    {
        using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
        w.WriteStartArray();
        foreach (var (name, err) in rows)
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteNumber(field, err);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    static int Run(bool json, string? filter, int seedCount)
    {
        var rows = new List<(string Name, double Error)>();
        int failures = 0;
        foreach (var c in GradCheckSuite.Cases.Concat(Models.ClassicGradCheck.Cases))
        {
            if (filter is not null && !c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            double worst = 0;
            foreach (var seed in GradCheckSuite.Seeds(seedCount))
            {
                var errors = GradCheckSuite.Run(c, seed);
                double e = errors.Length == 0 ? 0 : errors.Max(x => x.MaxRelError);
                if (!(e < GradCheckSuite.Tolerance)) failures++;
                if (!(e <= worst)) worst = e;
            }
            rows.Add((c.Name, worst));
        }
        bool ok = rows.TrueForAll(r => r.Error < GradCheckSuite.Tolerance);
        if (json) Write(rows, "max_rel_error");
        else
        {
            var table = new Table().AddColumns("name", "max rel. error", "result");
            foreach (var (name, err) in rows)
                table.AddRow(name, err.ToString("0.00e+00", CultureInfo.InvariantCulture), err < GradCheckSuite.Tolerance ? "[green]pass[/]" : "[red]FAIL[/]");
            AnsiConsole.Write(table);
            Console.WriteLine($"{rows.Count(r => r.Error < GradCheckSuite.Tolerance)}/{rows.Count} below {GradCheckSuite.Tolerance:0e+0}" +
                (seedCount > 1 ? $" at all of {seedCount} seeds ({failures} failing row-seed pairs of {rows.Count * seedCount})" : ""));
        }
        return ok ? 0 : 1;
    }
}
