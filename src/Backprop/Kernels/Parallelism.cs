namespace Backprop;

/// <summary>How many threads Backprop's kernels may use (the CLI's <c>--threads</c>).</summary>
public static class Parallelism
{
    static int maxThreads = Environment.ProcessorCount;

    /// <summary>Upper bound on worker threads per kernel call; 1 runs everything on the calling thread.</summary>
    public static int MaxThreads
    {
        get => maxThreads;
        set => maxThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "MaxThreads must be at least 1");
    }
}
