using System.CommandLine;
using Backprop.Distributed;

namespace Backprop.Cli;

/// <summary>
/// <c>--distributed</c>: this process's place in an MPI job (<c>mpiexec -n N backprop train --distributed …</c>). Rank 0
/// reports and writes the run folder; the others train silently. An error on any rank aborts the whole job.
/// </summary>
internal sealed class Distribution : IDisposable
{
    public static readonly Option<bool> Enabled = new("--distributed")
    {
        Description = "Data-parallel training across the ranks of `mpiexec -n N` (MPICH): --batch-size is per rank, rank 0 writes the run folder",
    };
    public static readonly Option<double?> Timeout = new("--timeout")
    {
        Description = "--distributed: seconds a rank waits for the others in a collective before aborting the job [default: 30]",
    };
    public static readonly Option<bool> CheckEveryStep = new("--check-replicas")
    {
        Description = "--distributed: verify after every step (not only every epoch) that all ranks hold bitwise the same weights",
    };

    /// <summary>The running job, for the error handler (null outside distributed runs).</summary>
    public static Distribution? Current { get; private set; }

    Distribution(MpiProcessGroup group) => Group = group;

    public MpiProcessGroup Group { get; }
    public int Rank => Group.Rank;
    public int Size => Group.Size;
    public bool IsLeader => Group.Rank == 0;

    /// <summary>Ranks on this machine (hydra's MPI_LOCALNRANKS), which share its cores.</summary>
    public int LocalRanks => int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALNRANKS"), out int n) && n > 0 ? n : Size;

    public static Distribution? Start(ParseResult r)
    {
        if (!r.GetValue(Enabled)) return null;
        double seconds = r.GetValue(Timeout) ?? 30;
        if (!(seconds > 0 && seconds <= 86_400)) throw new ArgumentException($"--timeout: {seconds} must be in (0, 86400] seconds");
        var d = new Distribution(MpiProcessGroup.Start(TimeSpan.FromSeconds(seconds)));
        Current = d;
        ConsoleOutput.Muted = !d.IsLeader;
        Console.Error.WriteLine($"backprop: rank {d.Rank} of {d.Size} (pid {Environment.ProcessId}, {Environment.MachineName}, {d.Group.LibraryVersion})");
        return d;
    }

    /// <summary>Waits for every rank, allowing up to an hour (loading or downloading data, clearing a run folder).</summary>
    public void StartupBarrier() => Group.Barrier(TimeSpan.FromHours(1));

    /// <summary>Prints the error and ends every rank (a rank that stops alone would leave the others waiting).</summary>
    public void Fail(string message) => Group.Abort(message);

    public void Dispose()
    {
        Current = null;
        ConsoleOutput.Muted = false;
        Group.Dispose();
    }
}
