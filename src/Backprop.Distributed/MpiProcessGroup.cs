using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Backprop.Training;

namespace Backprop.Distributed;

/// <summary>
/// The MPI process group (MPI_COMM_WORLD) for data-parallel training: start the ranks with <c>mpiexec -n N</c>, call
/// <see cref="Start"/> once per process, and dispose it at the end. Every collective is non-blocking MPI polled
/// against <see cref="Timeout"/>: a rank that stops answering (hung, or dead while the launcher keeps the job) makes
/// the others abort the whole job with a message naming the collective, rather than wait forever. Collectives are
/// called from one thread (MPI_THREAD_FUNNELED); the kernels' own threads never touch MPI.
/// </summary>
public sealed class MpiProcessGroup : IProcessGroup, IDisposable
{
    const int Chunk = 1 << 28;   // elements per call: MPI counts are 32-bit
    bool disposed;

    MpiProcessGroup(int rank, int size, TimeSpan timeout, string version)
    {
        Rank = rank; Size = size; Timeout = timeout; LibraryVersion = version;
    }

    public int Rank { get; }
    public int Size { get; }

    /// <summary>How long a collective may wait for the other ranks before the job is aborted.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>MPI_Get_library_version's first line (e.g. "MPICH Version: 4.0.2").</summary>
    public string LibraryVersion { get; }

    /// <summary>Initialises MPI (once per process) and returns the world group; a missing MPICH raises <see cref="DllNotFoundException"/> saying what to install.</summary>
    public static unsafe MpiProcessGroup Start(TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        if (limit <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "MPI: the collective timeout must be positive");
        Check(Mpi.Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0) Check(Mpi.InitThread(null, null, Mpi.ThreadFunneled, out _), "MPI_Init_thread");
        Check(Mpi.CommRank(Mpi.CommWorld, out int rank), "MPI_Comm_rank");
        Check(Mpi.CommSize(Mpi.CommWorld, out int size), "MPI_Comm_size");
        var buffer = new byte[8192];   // MPI_MAX_LIBRARY_VERSION_STRING
        string version = "MPI";
        fixed (byte* p = buffer)
            if (Mpi.GetLibraryVersion(p, out int length) == Mpi.Success)
                version = string.Join(" ", Encoding.ASCII.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length)).Split('\n')[0].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return new MpiProcessGroup(rank, size, limit, version);
    }

    public unsafe void AllReduceSum(Span<float> values)
    {
        fixed (float* p = values)
            for (int at = 0; at < values.Length; at += Chunk)
            {
                Check(Mpi.Iallreduce(Mpi.InPlace, (IntPtr)(p + at), Math.Min(Chunk, values.Length - at), Mpi.Float, Mpi.Sum, Mpi.CommWorld, out int request), "MPI_Iallreduce");
                Wait(ref request, "an all-reduce");
            }
    }

    public unsafe void AllReduceSum(Span<double> values)
    {
        fixed (double* p = values)
            for (int at = 0; at < values.Length; at += Chunk)
            {
                Check(Mpi.Iallreduce(Mpi.InPlace, (IntPtr)(p + at), Math.Min(Chunk, values.Length - at), Mpi.Double, Mpi.Sum, Mpi.CommWorld, out int request), "MPI_Iallreduce");
                Wait(ref request, "an all-reduce");
            }
    }

    public unsafe void Broadcast(Span<byte> data, int root)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"MPI: root must be a rank in [0, {Size})");
        fixed (byte* p = data)
            for (int at = 0; at < data.Length; at += Chunk)
            {
                Check(Mpi.Ibcast((IntPtr)(p + at), Math.Min(Chunk, data.Length - at), Mpi.Byte, root, Mpi.CommWorld, out int request), "MPI_Ibcast");
                Wait(ref request, "a broadcast");
            }
    }

    public unsafe void AllGather(ReadOnlySpan<double> mine, Span<double> all)
    {
        if (all.Length != mine.Length * Size) throw new ArgumentException($"MPI: all-gather of {mine.Length} values from {Size} ranks needs {mine.Length * Size}, not {all.Length}");
        if (mine.Length > Chunk) throw new ArgumentException($"MPI: all-gather of more than {Chunk} values per rank");
        fixed (double* send = mine)
        fixed (double* receive = all)
        {
            Check(Mpi.Iallgather((IntPtr)send, mine.Length, Mpi.Double, (IntPtr)receive, mine.Length, Mpi.Double, Mpi.CommWorld, out int request), "MPI_Iallgather");
            Wait(ref request, "an all-gather");
        }
    }

    public void Barrier() => Barrier(Timeout);

    /// <summary>A barrier with its own time limit (start-up steps may take longer than any collective).</summary>
    public void Barrier(TimeSpan timeout)
    {
        Check(Mpi.Ibarrier(Mpi.CommWorld, out int request), "MPI_Ibarrier");
        Wait(ref request, "a barrier", timeout);
    }

    // MPICH progresses a non-blocking collective inside MPI_Test, so the wait polls without sleeping (as its blocking
    // calls do), yielding the core between polls, and checks the clock every few hundred polls.
    void Wait(ref int request, string what) => Wait(ref request, what, Timeout);

    void Wait(ref int request, string what, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        for (int polls = 0; ; polls++)
        {
            // A failed test leaves the operation in flight, writing into buffers that are unpinned (and reused) once this
            // returns or throws: the job ends here instead.
            int code = Mpi.Test(ref request, out int done, Mpi.StatusIgnore);
            if (code != Mpi.Success) Abort($"MPI_Test failed with error code {code} in {what}, the operation still in flight; aborting the job");
            if (done != 0) return;
            if (polls > 64) { if (clock.ElapsedMilliseconds > 1000) Thread.Sleep(1); else Thread.Yield(); }   // a long wait (start-up) stops burning the core
            if ((polls & 255) == 0 && clock.Elapsed > timeout)
                Abort($"no answer from the other ranks for {timeout.TotalSeconds:0} s in {what}: a rank has died or hangs; aborting the job");
        }
    }

    /// <summary>Prints the reason on standard error and ends every rank of the job (MPI_Abort); does not return.</summary>
    public void Abort(string message, int exitCode = 1)
    {
        Console.Error.WriteLine($"backprop: rank {Rank} of {Size}: {message}");
        Console.Error.Flush();
        Mpi.Abort(Mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);   // MPI_Abort ends the process; this only runs if an MPI did not
    }

    static void Check(int code, string call)
    {
        if (code != Mpi.Success) throw new InvalidOperationException($"MPI: {call} failed with error code {code}");
    }

    /// <summary>Finalises MPI (every rank must reach this).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (Mpi.Finalized(out int finalized) == Mpi.Success && finalized == 0) Mpi.Finalize();
    }
}
