using System.Numerics;

namespace Backprop.Kernels;

// Threading: a product is cut into contiguous shares, columns when there are enough of them (each share packs
// only its own columns of B, the operand packed once per call), rows otherwise. There are a few shares per
// thread, claimed one at a time from a counter, so a thread the OS parks for a while (a shared machine) delays
// the call by one share, not by half the product. The helpers are the kernels' own spinning threads (Workers); the
// calling thread claims shares too, so a late helper delays nothing, and a call allocates nothing.
internal static unsafe partial class Gemm
{
    // Handing a share to a spinning helper costs about a microsecond, and each share re-packs its operand: below
    // ~256 K multiply-adds per thread (≈ 3 µs on one core) that is more than another core saves. (16×784)·(784×50),
    // 0.6 M, now splits in two: 62 -> 87 GFLOP/s on the Zen 4 machine (2 M was the bound while helpers were
    // thread-pool work items that took tens of microseconds to wake).
    const long MinMacsPerThread = 256L << 10;

    // Up to this many shares per thread, for load balance. But each column share re-packs all of A (m×k), a
    // cost of ~1/(share width) of its multiply-adds at a few times the price of each, so extra shares are cut
    // only while they stay ≥ 256 columns (512 for an A over 4 MB, below; row shares re-pack B: ≥ 128 rows).
    // Measured: 256² split into eight 32-column shares lost 15% of per-core speed to packing.
    const int SharesPerThread = 4, MinShareColumns = 256, MinShareRows = 128;

    // An A too large for the caches is re-read from memory by every column share's packing, both threads at once: from
    // 4 MB of A on, column shares are cut no narrower than 512 (2048²: 4 shares instead of 8). Measured (Intel Xeon
    // family 6 model 207, 2 threads, `quick`, seven interleaved pairs on a noisy machine): 2048² median 267 → 283
    // GFLOP/s (268 271 258 272 238 228 267 → 287 295 283 251 283 272 254); 1024² (A 4 MB) and 512² the same either way.
    const long LargeABytes = 4L << 20;

    // A product under 32 deep whose C fits L2 — a Linear layer's weight gradient on a small batch — stays on the calling
    // thread: its cost is writing C, and split between the cores C would land half in each one's cache, for the
    // optimizer's step on this thread to pull back. W1 (its 784×50 gradient 16 deep), eight interleaved pairs on the Intel
    // model 167 machine: Trainer median 135,500 → 145,200 samples/s (7 pairs of 8 faster), the plain loop faster in all 8.
    const int ShallowDepth = 32;
    const long ShallowMaxOutputs = 128 * 1024;

    static int ThreadsFor(int m, int n, int k) =>
        k < ShallowDepth && (long)m * n <= ShallowMaxOutputs ? 1 : Workers.ThreadsFor((long)m * n * k / MinMacsPerThread);

    sealed class Job<T> : IForkJoinJob where T : unmanaged, IFloatingPointIeee754<T>
    {
        [ThreadStatic] static Job<T>? current;

        public static Job<T> ForThisThread() => current ??= new Job<T>();

        GemmPath path;
        Problem<T> problem;
        bool splitColumns, rowTimesRows;
        int shareSize, shares, next;

        public void Run(GemmPath path, in Problem<T> p, int threads)
        {
            // Columns in NR multiples when each thread gets at least two micro-panels, else rows in MR multiples.
            var (mr, nr) = Tile<T>(path);
            splitColumns = p.N >= 2 * nr * threads || p.N >= p.M;
            int unit = splitColumns ? nr : mr, extent = splitColumns ? p.N : p.M;
            int minColumns = (long)p.M * p.K * sizeof(T) > LargeABytes ? 2 * MinShareColumns : MinShareColumns;
            int maxShares = Math.Clamp(extent / (splitColumns ? minColumns : MinShareRows), threads, threads * SharesPerThread);
            int units = (extent + unit - 1) / unit;
            shareSize = unit * Math.Max(1, (units + maxShares - 1) / maxShares);
            shares = (extent + shareSize - 1) / shareSize;
            if (shares <= 1) { Gemm.Run(path, p); return; }
            this.path = path;
            problem = p;
            // The kernel is chosen once for the whole product: a one-row share of a blocked product must not become a
            // matrix-vector pass, whose sums run in another order (17 rows split 16 + 1 changed row 16's values).
            rowTimesRows = IsRowTimesRows(path, p);
            next = 0;
            // Helpers busy with another call: the caller takes every share itself (same shares, same result).
            if (!Workers.Run(this, Math.Min(threads, shares) - 1)) Work();
        }

        public void Work()
        {
            int share;
            while ((share = Interlocked.Increment(ref next) - 1) < shares)
            {
                int start = share * shareSize;
                var part = splitColumns ? problem.Cols(start, Math.Min(shareSize, problem.N - start)) : problem.Rows(start, Math.Min(shareSize, problem.M - start));
                if (rowTimesRows) RowTimesRows(path, part);
                else RunBlocked(path, part);
            }
        }

        public void Cancel() => Volatile.Write(ref next, shares);
    }
}
