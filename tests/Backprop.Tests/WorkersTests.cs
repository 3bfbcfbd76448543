using Backprop.Kernels;

namespace Backprop.Tests;

/// <summary>The kernels' fork-join helpers: every piece runs once, nothing outlives a call, failures reach the caller.</summary>
public class WorkersTests
{
    [Theory]
    [InlineData(2, 2), InlineData(3, 2), InlineData(17, 2), InlineData(1000, 2), InlineData(1000, 8)]
    public void For_runs_every_index_exactly_once(int count, int threads)
    {
        var runs = new int[count];
        for (int repeat = 0; repeat < 20; repeat++) Workers.For(count, threads, i => Interlocked.Increment(ref runs[i]));
        Assert.All(runs, r => Assert.Equal(20, r));
    }

    [Fact]
    public void No_participant_is_still_inside_a_job_when_the_call_returns()
    {
        int inside = 0, overlaps = 0;
        for (int repeat = 0; repeat < 200; repeat++)
        {
            Workers.For(64, 2, _ =>
            {
                Interlocked.Increment(ref inside);
                Thread.SpinWait(50);
                Interlocked.Decrement(ref inside);
            });
            if (Volatile.Read(ref inside) != 0) overlaps++;
        }
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public void A_failure_on_any_thread_reaches_the_caller_and_the_helpers_stay_usable()
    {
        for (int failAt = 0; failAt < 64; failAt += 9)   // early indices run on the caller, later ones often on a helper
        {
            int at = failAt;
            var e = Assert.Throws<InvalidOperationException>(() => Workers.For(64, 2, i =>
            {
                Thread.SpinWait(200);
                if (i == at) throw new InvalidOperationException($"piece {i}");
            }));
            Assert.Equal($"piece {at}", e.Message);
            var runs = new int[64];
            Workers.For(64, 2, i => Interlocked.Increment(ref runs[i]));
            Assert.All(runs, r => Assert.Equal(1, r));
        }
    }

    // The helpers serve one call at a time: a nested call (from inside a job) or another thread's call runs on its
    // own thread instead of waiting, and still runs every index once.
    [Fact]
    public void Nested_and_concurrent_calls_run_every_index_once()
    {
        var runs = new int[8 * 16];
        Parallel.For(0, 4, _ =>
            Workers.For(8, 2, i => Workers.For(16, 2, j => Interlocked.Increment(ref runs[i * 16 + j]))));
        Assert.All(runs, r => Assert.Equal(4, r));
    }

    // Thread.Interrupt makes any sleep or blocking wait throw; the caller's wait for its helpers does neither, so an
    // interrupted caller still returns (or throws) only after every helper has left the job.
    [Fact]
    public void An_interrupted_caller_still_waits_for_its_helpers()
    {
        int inside = 0, overlaps = 0;
        var caller = new Thread(() =>
        {
            var me = Thread.CurrentThread;
            try
            {
                for (int r = 0; r < 100; r++)
                {
                    Workers.For(8, 2, _ =>
                    {
                        Interlocked.Increment(ref inside);
                        if (Thread.CurrentThread != me) Thread.SpinWait(20_000);   // long pieces on the helper: the caller waits
                        Interlocked.Decrement(ref inside);
                    });
                    if (Volatile.Read(ref inside) != 0) overlaps++;
                }
            }
            catch (ThreadInterruptedException) { if (Volatile.Read(ref inside) != 0) overlaps++; }
        });
        caller.Start();
        Thread.Sleep(20);
        caller.Interrupt();
        Assert.True(caller.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public void A_failing_piece_stops_the_others_from_claiming_more()
    {
        int ran = 0;
        Assert.Throws<InvalidOperationException>(() => Workers.For(100_000, 2, i =>
        {
            Interlocked.Increment(ref ran);
            if (i == 0) throw new InvalidOperationException("first piece");
            Thread.SpinWait(100);
        }));
        Assert.True(ran < 100_000, $"{ran} of 100,000 pieces ran after the first failed");
    }
}
