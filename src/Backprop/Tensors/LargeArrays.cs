using System.Runtime.CompilerServices;

namespace Backprop;

/// <summary>
/// Storage arrays of 1 MB and more — or from the GC's large-object threshold where that is lower, as it is by default
/// (85,000 bytes) — handed out again once the GC has proved them unreachable. A fresh large array costs page faults
/// and the kernel's zeroing on its first touch — a conv net's step allocates tens of MB of activations and gradients,
/// and `bench --workload W9` spent a quarter of its time there — which warm memory avoids. Below the threshold arrays
/// come from gen 0, cheap to allocate and to collect; between it and 1 MB, in an application that keeps the default
/// (the `backprop` command raises it to 16 MB), they would fill the large-object heap and prompt full collections:
/// W9's second shape (200 KB input gradients) ran at 75–92 GFLOP/s there against 115–122 with the raised threshold,
/// and 115–134 once this pool took them.
/// </summary>
/// <remarks>
/// Soundness: each array handed out gets a sentinel with a finalizer, held in a ConditionalWeakTable keyed by the
/// array, so the sentinel is reachable exactly as long as the array is: through a storage, a view, a span or a pinned
/// pointer on any thread. Only when nothing references the array does the GC finalize the sentinel, which puts the
/// array in the pool; nothing a user can reach shares memory with an array handed out again.
/// A sentinel finalized for the first time only re-registers itself: in that collection a user object with a finalizer
/// of its own may still reach the array (finalization order is not defined, and such an object may resurrect itself).
/// If the array is still reachable afterwards, the table keeps the sentinel alive; only a second finalization, in a
/// later collection, pools the array.
/// Large arrays die only in full (gen-2) collections, which allocation from the pool no longer prompts: once 64 MB
/// have been handed out since the last one, a miss runs one (without waiting for finalizers, so it cannot deadlock),
/// and the arrays it frees serve the next calls. When collections return nothing (large tensors being kept, as when a
/// dataset is loaded), that amount doubles, up to 1 GB. Arrays left unused through a full collection are dropped, so an
/// idle pool shrinks with the next collection; it never holds more than 1 GB.
/// </remarks>
internal static class LargeArrays
{
    const long FirstCollectAfter = 64L << 20, MaxPooled = 1L << 30;
    // The GC raises a configured threshold below 85,000 bytes to that; it counts the array's 24-byte header, this the data.
    /// <summary>The smallest array size, in bytes, recycled here.</summary>
    internal static readonly long MinBytes = Math.Min(1L << 20, Math.Max(85_000,
        GC.GetConfigurationVariables().TryGetValue("LOHThreshold", out var threshold) ? Convert.ToInt64(threshold) : 85_000) - 24);

    static readonly ConditionalWeakTable<Array, Sentinel> sentinels = new();
    static readonly Dictionary<(bool Double, int Length), Stack<(Array Array, int Collections)>> free = [];
    static readonly object gate = new();
    static long pooled, lent, collectAfter = FirstCollectAfter, returned;
    static int collections;

    static LargeArrays() => _ = new Trimmer();

    /// <summary>An array of <paramref name="length"/> elements, contents undefined; null below the size handled here.</summary>
    public static T[]? Rent<T>(int length) where T : unmanaged
    {
        long bytes = (long)length * Unsafe.SizeOf<T>();
        if (bytes < MinBytes) return null;
        var array = Take((typeof(T) == typeof(double), length), bytes, out bool collect);
        if (collect) GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
        array ??= GC.AllocateUninitializedArray<T>(length);
        sentinels.AddOrUpdate(array, new Sentinel(array));
        return (T[])array;
    }

    static Array? Take((bool, int) key, long bytes, out bool collect)
    {
        lock (gate)
        {
            collect = false;
            lent += bytes;
            if (free.TryGetValue(key, out var stack) && stack.Count > 0)
            {
                pooled -= bytes;
                return stack.Pop().Array;
            }
            if (lent > collectAfter)
            {
                // Nothing came back since the last forced collection: the large arrays are being kept, so collect less often.
                collectAfter = returned == 0 ? Math.Min(2 * collectAfter, MaxPooled) : FirstCollectAfter;
                collect = true; lent = 0; returned = 0;
            }
            return null;
        }
    }

    static long Bytes(Array array) => (long)array.Length * (array is double[] ? 8 : 4);

    static void Return(Array array)
    {
        long bytes = Bytes(array);
        lock (gate)
        {
            if (pooled + bytes > MaxPooled) return;   // dropped: the GC frees it
            var key = (array is double[], array.Length);
            if (!free.TryGetValue(key, out var stack)) free[key] = stack = new();
            stack.Push((array, collections));
            pooled += bytes;
            returned += bytes;
        }
    }

    /// <summary>After each full collection: drops the arrays that waited through the whole previous interval.</summary>
    static void Trim()
    {
        lock (gate)
        {
            int now = GC.CollectionCount(2);
            if (now == collections) return;
            int before = collections;
            collections = now;
            lent = 0;
            foreach (var stack in free.Values)
            {
                var entries = stack.ToArray();   // newest first
                stack.Clear();
                for (int i = entries.Length - 1; i >= 0; i--)
                    if (entries[i].Collections >= before) stack.Push(entries[i]);
                    else pooled -= Bytes(entries[i].Array);
            }
        }
    }

    sealed class Sentinel(Array array)
    {
        bool once;

        ~Sentinel()
        {
            if (once) { Return(array); return; }
            once = true;
            GC.ReRegisterForFinalize(this);
        }
    }

    // Finalized after every collection that finds it unreachable, which once it is in gen 2 means every full one.
    sealed class Trimmer
    {
        ~Trimmer()
        {
            Trim();
            GC.ReRegisterForFinalize(this);
        }
    }
}
