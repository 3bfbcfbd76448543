using System.Numerics;
using Backprop.Kernels;
using CsCheck;

namespace Backprop.Tests;

/// <summary>
/// The GEMM kernel against a naive triple loop in double, on every kernel path (forced per thread), every
/// transpose form, with and without accumulation, on sizes that leave ragged tiles and cross every block size.
/// </summary>
public class GemmTests
{
    // Names, not GemmPath values: the enum is internal and a public test method cannot take it.
    public static TheoryData<string> Paths => [nameof(GemmPath.Scalar), nameof(GemmPath.Vector128Narrow), nameof(GemmPath.Vector128), nameof(GemmPath.Vector256), nameof(GemmPath.Vector512)];

    // (m, n, k): ones, primes, one past a tile (MR 4/6/8/14, NR 4/8/12/16/32), one past KC (128 doubles, 256 floats); last
    // panels of every narrow piece the 512-bit path computes them in (n mod 32 for floats: 1–8, 9–16, 17–24 as 16 + 8, and
    // n mod 16 for doubles: 1–4, 5–8, 9–12).
    static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 7, 13), (7, 1, 33), (13, 33, 1), (33, 65, 13), (65, 13, 130), (130, 65, 33),
        (7, 130, 65), (14, 32, 256), (15, 33, 257), (28, 64, 129), (16, 50, 784), (50, 784, 16), (9, 27, 40), (17, 24, 300),
        (3, 1100, 1000),   // few rows but a B over 4 MB (the whole product's, whatever the thread count): packed, not read in place
        (1, 30, 37), (1, 1027, 784),   // one row: the matrix-vector path (four rows at a time, a ragged tail; the second split across threads)
    ];

    [Theory, MemberData(nameof(Paths))]
    public void Float_matches_naive_product_for_all_transposes(string path) => AllForms<float>(Enum.Parse<GemmPath>(path), Shapes, seed: 1);

    [Theory, MemberData(nameof(Paths))]
    public void Double_matches_naive_product_for_all_transposes(string path) => AllForms<double>(Enum.Parse<GemmPath>(path), Shapes, seed: 2);

    // Big enough to use two threads (when there are two cores) and to cross NC = 512 columns and MC rows;
    // the second shape is too narrow to split by columns, so it splits by rows.
    [Theory, MemberData(nameof(Paths))]
    public void Large_products_match_when_split_across_threads(string name)
    {
        var path = Enum.Parse<GemmPath>(name);
        // (13, 8, 50000): split by rows in 6-row shares on the 256- and 128-bit paths, leaving a one-row last share
        (int, int, int)[] shapes = [(230, 530, 270), (600, 20, 400), (13, 8, 50000)];
        AllForms<float>(path, shapes, seed: 3);
        AllForms<double>(path, shapes, seed: 4);
    }

    [Theory, MemberData(nameof(Paths))]
    public void Forced_path_is_the_one_used_when_supported(string name)
    {
        var path = Enum.Parse<GemmPath>(name);
        Gemm.ForcedPath = path;
        try
        {
            bool supported = path switch
            {
                GemmPath.Vector512 => System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated,
                GemmPath.Vector256 => System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported,
                GemmPath.Vector128 => System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated,
                _ => true,
            };
            if (supported) Assert.Equal(path, Gemm.PathFor<float>());
            Assert.Equal(GemmPath.Scalar, Gemm.PathFor<Half>());
        }
        finally { Gemm.ForcedPath = GemmPath.Auto; }
    }

    [Fact]
    public void Empty_inner_dimension_clears_or_keeps_C()
    {
        var c = new float[] { 1, 2, 3, 4, 5, 6 };
        Gemm.Multiply<float>([], false, [], false, c, 2, 3, 0, accumulate: true);
        Assert.Equal([1, 2, 3, 4, 5, 6], c);
        Gemm.Multiply<float>([], false, [], false, c, 2, 3, 0, accumulate: false);
        Assert.Equal(new float[6], c);
    }

    // Threads share work through per-caller jobs and late helpers may outlive a call; every result must still be
    // bit-identical (the summation order of an element does not depend on how the product was split).
    [Fact]
    public void Concurrent_callers_get_identical_results()
    {
        const int m = 300, n = 260, k = 290;
        var rng = new Random(7);
        float[] a = Random<float>(m * k, rng), b = Random<float>(k * n, rng), expected = new float[m * n];
        Gemm.Multiply<float>(a, false, b, false, expected, m, n, k, false);
        var failures = 0;
        Parallel.For(0, 4, _ =>
        {
            var c = new float[m * n];
            for (int i = 0; i < 25; i++)
            {
                Gemm.Multiply<float>(a, false, b, false, c, m, n, k, false);
                if (!c.AsSpan().SequenceEqual(expected)) Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    // A product split by rows can leave a one-row share; it must run the same kernel as the whole product (a one-row
    // product on its own is a matrix-vector pass that sums in another order).
    [Theory]
    [InlineData(17, 16, 2048), InlineData(9, 8, 8192), InlineData(25, 16, 2048)]
    public void A_one_row_share_gives_the_values_one_thread_gives(int m, int n, int k)
    {
        var rng = new Random(m);
        float[] a = Random<float>(m * k, rng), b = Random<float>(n * k, rng);
        var one = ProductOn(1, a, b, m, n, k, transB: true);
        Assert.Equal(one, ProductOn(Environment.ProcessorCount, a, b, m, n, k, transB: true));
        Assert.Equal(one, ProductOn(4, a, b, m, n, k, transB: true));
    }

    static float[] ProductOn(int threads, float[] a, float[] b, int m, int n, int k, bool transB)
    {
        using var _ = Parallelism.Use(threads);
        var c = new float[m * n];
        Gemm.Multiply<float>(a, false, b, transB, c, m, n, k, false);
        return c;
    }

    // Column shares are cut wider once A passes 4 MB (1040×1024 floats: 4.3 MB; 1000×1024 stays under): a share's width
    // changes which thread computes a column, never the order of its sums. (A guard of the bits, not of the threshold.)
    [Theory]
    [InlineData(1040, 1100, 1024), InlineData(1000, 1100, 1024)]
    public void Wide_column_shares_of_a_large_A_give_the_bits_one_thread_gives(int m, int n, int k)
    {
        var rng = new Random(n + m);
        float[] a = Random<float>(m * k, rng), b = Random<float>(k * n, rng);
        var one = ProductOn(1, a, b, m, n, k, transB: false);
        Assert.Equal(one, ProductOn(2, a, b, m, n, k, transB: false));
        Assert.Equal(one, ProductOn(3, a, b, m, n, k, transB: false));
    }

    // A one-row product (a Linear layer on one sample) splits its columns across threads; each output is still one
    // thread's four-row block or dot product, on every path.
    [Theory]
    [InlineData(1027, 784), InlineData(4099, 300)]
    public void A_one_row_product_gives_the_same_bits_on_any_thread_count(int n, int k)
    {
        var rng = new Random(n);
        float[] a = Random<float>(k, rng), b = Random<float>(n * k, rng);
        foreach (var path in new[] { GemmPath.Auto, GemmPath.Vector256, GemmPath.Vector128, GemmPath.Scalar })
        {
            float[] Product(int threads)
            {
                using var _ = Parallelism.Use(threads);
                var c = new float[n];
                Gemm.Multiply<float>(a, false, b, true, c, 1, n, k, false);
                return c;
            }
            Gemm.ForcedPath = path;
            try
            {
                Assert.Equal(Product(1), Product(2));
                Assert.Equal(Product(1), Product(4));
            }
            finally { Gemm.ForcedPath = GemmPath.Auto; }
        }
    }

    // A Linear layer on a small batch (A·Bᵀ, at most 16 rows) runs as dot products, four rows by four: split between
    // threads by columns or rows in multiples of four, every output is still the one chain the single thread computes,
    // ragged rows and columns included.
    [Theory]
    [InlineData(16, 1027, 784), InlineData(10, 50, 100), InlineData(13, 4099, 300), InlineData(6, 3, 50000)]
    public void A_few_row_product_gives_the_same_bits_on_any_thread_count(int m, int n, int k)
    {
        var rng = new Random(m * n);
        float[] a = Random<float>(m * k, rng), b = Random<float>(n * k, rng);
        var one = ProductOn(1, a, b, m, n, k, transB: true);
        Assert.Equal(one, ProductOn(2, a, b, m, n, k, transB: true));
        Assert.Equal(one, ProductOn(4, a, b, m, n, k, transB: true));
    }

    // A ragged last panel runs narrower tiles (16 and 8 columns wide for floats on the 512-bit path, 4 rows tall), each
    // element still one chain of fused multiply-adds over k in the same order: a product's first rows and columns are the
    // same bits whatever its height and width.
    [Fact]
    public void A_products_first_rows_and_columns_are_the_same_bits_whatever_its_shape()
    {
        Same<float>(); Same<double>();

        static void Same<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var rng = new Random(5);
            foreach (int k in new[] { 7, 300 })   // one KC slice, and several (the tile added to C)
            {
                const int rows = 16, cols = 64;
                T[] a = Random<T>(rows * k, rng), b = Random<T>(k * cols, rng), c = new T[rows * cols];
                Gemm.Multiply<T>(a, false, b, false, c, rows, cols, k, false, singleThreaded: true);
                for (int m = 1; m <= rows; m++)
                    foreach (int n in m == rows || m == 13 ? Enumerable.Range(1, cols) : [cols])
                    {
                        var bn = new T[k * n];
                        for (int p = 0; p < k; p++) Array.Copy(b, p * cols, bn, p * n, n);
                        var cn = new T[m * n];
                        Gemm.Multiply<T>(a.AsSpan(0, m * k), false, bn, false, cn, m, n, k, false, singleThreaded: true);
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++)
                                if (!cn[i * n + j].Equals(c[i * cols + j]))
                                    Assert.Fail($"{typeof(T).Name} {m}x{n}, k={k}: C[{i},{j}] = {cn[i * n + j]}, {c[i * cols + j]} in the {rows}x{cols} product");
                    }
            }
        }
    }

    [Fact]
    public void Random_shapes_match_naive_product_on_the_default_path() =>
        Gen.Select(Gen.Int[1, 80], Gen.Int[1, 80], Gen.Int[1, 300], Gen.Int[0, 7])
            .Sample((m, n, k, flags) =>
            {
                var rng = new Random(m * 10007 + n * 101 + k + flags);
                Check<float>(m, n, k, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, rng);
            }, iter: 200);

    static void AllForms<T>(GemmPath path, (int M, int N, int K)[] shapes, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(seed);
        Gemm.ForcedPath = path;
        try
        {
            foreach (var (m, n, k) in shapes)
                for (int form = 0; form < 8; form++)
                    Check<T>(m, n, k, (form & 1) != 0, (form & 2) != 0, (form & 4) != 0, rng);
        }
        finally { Gemm.ForcedPath = GemmPath.Auto; }
    }

    static void Check<T>(int m, int n, int k, bool ta, bool tb, bool acc, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T[] a = Random<T>(m * k, rng), b = Random<T>(k * n, rng), c = Random<T>(m * n, rng);
        var c0 = (T[])c.Clone();
        Gemm.Multiply<T>(a, ta, b, tb, c, m, n, k, acc);

        // |error| ≤ (k + 2)·ε·Σₚ|a·b| bounds the rounding of any summation order; a wrong term is off by O(1).
        double eps = typeof(T) == typeof(float) ? 1.2e-7 : 2.3e-16;
        // rows of op(A) and columns of op(B), both contiguous in p
        var opA = new double[m * k]; var opBt = new double[n * k];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) opA[i * k + p] = double.CreateChecked(ta ? a[p * m + i] : a[i * k + p]);
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) opBt[j * k + p] = double.CreateChecked(tb ? b[j * k + p] : b[p * n + j]);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = acc ? double.CreateChecked(c0[i * n + j]) : 0, mag = Math.Abs(s);
                var x = opA.AsSpan(i * k, k); var y = opBt.AsSpan(j * k, k);
                for (int p = 0; p < k; p++)
                {
                    double xy = x[p] * y[p];
                    s += xy; mag += Math.Abs(xy);
                }
                double got = double.CreateChecked(c[i * n + j]);
                if (!(Math.Abs(got - s) <= (k + 2) * eps * mag + 1e-30))
                    Assert.Fail($"{typeof(T).Name} {m}x{n}x{k} transA={ta} transB={tb} acc={acc}: C[{i},{j}] = {got}, expected {s}");
            }
    }

    static T[] Random<T>(int count, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = new T[count];
        for (int i = 0; i < count; i++) x[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);
        return x;
    }
}

/// <summary>Tests that measure this thread's allocations, run alone, so no other test's work shares the process's
/// threads while they count.</summary>
[CollectionDefinition("quiet", DisableParallelization = true)]
public sealed class QuietCollection;

[Collection("quiet")]
public class GemmAllocationTests
{
    [Fact]
    public void Steady_state_calls_allocate_nothing()
    {
        foreach (var (m, n, k) in new[] { (8, 50, 784), (16, 50, 784), (300, 300, 300), (1, 1024, 784) })   // one thread; two shares; split across threads; one row, split
        {
            float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
            // A steady state exists: some window of ten calls allocates nothing (a per-call allocation would show in every
            // window). Only the first windows are let off: in a process fresh arrays are being allocated in, an early
            // window now and then counted 2–7 KB on this thread with no collection during it, JIT tiering off as well
            // (a loop of these four shapes: windows 1–9 of ~30 rounds) — not traced to this code, never seen after.
            long fewest = long.MaxValue;
            for (int window = 0; window < 20 && fewest != 0; window++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 10; i++) Gemm.Multiply<float>(a, false, b, true, c, m, n, k, false);
                fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
            }
            Assert.Equal(0, fewest);
        }
    }
}
