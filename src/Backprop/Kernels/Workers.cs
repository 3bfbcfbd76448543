namespace Backprop.Kernels;

/// <summary>Work shared by the threads of one <see cref="Workers.Run"/> call: each participant calls <see cref="Work"/>,
/// which claims pieces of the job from the job's own counter until none is left.</summary>
internal interface IForkJoinJob
{
    void Work();

    /// <summary>Leaves nothing more to claim (a participant failed): the others stop after their current piece.</summary>
    void Cancel();
}

/// <summary>
/// Fork-join helpers for the kernels: dedicated background threads that, after a job, spin for a short while waiting
/// for the next one before they sleep.
/// </summary>
/// <remarks>
/// Training alternates multi-threaded products with short single-threaded stretches (pointwise ops, the optimizer).
/// A thread-pool helper sleeps in those stretches, and waking it took 50–700 µs per product on the 2-core Zen 4
/// machine (measured at the helper's first instruction) — a third of a 1.5 ms GEMM when it came late. A helper that
/// spins for <see cref="SpinMicroseconds"/> after each job starts the next within a microsecond; one that has slept
/// is woken as before. Any thread may call <see cref="Run"/>, but the helpers serve one call at a time: a call made
/// while they are busy (another thread's product, or a kernel called from inside a job) gets <c>false</c> and runs
/// its own fallback. Which thread runs which piece never changes a result: jobs split work so that each output
/// element is computed by exactly one participant, in a fixed order.
/// </remarks>
internal static class Workers
{
    // Long enough to bridge the single-threaded stretches of a training step — W2's optimizer step takes ~0.85 ms —
    // and short enough that an idle process stops spinning almost at once. (OpenMP runtimes, libtorch's threads, spin
    // similarly before they sleep.)
    const int SpinMicroseconds = 1000;

    static Helper[] helpers = [];
    static int busy;
    static readonly object creating = new();

    /// <summary>Helper threads available (one fewer than the processors).</summary>
    public static int Count => Math.Max(0, Environment.ProcessorCount - 1);

    /// <summary>Threads for a call with work enough for <paramref name="shares"/> threads: at least one, at most
    /// <see cref="Parallelism.MaxThreads"/> and the processors.</summary>
    public static int ThreadsFor(long shares) => (int)Math.Clamp(shares, 1, Math.Min(Parallelism.MaxThreads, Environment.ProcessorCount));

    /// <summary>Runs body(start, length) over [0, n) cut into <paramref name="pieces"/> consecutive ranges, as <see cref="For"/>.</summary>
    public static void ForRanges(int n, int pieces, int threads, Action<int, int> body)
    {
        int piece = (n + pieces - 1) / pieces;
        For(pieces, threads, i =>
        {
            int start = i * piece, length = Math.Min(piece, n - start);
            if (length > 0) body(start, length);
        });
    }

    /// <summary>
    /// Runs <paramref name="job"/> on the calling thread and on up to <paramref name="helpersWanted"/> helpers, and returns
    /// <c>true</c> once every participant has returned from <see cref="IForkJoinJob.Work"/>; returns <c>false</c> at once,
    /// without running anything, when the helpers are serving another call.
    /// </summary>
    public static bool Run(IForkJoinJob job, int helpersWanted)
    {
        if (Interlocked.CompareExchange(ref busy, 1, 0) != 0) return false;
        try
        {
            var team = Team(Math.Clamp(helpersWanted, 0, Count));
            int posted = 0;
            Exception? failure = null;
            try
            {
                for (; posted < team.Length; posted++) team[posted].Offer(job);   // cannot throw
                for (int i = 0; i < team.Length; i++) team[i].Wake();
                job.Work();
            }
            catch
            {
                job.Cancel();
                throw;
            }
            finally
            {
                // Every helper has left the job before the call returns or throws: the caller may reuse it, and the
                // memory its pieces point into may be unpinned, at once. Retire neither sleeps nor blocks, so it cannot
                // be interrupted (Thread.Interrupt) half-way.
                for (int i = 0; i < posted; i++)
                {
                    var thrown = team[i].Retire();
                    failure ??= thrown;
                }
            }
            if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            return true;
        }
        finally { Volatile.Write(ref busy, 0); }
    }

