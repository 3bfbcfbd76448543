using System.CommandLine;
using Backprop.Diagnostics;

namespace Backprop.Cli;

/// <summary><c>backprop fuzz</c>: mutation-fuzz the file readers (the test suite runs a few hundred cases each; this runs thousands).</summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var reader = new Option<string>("--reader") { Description = $"{string.Join(" | ", ReaderFuzz.Readers)} | all [default: all]", DefaultValueFactory = _ => "all" };
        var cases = new Option<int>("--cases") { Description = "Mutated files per reader [default: 10000]", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the mutations [default: 1]", DefaultValueFactory = _ => 1 };
        var cmd = new Command("fuzz", "Feed the file readers mutated files: every case must load or raise its documented error, in time and in bounded memory") { reader, cases, seed };
        cmd.SetAction(r =>
        {
            string which = r.GetValue(reader)!;
            int n = Validate.Positive(r.GetValue(cases), "--cases");
            var names = which == "all" ? ReaderFuzz.Readers : [which];
            bool clean = true;
            foreach (var name in names)
            {
                var report = ReaderFuzz.Run(name, n, r.GetValue(seed));
                clean &= report.Clean;
                string undocumented = report.Undocumented.Count == 0 ? "0" : string.Join(", ", report.Undocumented.Select(kv => $"{kv.Key} ×{kv.Value}"));
                Console.WriteLine($"{name,-12} {report.Cases,7:N0} cases: {report.Accepted:N0} loaded, {report.Refused:N0} refused; undocumented exceptions {undocumented}, hangs {report.Hangs}, over-allocations {report.OverAllocations}" +
                    (report.FirstFailure is { } f ? $"\n             first failure: {f}" : ""));
            }
            return clean ? 0 : 1;
        });
        return cmd;
    }
}
