using System.Reflection;
using System.Runtime.InteropServices;

namespace Backprop.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, bound to MPICH's C ABI (libmpich.so.12). Handles are MPICH's
/// integer constants from its mpi.h (MPICH 3.x/4.x, which share this ABI); a test reads them back from the header.
/// </summary>
internal static partial class Mpi
{
    const string Library = "mpich";

    // From MPICH 4.0.2's mpi.h (Debian's libmpich-dev: /usr/include/x86_64-linux-gnu/mpich/mpi.h).
    public const int CommWorld = 0x44000000;           // MPI_COMM_WORLD
    public const int Byte = 0x4c00010d;                // MPI_BYTE
    public const int Float = 0x4c00040a;               // MPI_FLOAT
    public const int Double = 0x4c00080b;              // MPI_DOUBLE
    public const int Sum = 0x58000003;                 // MPI_SUM
    public const int Success = 0;                      // MPI_SUCCESS
    public const int ThreadFunneled = 1;               // MPI_THREAD_FUNNELED
    public const int RequestNull = 0x2c000000;         // MPI_REQUEST_NULL
    public static readonly IntPtr InPlace = -1;        // MPI_IN_PLACE: (void *) -1
    public static readonly IntPtr StatusIgnore = 1;    // MPI_STATUS_IGNORE: (MPI_Status *) 1

    /// <summary>The file names tried, in order: MPICH's ABI-stable soname first.</summary>
    public static readonly string[] Candidates = ["libmpich.so.12", "libmpich.so", "libmpi.so.12"];

    static Mpi() => NativeLibrary.SetDllImportResolver(typeof(Mpi).Assembly, Resolve);

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library) return IntPtr.Zero;
        foreach (var candidate in Candidates)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        throw new DllNotFoundException("MPI: MPICH's library (libmpich.so.12) was not found; install MPICH " +
            "(Debian/Ubuntu: apt-get install mpich) and start the ranks with mpiexec");
    }

    [LibraryImport(Library, EntryPoint = "MPI_Init_thread")] public static unsafe partial int InitThread(int* argc, IntPtr* argv, int required, out int provided);
    [LibraryImport(Library, EntryPoint = "MPI_Initialized")] public static partial int Initialized(out int flag);
    [LibraryImport(Library, EntryPoint = "MPI_Finalized")] public static partial int Finalized(out int flag);
    [LibraryImport(Library, EntryPoint = "MPI_Finalize")] public static partial int Finalize();
    [LibraryImport(Library, EntryPoint = "MPI_Comm_rank")] public static partial int CommRank(int comm, out int rank);
    [LibraryImport(Library, EntryPoint = "MPI_Comm_size")] public static partial int CommSize(int comm, out int size);
    [LibraryImport(Library, EntryPoint = "MPI_Abort")] public static partial int Abort(int comm, int errorCode);
    [LibraryImport(Library, EntryPoint = "MPI_Ibarrier")] public static partial int Ibarrier(int comm, out int request);
    [LibraryImport(Library, EntryPoint = "MPI_Ibcast")] public static partial int Ibcast(IntPtr buffer, int count, int datatype, int root, int comm, out int request);
    [LibraryImport(Library, EntryPoint = "MPI_Iallreduce")] public static partial int Iallreduce(IntPtr send, IntPtr receive, int count, int datatype, int op, int comm, out int request);
    [LibraryImport(Library, EntryPoint = "MPI_Iallgather")] public static partial int Iallgather(IntPtr send, int sendCount, int sendType, IntPtr receive, int receiveCount, int receiveType, int comm, out int request);
    [LibraryImport(Library, EntryPoint = "MPI_Test")] public static partial int Test(ref int request, out int flag, IntPtr status);
    [LibraryImport(Library, EntryPoint = "MPI_Get_library_version")] public static unsafe partial int GetLibraryVersion(byte* version, out int length);
}
