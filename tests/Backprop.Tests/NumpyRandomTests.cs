using System.Text.Json;

namespace Backprop.Tests;

/// <summary>NumpyRandom reproduces numpy's legacy stream exactly: vectors from numpy 1.24 (tools/numpy_vectors.py).</summary>
public class NumpyRandomTests
{
    static readonly JsonElement[] Seeds = LoadSeeds();

    static JsonElement[] LoadSeeds()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "numpy_random.json")));
        return [.. doc.RootElement.GetProperty("seeds").EnumerateArray().Select(e => e.Clone())];
    }

    public static TheoryData<uint> SeedValues => [0u, 1u, 42u, uint.MaxValue];

    static JsonElement For(uint seed) => Seeds.Single(s => s.GetProperty("seed").GetUInt64() == seed);
    static double[] Doubles(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetDouble())];
    static long[] Longs(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt64())];
    static double[] Doubles(uint seed, string key) => Doubles(For(seed).GetProperty(key));
    static long[] Longs(uint seed, string key) => Longs(For(seed).GetProperty(key));
    static JsonElement Part(uint seed, string key, int i) => For(seed).GetProperty(key)[i];

    // Bitwise: the same IEEE doubles, not merely close ones. randn included, with no tolerance: numpy's
    // legacy_gauss calls glibc's log and .NET's Math.Log on Linux lands on the same libm; a one-off check of
    // 10,000,000 normals (seeds 0–4, 5M log calls) against numpy 1.24 found no difference in any bit.
    static void Bitwise(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                $"[{i}]: numpy {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void Rand_is_numpys_random_sample(uint seed) => Bitwise(Doubles(seed, "rand_20"), new NumpyRandom(seed).Rand(20));

    [Theory, MemberData(nameof(SeedValues))]
    public void Randn_is_numpys_legacy_gauss(uint seed) => Bitwise(Doubles(seed, "randn_20"), new NumpyRandom(seed).Randn(20));

    [Theory, MemberData(nameof(SeedValues))]
    public void Randn_of_a_shape_fills_row_major(uint seed)
    {
        var t = new NumpyRandom(seed).RandnTensor(4, 10);
        Assert.Equal([4, 10], t.Shape.ToArray());
        Bitwise(Doubles(seed, "randn_4x10"), t.ToDoubleArray());
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void An_odd_randn_call_leaves_its_spare_normal_for_the_next_call(uint seed)
    {
        var rng = new NumpyRandom(seed);
        Bitwise(Doubles(Part(seed, "randn_3_then_4", 0)), rng.Randn(3));
        Bitwise(Doubles(Part(seed, "randn_3_then_4", 1)), rng.Randn(4));
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void The_spare_normal_survives_uniform_draws_in_between(uint seed)
    {
        var rng = new NumpyRandom(seed);
        Bitwise(Doubles(Part(seed, "randn_1_rand_2_randn_2", 0)), rng.Randn(1));
        Bitwise(Doubles(Part(seed, "randn_1_rand_2_randn_2", 1)), rng.Rand(2));
        Bitwise(Doubles(Part(seed, "randn_1_rand_2_randn_2", 2)), rng.Randn(2));
    }

    [Fact]
    public void Reseeding_discards_the_spare_normal()
    {
        var rng = new NumpyRandom(7);
        rng.Randn(1);
        rng.Seed(7);
        Assert.Equal(new NumpyRandom(7).Randn(5), rng.Randn(5));
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void Choice_with_replacement_is_numpys(uint seed)
    {
        Assert.Equal(Longs(seed, "choice_1000_50"), new NumpyRandom(seed).Choice(1000, 50).Select(i => (long)i));
        Assert.Equal(Longs(seed, "choice_5_20"), new NumpyRandom(seed).Choice(5, 20).Select(i => (long)i));
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void Choice_without_replacement_is_the_head_of_a_permutation(uint seed) =>
        Assert.Equal(Longs(seed, "choice_30_10_noreplace"), new NumpyRandom(seed).Choice(30, 10, replace: false).Select(i => (long)i));

    [Theory, MemberData(nameof(SeedValues))]
    public void RandInt_is_numpys(uint seed)
    {
        Assert.Equal(Longs(seed, "randint_0_10_20"), new NumpyRandom(seed).RandInt(0, 10, 20));
        Assert.Equal(Longs(seed, "randint_m5_17_20"), new NumpyRandom(seed).RandInt(-5, 17, 20));
        Assert.Equal(Longs(seed, "randint_0_2pow33_5"), new NumpyRandom(seed).RandInt(0, 1L << 33, 5));
    }

    [Theory, MemberData(nameof(SeedValues))]
    public void Permutation_and_shuffle_are_numpys(uint seed)
    {
        Assert.Equal(Longs(seed, "permutation_30"), new NumpyRandom(seed).Permutation(30).Select(i => (long)i));
        var a = Enumerable.Range(0, 12).Select(i => (double)i).ToArray();
        new NumpyRandom(seed).Shuffle<double>(a);
        Assert.Equal(Doubles(seed, "shuffle_12"), a);
    }
}
