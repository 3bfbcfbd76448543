namespace Backprop;

/// <summary>
/// A seeded pseudo-random generator (xoshiro256**, seeded through splitmix64). Every random draw in
/// Backprop takes one explicitly, so the same seed gives the same numbers on every machine.
/// </summary>
public sealed class Generator
{
    ulong s0, s1, s2, s3;
    double? spareNormal;

    public Generator(ulong seed)
    {
        Seed = seed;
        ulong x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    public ulong Seed { get; }

    static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n) without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "NextInt: n must be positive.");
        ulong range = (ulong)n;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 m = (UInt128)r * range;
            ulong low = (ulong)m;
            if (low >= range || low >= (0UL - range) % range) return (int)(ulong)(m >> 64);
        }
    }

    /// <summary>Standard normal draw (Box–Muller; the second value of each pair is kept for the next call).</summary>
    public double NextNormal()
    {
        if (spareNormal is double spare) { spareNormal = null; return spare; }
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        double u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        spareNormal = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    /// <summary>The generator's whole state (xoshiro words and the spare normal deviate), to checkpoint and restore a run exactly.</summary>
    public GeneratorState State
    {
        get => new(s0, s1, s2, s3, spareNormal);
        set
        {
            if ((value.S0 | value.S1 | value.S2 | value.S3) == 0) throw new ArgumentException("Generator: an all-zero state is not a valid xoshiro state");
            (s0, s1, s2, s3, spareNormal) = (value.S0, value.S1, value.S2, value.S3, value.SpareNormal);
        }
    }

    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

/// <summary>A <see cref="Generator"/>'s state: its four xoshiro256** words and the pending second normal deviate, if any.</summary>
public readonly record struct GeneratorState(ulong S0, ulong S1, ulong S2, ulong S3, double? SpareNormal)
{
    /// <summary>A text form that round-trips exactly ("s0,s1,s2,s3[,spare bits]" in hex).</summary>
    public override string ToString() => $"{S0:x},{S1:x},{S2:x},{S3:x}" + (SpareNormal is double d ? $",{BitConverter.DoubleToInt64Bits(d):x}" : "");

    public static GeneratorState Parse(string text)
    {
        var p = text.Split(',');
        if (p.Length is not (4 or 5)) throw new FormatException($"generator state: '{text}' is not 4 or 5 hex words");
        ulong W(int i) => ulong.Parse(p[i], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        return new(W(0), W(1), W(2), W(3), p.Length == 5 ? BitConverter.Int64BitsToDouble((long)W(4)) : null);
    }
}