    /// <summary>
    /// Runs body(0 … count−1) on the calling thread and up to <paramref name="threads"/> − 1 helpers; each index runs on
    /// one thread, in pieces claimed from a counter (eight per thread, so a thread the OS parks delays one piece).
    /// </summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (threads <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        var job = ForJob.Rent();
        job.Set(count, Math.Max(1, count / (threads * 8)), body);
        try
        {
            if (!Run(job, threads - 1)) job.Work();
        }
        finally { ForJob.Return(job); }
    }

    sealed class ForJob : IForkJoinJob
    {
        [ThreadStatic] static ForJob? spare;
        Action<int>? body;
        int count, piece, next;

        // One per thread, reused; a body that calls For again on the same thread gets a fresh one.
        public static ForJob Rent()
        {
            var job = spare ?? new ForJob();
            spare = null;
            return job;
        }

        public static void Return(ForJob job)
        {
            job.body = null;
            spare = job;
        }

        public void Set(int count, int piece, Action<int> body) => (this.count, this.piece, this.body, next) = (count, piece, body, 0);

        public void Cancel() => Volatile.Write(ref next, count);

        public void Work()
        {
            int start;
            while ((start = Interlocked.Add(ref next, piece) - piece) < count)
                for (int i = start, end = Math.Min(count, start + piece); i < end; i++) body!(i);
        }
    }

    static ReadOnlySpan<Helper> Team(int wanted)
    {
        var h = helpers;
        if (h.Length < wanted)
            lock (creating)
            {
                h = helpers;
                if (h.Length < wanted)
                {
                    var grown = new Helper[wanted];
                    h.CopyTo(grown, 0);
                    for (int i = h.Length; i < wanted; i++) grown[i] = new Helper(i);
                    helpers = h = grown;
                }
            }
        return h.AsSpan(0, wanted);
    }

    sealed class Helper
    {
        const int Idle = 0, Posted = 1, Running = 2;
        int state;
        int sleeping;
        IForkJoinJob? job;
        Exception? failure;
        readonly object gate = new();

        // UnsafeStart: the helper must not keep the creating thread's async-local state (a Parallelism.Use scope) for good.
        public Helper(int index) =>
            new Thread(Loop) { IsBackground = true, Name = $"Backprop worker {index + 1}" }.UnsafeStart();

        public void Offer(IForkJoinJob work)
        {
            job = work;
            Interlocked.Exchange(ref state, Posted);   // full fence: the job is visible first, and `sleeping` is read after (Wake)
        }

        public void Wake()
        {
            if (Volatile.Read(ref sleeping) != 0)
                lock (gate) Monitor.Pulse(gate);
        }

        /// <summary>
        /// Takes the job back if the helper has not started it (the caller did all the work), else waits for it to
        /// finish; returns what the job threw on this helper, if anything.
        /// </summary>
        public Exception? Retire()
        {
            if (Interlocked.CompareExchange(ref state, Idle, Posted) == Posted) return null;
            // The helper is inside a piece: spin, yielding now and then to a thread the OS may want on this core; never
            // sleep (SpinWait's default sleeps 1 ms, and any sleep can throw ThreadInterruptedException).
            for (int spins = 1; Volatile.Read(ref state) != Idle; spins++)
                if (spins % 64 == 0) Thread.Yield(); else Thread.SpinWait(20);
            var e = failure;
            failure = null;
            return e;
        }

        void Loop()
        {
            while (true)
            {
                WaitForPost();
                if (Interlocked.CompareExchange(ref state, Running, Posted) != Posted) continue;   // retracted
                try { job!.Work(); }
                catch (Exception e)
                {
                    failure = e;   // rethrown on the calling thread by Run
                    job!.Cancel();
                }
                finally { job = null; Volatile.Write(ref state, Idle); }
            }
        }

        void WaitForPost()
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * SpinMicroseconds / 1_000_000;
            for (int spins = 1; Volatile.Read(ref state) != Posted; spins++)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() < until)
                {
                    if (spins % 64 == 0) Thread.Yield(); else Thread.SpinWait(20);   // yield: another thread may need this core
                    continue;
                }
                lock (gate)
                {
                    Interlocked.Exchange(ref sleeping, 1);   // full fence before re-reading state (Post writes state, then reads this)
                    while (Volatile.Read(ref state) != Posted) Monitor.Wait(gate);
                    Volatile.Write(ref sleeping, 0);
                }
            }
        }
    }
}
