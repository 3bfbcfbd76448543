using System.Numerics;

namespace Backprop.Kernels;

// Threading: a product is split into one contiguous share per thread, columns when there are enough of them
// (each thread packs only its own columns of B and B is the operand packed once per call), rows otherwise.
// Shares run on thread-pool threads through reusable work items; the calling thread takes share 0 and then
// any share no worker has started yet, so a busy pool delays nothing and a call allocates nothing.
internal static unsafe partial class Gemm
{
    // Waking a pool thread and splitting the packing costs a few microseconds; below ~4 M multiply-adds
    // (≈ 40 µs on one core) that is more than the second core saves. 16×784·784×50 (0.6 M) stays on one thread.
    const long MinMacsPerThread = 2L << 20;

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
        int shareSize, shares, remaining;
        int[] claimed = [];
        Share[] workers = [];
        readonly ManualResetEventSlim done = new(false);

        public void Run(GemmPath path, in Problem<T> p, int threads)
        {
            // Columns in NR multiples when each thread gets at least two micro-panels, else rows in MR multiples.
            var (mr, nr) = Tile<T>(path);
            splitColumns = p.N >= 2 * nr * threads || p.N >= p.M;
            int unit = splitColumns ? nr : mr, extent = splitColumns ? p.N : p.M;
            shareSize = RoundUp((extent + threads - 1) / threads, unit);
            shares = (extent + shareSize - 1) / shareSize;
            if (shares <= 1) { Gemm.Run(path, p); return; }

            if (claimed.Length < shares)
            {
                claimed = new int[shares];
                var w = new Share[shares];
                for (int i = 0; i < shares; i++) w[i] = i < workers.Length ? workers[i] : new Share(this, i);
                workers = w;
            }
            this.path = path;
            problem = p;
            remaining = shares;
            done.Reset();
            for (int i = 0; i < shares; i++) Volatile.Write(ref claimed[i], 0);
            for (int i = 1; i < shares; i++) ThreadPool.UnsafeQueueUserWorkItem(workers[i], preferLocal: false);

            for (int i = 0; i < shares; i++) TryRun(i);
            if (Volatile.Read(ref remaining) != 0) done.Wait();
        }

        void TryRun(int share)
        {
            if (Interlocked.Exchange(ref claimed[share], 1) != 0) return;
            int start = share * shareSize;
            if (splitColumns) Gemm.Run(path, problem.Cols(start, Math.Min(shareSize, problem.N - start)));
            else Gemm.Run(path, problem.Rows(start, Math.Min(shareSize, problem.M - start)));
            if (Interlocked.Decrement(ref remaining) == 0) done.Set();
        }

        sealed class Share(Job<T> job, int index) : IThreadPoolWorkItem
        {
            public void Execute() => job.TryRun(index);
        }
    }
}
