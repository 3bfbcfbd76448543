using System.CommandLine;
using Backprop.Diagnostics;

namespace Backprop.Cli;

/// <summary><c>backprop fuzz</c>: mutation-fuzz the file readers (the test suite runs a few hundred cases each; this runs thousands).</summary>
internal static class FuzzCommand
{
    /// <summary>The library's readers plus the CLI's own: run settings (in a model file's metadata) and checkpoints.</summary>
    public static IReadOnlyList<FuzzTarget> Targets { get; } =
    [
        .. ReaderFuzz.Targets,
        new("settings", _ => System.Text.Encoding.UTF8.GetBytes(new TrainSettings { Hidden = [32, 16], Dropout = 0.1 }.ToJson()),
            p => TrainSettings.FromJson(File.ReadAllText(p)), [typeof(InvalidDataException)], "settings.json"),
        new("checkpoint", CheckpointSeed, p => Checkpoint.Load(Path.GetDirectoryName(p)!, SmallModel(), new Optim.Adam(SmallModel().Parameters(), 0.01)),
            [typeof(InvalidDataException)], Checkpoint.FileName),
    ];

    static Nn.Sequential SmallModel() => Models.Mlp.Create(6, [5], 3, new Generator(3), dropout: 0.1, batchNorm: true);

    static byte[] CheckpointSeed(Generator g)
    {
        string dir = Directory.CreateTempSubdirectory("backprop-fuzz-seed-").FullName;
        try
        {
            var model = SmallModel();
            var opt = new Optim.Adam(model.Parameters(), 0.01);
            // One real step so the checkpoint carries optimizer moments and batch-norm running statistics.
            new Training.Trainer(model, opt, static (o, y) => o.CrossEntropy(y)).RunEpoch(1, [(Tensor.Normal([4, 6], 0, 1, g), new[] { 0, 1, 2, 0 })]);
            Checkpoint.Save(dir, model, opt, new Checkpoint.State(1, "{}", [g.State, new Generator(9).State], "epoch,train_loss\n1,0.5\n"));
            return File.ReadAllBytes(Path.Combine(dir, Checkpoint.FileName));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    public static Command Create()
    {
        var reader = new Option<string>("--reader") { Description = $"{string.Join(" | ", Targets.Select(t => t.Name))} | all [default: all]", DefaultValueFactory = _ => "all" };
        var cases = new Option<int>("--cases") { Description = "Mutated files per reader [default: 10000]", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the mutations [default: 1]", DefaultValueFactory = _ => 1 };
        var cmd = new Command("fuzz", "Feed the file readers mutated files: every case must load or raise its documented error, in time and in bounded memory") { reader, cases, seed };
        cmd.SetAction(r =>
        {
            string which = r.GetValue(reader)!;
            int n = Validate.Positive(r.GetValue(cases), "--cases");
            var chosen = which == "all" ? Targets : [Targets.FirstOrDefault(t => t.Name == which) ?? throw new ArgumentException($"--reader: unknown reader '{which}' ({string.Join(", ", Targets.Select(t => t.Name))})")];
            bool clean = true;
            foreach (var target in chosen)
            {
                string name = target.Name;
                var report = ReaderFuzz.Run(target, n, r.GetValue(seed));
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
