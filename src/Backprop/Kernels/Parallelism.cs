namespace Backprop;

/// <summary>How many threads Backprop's kernels may use (the CLI's <c>--threads</c>).</summary>
public static class Parallelism
{
    static int maxThreads = Environment.ProcessorCount;
    static readonly AsyncLocal<int> scoped = new();   // 0: none; flows with the logical call, as a Trainer's own setting

    /// <summary>Upper bound on worker threads per kernel call; 1 runs everything on the calling thread.</summary>
    public static int MaxThreads
    {
        get => scoped.Value > 0 ? scoped.Value : maxThreads;
        set => maxThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "MaxThreads must be at least 1");
    }

    /// <summary>Uses <paramref name="threads"/> for kernels called in this logical flow until the scope is disposed (disposing twice is harmless).</summary>
    public static IDisposable Use(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be at least 1");
        return new Scope(threads);
    }

    sealed class Scope : IDisposable
    {
        readonly int previous;
        bool disposed;
        public Scope(int threads) { previous = scoped.Value; scoped.Value = threads; }
        public void Dispose() { if (!disposed) { disposed = true; scoped.Value = previous; } }
    }
}
