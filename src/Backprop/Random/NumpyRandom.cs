namespace Backprop;

/// <summary>
/// numpy's legacy random stream (<c>np.random.seed(int)</c> / <c>RandomState</c>), bit for bit, so a ported
/// Python experiment gets the same initial weights, minibatches and permutations. MT19937 seeded with
/// init_genrand; doubles, Gaussians and bounded integers drawn exactly as numpy's legacy code draws them.
/// Checked against vectors from numpy 1.24 (tests/Backprop.Tests/Fixtures/numpy_random.json).
/// </summary>
public sealed class NumpyRandom
{
    const int N = 624, M = 397;
    readonly uint[] mt = new uint[N];
    int index;
    double? cachedGauss;   // legacy randn makes two normals per accepted pair and keeps one for the next call

    public NumpyRandom(uint seed) => Seed(seed);

    /// <summary><c>np.random.seed(seed)</c>: an integer seed goes through init_genrand (not init_by_array), and the Gaussian cache is cleared.</summary>
    public void Seed(uint seed)
    {
        mt[0] = seed;
        for (int i = 1; i < N; i++) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint)i;
        index = N;
        cachedGauss = null;
    }

    /// <summary>The next raw 32-bit MT19937 output (genrand_int32).</summary>
    public uint NextUInt32()
    {
        if (index >= N) Twist();
        uint y = mt[index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        return y ^ (y >> 18);
    }

    void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (mt[i] & 0x80000000u) | (mt[(i + 1) % N] & 0x7fffffffu);
            mt[i] = mt[(i + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908b0dfu : 0u);
        }
        index = 0;
    }

    // numpy's next_uint64 for MT19937: the first draw is the high word.
    ulong NextUInt64() => (ulong)NextUInt32() << 32 | NextUInt32();

    /// <summary><c>random_sample()</c>: uniform in [0, 1) with 53 bits from two draws, (a·2²⁶ + b) / 2⁵³ with a = 27 and b = 26 high bits.</summary>
    public double NextDouble()
    {
        uint a = NextUInt32() >> 5, b = NextUInt32() >> 6;
        return (a * 67108864.0 + b) / 9007199254740992.0;
    }

    /// <summary>
    /// One standard normal (legacy_gauss): polar Box–Muller on (x1, x2) uniform in the unit disc; returns
    /// f·x2 and caches f·x1, which the next call returns without drawing.
    /// </summary>
    public double NextGaussian()
    {
        if (cachedGauss is double g) { cachedGauss = null; return g; }
        double x1, x2, r2;
        do
        {
            x1 = 2.0 * NextDouble() - 1.0;
            x2 = 2.0 * NextDouble() - 1.0;
            r2 = x1 * x1 + x2 * x2;
        } while (r2 >= 1.0 || r2 == 0.0);
        // Math.Log calls the C runtime's log on Linux (glibc), the same function numpy calls; Math.Sqrt is IEEE exact.
        double f = Math.Sqrt(-2.0 * Math.Log(r2) / r2);
        cachedGauss = f * x1;
        return f * x2;
    }

    /// <summary>
    /// An integer in [0, max] (numpy's random_interval, used by legacy shuffle/permutation): draw 32 bits
    /// (64 when max ≥ 2³²), mask to the smallest all-ones value ≥ max, reject values above max.
    /// </summary>
    public ulong Interval(ulong max)
    {
        if (max == 0) return 0;
        ulong mask = SmallestMask(max), value;
        if (max <= uint.MaxValue) while ((value = NextUInt32() & mask) > max) { }
        else while ((value = NextUInt64() & mask) > max) { }
        return value;
    }

    static ulong SmallestMask(ulong max)
    {
        ulong mask = max;
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
        return mask;
    }

    // ---- numpy-shaped API -------------------------------------------------------------------------

    /// <summary><c>rand(d0, d1, …)</c>: uniform [0, 1) samples, row-major, as a flat array.</summary>
    public double[] Rand(params int[] shape) => Fill(shape, NextDouble);

    /// <summary><c>random_sample(size)</c>; the same stream as <see cref="Rand"/>.</summary>
    public double[] RandomSample(params int[] shape) => Rand(shape);

    /// <summary><c>randn(d0, d1, …)</c>: standard normals, row-major, as a flat array.</summary>
    public double[] Randn(params int[] shape) => Fill(shape, NextGaussian);

    /// <summary><c>randn(d0, d1, …)</c> as a float64 tensor of that shape.</summary>
    public Tensor RandnTensor(params int[] shape) => Tensor.From(Randn(shape), shape);

    /// <summary><c>rand(d0, d1, …)</c> as a float64 tensor of that shape.</summary>
    public Tensor RandTensor(params int[] shape) => Tensor.From(Rand(shape), shape);

    /// <summary>
    /// <c>randint(low, high, size)</c> (int64 dtype): low + a masked rejection draw in [0, high − low − 1];
    /// 32-bit draws while that range fits in 32 bits, 64-bit draws beyond.
    /// </summary>
    public long[] RandInt(long low, long high, int size)
    {
        if (high <= low) throw new ArgumentException($"randint: low ({low}) must be below high ({high})");
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ulong range = (ulong)(high - low) - 1;
        var r = new long[size];
        for (int i = 0; i < r.Length; i++) r[i] = low + (long)Bounded(range);
        return r;
    }

    /// <summary>One <c>randint(low, high)</c>.</summary>
    public long RandInt(long low, long high) => RandInt(low, high, 1)[0];

    // random_bounded_uint64 with use_masked=True (legacy): a full 32-bit range is a raw draw, otherwise
    // the same masked rejection as Interval.
    ulong Bounded(ulong range) => range switch
    {
        0 => 0,
        uint.MaxValue => NextUInt32(),
        ulong.MaxValue => NextUInt64(),
        _ => Interval(range),
    };

    /// <summary>
    /// <c>choice(n, size, replace)</c> for an integer population: with replacement it is
    /// <c>randint(0, n, size)</c>; without, the first <paramref name="size"/> entries of <c>permutation(n)</c>.
    /// </summary>
    public int[] Choice(int n, int size, bool replace = true)
    {
        if (n <= 0) throw new ArgumentException($"choice: population size must be positive, not {n}");
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (!replace)
        {
            if (size > n) throw new ArgumentException($"choice: cannot take a larger sample ({size}) than the population ({n}) without replacement");
            return Permutation(n)[..size];
        }
        var r = new int[size];
        ulong range = (ulong)n - 1;
        for (int i = 0; i < r.Length; i++) r[i] = (int)Bounded(range);
        return r;
    }

    /// <summary><c>permutation(n)</c>: 0 … n−1 shuffled.</summary>
    public int[] Permutation(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        Shuffle<int>(r);
        return r;
    }

    /// <summary><c>shuffle(x)</c> in place: Fisher–Yates from the top, j = random_interval(i) for i = n−1 … 1.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)Interval((ulong)i);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    static double[] Fill(int[] shape, Func<double> next)
    {
        var r = new double[ShapeUtil.Count(shape, "random")];
        for (int i = 0; i < r.Length; i++) r[i] = next();
        return r;
    }
}
