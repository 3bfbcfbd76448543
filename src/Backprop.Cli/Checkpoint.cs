using System.Globalization;
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Serialization;
using Backprop.Training;

namespace Backprop.Cli;

/// <summary>
/// A run's state after a whole epoch, in <c>checkpoint.safetensors</c> beside its outputs: the model's parameters and
/// buffers (<c>model.*</c>), the optimizer's state (<c>optimizer.*</c>), and in the metadata the options the run was
/// started with, the epoch, every random generator's state and the metrics so far — all a resumed run needs to continue
/// exactly as if it had never stopped (same weights and metrics, bit for bit).
/// </summary>
internal static class Checkpoint
{
    public const string FileName = "checkpoint.safetensors";

    public sealed record State(int Epoch, string Settings, GeneratorState[] Generators, string MetricsCsv);

    public static void Save(string run, Module model, Optimizer optimizer, State state)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in model.StateDict()) tensors["model." + k] = v;
        foreach (var (k, v) in optimizer.StateDict()) tensors["optimizer." + k] = v;
        SafeTensors.Save(Path.Combine(run, FileName), tensors, new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["backprop.epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["backprop.settings"] = state.Settings,
            ["backprop.generators"] = string.Join(";", state.Generators.Select(g => g.ToString())),
            ["backprop.metrics"] = state.MetricsCsv,
        });
    }

    /// <summary>Restores model and optimizer from the run's checkpoint and returns the rest of its state.</summary>
    public static State Load(string run, Module model, Optimizer optimizer)
    {
        string path = Path.Combine(run, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"--resume: {path} not found (was the run started with --checkpoint-every?)");
        var (tensors, meta) = SafeTensors.Load(path);
        string Meta(string key) => meta.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{path}: metadata '{key}' is missing");
        try
        {
            model.LoadStateDict(tensors.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value));
            optimizer.LoadStateDict(tensors.Where(kv => kv.Key.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["optimizer.".Length..], kv => kv.Value));
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: does not fit this run's model and optimizer ({e.Message})", e); }
        if (!int.TryParse(Meta("backprop.epoch"), NumberStyles.None, CultureInfo.InvariantCulture, out int epoch) || epoch < 0)
            throw new InvalidDataException($"{path}: epoch '{Meta("backprop.epoch")}' is not a count");
        GeneratorState[] generators;
        try { generators = [.. Meta("backprop.generators").Split(';').Select(GeneratorState.Parse)]; }
        catch (FormatException e) { throw new InvalidDataException($"{path}: generator states: {e.Message}"); }
        return new State(epoch, Meta("backprop.settings"), generators, Meta("backprop.metrics"));
    }

    /// <summary>The epochs recorded in a metrics.csv written by <c>train</c> (for the final plots and summary).</summary>
    public static List<EpochMetrics> ParseHistory(string csv)
    {
        var history = new List<EpochMetrics>();
        foreach (var line in csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1))
        {
            var f = line.Split(',');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            history.Add(new EpochMetrics(int.Parse(f[0], CultureInfo.InvariantCulture), D(1), D(2), f[3].Length == 0 ? null : D(3), D(4), D(5), D(6)));
        }
        return history;
    }

    public static readonly System.CommandLine.Option<int?> EveryOption = new("--checkpoint-every") { Description = "Write checkpoint.safetensors (model, optimizer, generators, metrics) every N epochs; 0: never [default: 1]" };
    public static readonly System.CommandLine.Option<string?> ResumeOption = new("--resume") { Description = "Continue the run in this folder from its checkpoint (same options; the result equals an uninterrupted run)" };
    public static readonly System.CommandLine.Option<int?> StopAfterOption = new("--stop-after") { Description = "Stop after this many epochs of the schedule, leaving a checkpoint to --resume from (a time-boxed job)" };

    /// <summary>The checkpoint options of a command line, checked.</summary>
    public static (int Every, string? Resume, int StopAfter) Options(System.CommandLine.ParseResult r)
    {
        int every = r.GetValue(EveryOption) ?? 1, stop = r.GetValue(StopAfterOption) ?? int.MaxValue;
        if (every < 0) throw new ArgumentException($"--checkpoint-every: {every} must be ≥ 0");
        if (stop < 1) throw new ArgumentException($"--stop-after: {stop} must be positive");
        return (every, r.GetValue(ResumeOption), stop);
    }

    /// <summary>
    /// One command's checkpointing, shared by train, multitask and vae: restoring a run to resume it, a checkpoint after
    /// each due epoch, stopping after <c>--stop-after</c>, and Ctrl-C or SIGTERM turned into a cancellation the Trainer
    /// honours at the end of its current step.
    /// </summary>
    public sealed class Session : IDisposable
    {
        readonly string run, command, settings;
        readonly Module model;
        readonly Optimizer optimizer;
        readonly Generator[] generators;
        readonly int every, stopAfter, epochs;
        readonly CancellationTokenSource interrupt = new();
        readonly System.Runtime.InteropServices.PosixSignalRegistration sigint, sigterm;

        /// <param name="settings">What must match to resume (the options, minus those that do not change results).</param>
        /// <param name="generators">Every random generator the run draws from after initialisation, in a fixed order.</param>
        public Session(string run, string command, Module model, Optimizer optimizer, string settings, Generator[] generators, int every, int stopAfter, int epochs)
        {
            (this.run, this.command, this.model, this.optimizer, this.settings, this.generators) = (run, command, model, optimizer, settings, generators);
            (this.every, this.stopAfter, this.epochs) = (every, stopAfter, epochs);
            sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; interrupt.Cancel(); });
            sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; interrupt.Cancel(); });
        }

        /// <summary>The metadata an interrupted run's model.safetensors carries, so eval, predict and export can rebuild it.</summary>
        public IReadOnlyDictionary<string, string> ModelMetadata { get; init; } = new Dictionary<string, string> { ["format"] = "pt" };

        /// <summary>False on the ranks of a distributed run other than rank 0: they read a checkpoint to resume but never write one.</summary>
        public bool Writes { get; init; } = true;

        /// <summary>Cancelled by Ctrl-C or SIGTERM.</summary>
        public CancellationToken Interrupted => interrupt.Token;

        public int LastCheckpoint { get; private set; }

        /// <summary>Restores model, optimizer, generators and schedule from the run's checkpoint; returns the epochs done and the metrics so far.</summary>
        public (int Done, string MetricsCsv) Resume(LrScheduler? schedule)
        {
            var state = Load(run, model, optimizer);
            if (state.Settings != settings)
                throw new ArgumentException($"--resume: {run} was trained with other options ({state.Settings}); resume with the same options");
            if (state.Generators.Length != generators.Length)
                throw new InvalidDataException($"{run}: the checkpoint holds {state.Generators.Length} generator states, not {generators.Length}");
            for (int i = 0; i < generators.Length; i++) generators[i].State = state.Generators[i];
            if (schedule is not null) schedule.Epoch = state.Epoch;
            LastCheckpoint = state.Epoch;
            ConsoleOutput.Line($"resuming after epoch {state.Epoch} from {Path.Combine(run, FileName)}");
            return (state.Epoch, state.MetricsCsv);
        }

        /// <summary>After a completed epoch: a checkpoint if one is due; true when <c>--stop-after</c> ends the run here.</summary>
        public bool AfterEpoch(int epoch, string metricsCsv)
        {
            bool stopping = epoch >= stopAfter && epoch < epochs;
            if (((every > 0 && epoch % every == 0) || stopping) && Writes)
            {
                Save(run, model, optimizer, new State(epoch, settings, [.. generators.Select(g => g.State)], metricsCsv));
                LastCheckpoint = epoch;
            }
            if (stopping) ConsoleOutput.Line($"stopped after epoch {epoch} of {epochs}; continue with: backprop {command} --resume {run} (and the same options)");
            return stopping;
        }

        /// <summary>After an interrupt at <paramref name="at"/>: writes the current model and says how to resume; returns exit code 130.</summary>
        public int WriteModelOnInterrupt(string at)
        {
            SafeTensors.Save(Path.Combine(run, "model.safetensors"), model.StateDict(), ModelMetadata);
            Console.Error.WriteLine($"backprop: interrupted {at}; wrote the current model to {run}{ResumeHint}");
            return 130;
        }

        /// <summary>The end of an interrupt message: how to resume, if there is a checkpoint.</summary>
        public string ResumeHint => LastCheckpoint > 0
            ? $"; continue from the checkpoint of epoch {LastCheckpoint} with: backprop {command} --resume {run} (and the same options)"
            : " (no checkpoint yet to resume from)";

        public void Dispose() { sigint.Dispose(); sigterm.Dispose(); interrupt.Dispose(); }
    }
}
