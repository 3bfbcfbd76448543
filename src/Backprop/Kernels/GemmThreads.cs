using System.Numerics;

namespace Backprop.Kernels;

// Threading: a product is cut into contiguous shares, columns when there are enough of them (each share packs
// only its own columns of B, the operand packed once per call), rows otherwise. There are a few shares per
// thread, claimed one at a time from a counter, so a thread the OS parks for a while (a shared machine) delays
// the call by one share, not by half the product. Helpers run on thread-pool threads through reusable work
// items; the calling thread claims shares too, so a busy pool delays nothing and a call allocates nothing.
internal static unsafe partial class Gemm
{
    // Waking a pool thread and splitting the packing costs a few microseconds; below ~2 M multiply-adds per
    // thread (≈ 20 µs on one core) that is more than another core saves. (16×784)·(784×50), 0.6 M, stays on one.
    const long MinMacsPerThread = 2L << 20;

    // Up to this many shares per thread, for load balance. But each column share re-packs all of A (m×k), a
    // cost of ~1/(share width) of its multiply-adds at a few times the price of each, so extra shares are cut
    // only while they stay ≥ 256 columns (row shares re-pack B: ≥ 128 rows). Measured: 256² split into eight
    // 32-column shares lost 15% of per-core speed to packing.
    const int SharesPerThread = 4, MinShareColumns = 256, MinShareRows = 128;

    static int ThreadsFor(int m, int n, int k)
    {
        long macs = (long)m * n * k;
        int byWork = (int)Math.Min(int.MaxValue, macs / MinMacsPerThread);
        return Math.Max(1, Math.Min(Math.Min(Parallelism.MaxThreads, Environment.ProcessorCount), byWork));
    }

    sealed class Job<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] static Job<T>? current;

        public static Job<T> ForThisThread() => current ??= new Job<T>();

        GemmPath path;
        Problem<T> problem;
        bool splitColumns;
        int shareSize, shares, next, remaining;
        Helper[] helpers = [];
        // Completion: spin briefly, then sleep on a monitor. Not ManualResetEventSlim, which allocates its lock
        // object the first time a wait has to block, so a call would allocate whenever a helper ran late.
        readonly object gate = new();

        public void Run(GemmPath path, in Problem<T> p, int threads)
        {
            // Columns in NR multiples when each thread gets at least two micro-panels, else rows in MR multiples.
            var (mr, nr) = Tile<T>(path);
            splitColumns = p.N >= 2 * nr * threads || p.N >= p.M;
            int unit = splitColumns ? nr : mr, extent = splitColumns ? p.N : p.M;
            int maxShares = Math.Clamp(extent / (splitColumns ? MinShareColumns : MinShareRows), threads, threads * SharesPerThread);
            int units = (extent + unit - 1) / unit;
            shareSize = unit * Math.Max(1, (units + maxShares - 1) / maxShares);
            shares = (extent + shareSize - 1) / shareSize;
            if (shares <= 1) { Gemm.Run(path, p); return; }
            int helpersNeeded = Math.Min(threads, shares) - 1;
            if (helpers.Length < helpersNeeded)
            {
                var h = new Helper[helpersNeeded];
                for (int i = 0; i < h.Length; i++) h[i] = i < helpers.Length ? helpers[i] : new Helper(this);
                helpers = h;
            }

            // Publish the job before opening the counter: a helper still queued from an earlier call may
            // start claiming as soon as `next` is reset, and must then see this job's fields.
            this.path = path;
            problem = p;
            remaining = shares;
            Volatile.Write(ref next, 0);
            for (int i = 0; i < helpersNeeded; i++) ThreadPool.UnsafeQueueUserWorkItem(helpers[i], preferLocal: false);
            Work();
            WaitForShares();
            Volatile.Write(ref next, int.MaxValue / 2);   // late helpers find nothing to claim
        }

        void Work()
        {
            int share;
            while ((share = Interlocked.Increment(ref next) - 1) < shares)
            {
                int start = share * shareSize;
                if (splitColumns) Gemm.Run(path, problem.Cols(start, Math.Min(shareSize, problem.N - start)));
                else Gemm.Run(path, problem.Rows(start, Math.Min(shareSize, problem.M - start)));
                if (Interlocked.Decrement(ref remaining) == 0)
                    lock (gate) Monitor.PulseAll(gate);
            }
        }

        void WaitForShares()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref remaining) != 0 && !spin.NextSpinWillYield) spin.SpinOnce();
            if (Volatile.Read(ref remaining) == 0) return;
            lock (gate)
                while (Volatile.Read(ref remaining) != 0) Monitor.Wait(gate);
        }

        sealed class Helper(Job<T> job) : IThreadPoolWorkItem
        {
            public void Execute() => job.Work();
        }
    }
}
