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
        var cmd = new Command("gradcheck", "Check every backward pass against numerical gradients (float64, central differences)") { json, filter, seeds };
        cmd.SetAction(r => Run(r.GetValue(json), r.GetValue(filter), Validate.Positive(r.GetValue(seeds), "--seeds")));
        return cmd;
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
        if (json)
        {
            using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
            w.WriteStartArray();
            foreach (var (name, err) in rows)
            {
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteNumber("max_rel_error", err);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
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
