using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Backprop.Kernels;

/// <summary>The vector width of the matrix-multiply kernels, widest first; <see cref="Auto"/>: the widest the CPU runs.</summary>
public enum InstructionSet { Auto, Vector512, Vector256, Vector128, Scalar }

/// <summary>
/// Which CPU the kernels run on and which vector path they take. <see cref="Forced"/> caps the path process-wide (as the
/// BACKPROP_ISA environment variable does at start-up), so every path can be measured and tested on one machine: a
/// Zen 4 can run what an SSE-only or Arm64 machine would.
/// </summary>
public static class InstructionSets
{
    /// <summary>The widest path the matrix-multiply kernels may use (Auto: no cap).</summary>
    public static InstructionSet Forced
    {
        get => (InstructionSet)Gemm.ProcessPath;
        set => Gemm.ProcessPath = Enum.IsDefined(value) ? (GemmPath)value : throw new ArgumentOutOfRangeException(nameof(value), value, "not an instruction set");
    }

    /// <summary>
    /// The widest vectors the .NET runtime accelerates in this process: the limit of every kernel, TensorPrimitives' too
    /// (<see cref="Forced"/> caps only the matrix kernels below it; DOTNET_EnableAVX512=0, DOTNET_PreferredVectorBitWidth=128
    /// or DOTNET_EnableHWIntrinsic=0 at start-up lower it).
    /// </summary>
    public static InstructionSet Runtime =>
        Vector512.IsHardwareAccelerated ? InstructionSet.Vector512 : Vector256.IsHardwareAccelerated ? InstructionSet.Vector256
        : Vector128.IsHardwareAccelerated ? InstructionSet.Vector128 : InstructionSet.Scalar;

    /// <summary>The path float32 products take now.</summary>
    public static InstructionSet Active => Gemm.PathFor<float>() is var p && p == GemmPath.Vector128Narrow ? InstructionSet.Vector128 : (InstructionSet)p;

    /// <summary>The CPU's name (Linux: /proc/cpuinfo's model name, family and model), or the architecture elsewhere.</summary>
    public static string CpuName()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                var fields = File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Length > 0).Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
                    .GroupBy(p => p[0].Trim()).ToDictionary(g => g.Key, g => g.First()[1].Trim());
                if (fields.TryGetValue("model name", out var name))
                    return fields.TryGetValue("cpu family", out var family) && fields.TryGetValue("model", out var model) ? $"{name} (family {family}, model {model})" : name;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>
    /// One core's fused multiply-add peak in float32 GFLOP/s on <paramref name="path"/> (default: the active one):
    /// eight independent accumulator chains, enough to cover the FMA latency on current cores, for about 0.2 s.
    /// </summary>
    public static double MeasurePeak(InstructionSet path = InstructionSet.Auto)
    {
        if (path == InstructionSet.Auto) path = Active;
        long iterations = 1 << 16;
        for (; ; iterations *= 2)
        {
            var clock = Stopwatch.StartNew();
            int lanes = path switch
            {
                InstructionSet.Vector512 => Chains(Vector512.Create(1f), Vector512.Create(0.999f), iterations),
                InstructionSet.Vector256 => Chains(Vector256.Create(1f), Vector256.Create(0.999f), iterations),
                InstructionSet.Vector128 => Chains(Vector128.Create(1f), Vector128.Create(0.999f), iterations),
                _ => ScalarChains(iterations),
            };
            double seconds = clock.Elapsed.TotalSeconds;
            if (seconds > 0.2) return iterations * 8.0 * lanes * 2 / seconds / 1e9;
        }
    }

    static int Chains(Vector512<float> x, Vector512<float> m, long n)
    {
        Vector512<float> c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, x); c1 = Vector512.FusedMultiplyAdd(c1, m, x); c2 = Vector512.FusedMultiplyAdd(c2, m, x); c3 = Vector512.FusedMultiplyAdd(c3, m, x);
            c4 = Vector512.FusedMultiplyAdd(c4, m, x); c5 = Vector512.FusedMultiplyAdd(c5, m, x); c6 = Vector512.FusedMultiplyAdd(c6, m, x); c7 = Vector512.FusedMultiplyAdd(c7, m, x);
        }
        return Sink(((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7)).ToScalar(), Vector512<float>.Count);
    }

    static int Chains(Vector256<float> x, Vector256<float> m, long n)
    {
        Vector256<float> c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, x); c1 = Vector256.FusedMultiplyAdd(c1, m, x); c2 = Vector256.FusedMultiplyAdd(c2, m, x); c3 = Vector256.FusedMultiplyAdd(c3, m, x);
            c4 = Vector256.FusedMultiplyAdd(c4, m, x); c5 = Vector256.FusedMultiplyAdd(c5, m, x); c6 = Vector256.FusedMultiplyAdd(c6, m, x); c7 = Vector256.FusedMultiplyAdd(c7, m, x);
        }
        return Sink(((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7)).ToScalar(), Vector256<float>.Count);
    }

    static int Chains(Vector128<float> x, Vector128<float> m, long n)
    {
        Vector128<float> c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x;
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported && !System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.IsSupported)
            for (long i = 0; i < n; i++)   // no fused instruction (SSE only): multiply and add, as the kernels do
            {
                c0 = c0 * m + x; c1 = c1 * m + x; c2 = c2 * m + x; c3 = c3 * m + x;
                c4 = c4 * m + x; c5 = c5 * m + x; c6 = c6 * m + x; c7 = c7 * m + x;
            }
        else for (long i = 0; i < n; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, m, x); c1 = Vector128.FusedMultiplyAdd(c1, m, x); c2 = Vector128.FusedMultiplyAdd(c2, m, x); c3 = Vector128.FusedMultiplyAdd(c3, m, x);
            c4 = Vector128.FusedMultiplyAdd(c4, m, x); c5 = Vector128.FusedMultiplyAdd(c5, m, x); c6 = Vector128.FusedMultiplyAdd(c6, m, x); c7 = Vector128.FusedMultiplyAdd(c7, m, x);
        }
        return Sink(((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7)).ToScalar(), Vector128<float>.Count);
    }

    static int ScalarChains(long n)
    {
        float x = 1, m = 0.999f, c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x;
        for (long i = 0; i < n; i++)   // multiply and add, as the scalar kernel does
        {
            c0 = c0 * m + x; c1 = c1 * m + x; c2 = c2 * m + x; c3 = c3 * m + x;
            c4 = c4 * m + x; c5 = c5 * m + x; c6 = c6 * m + x; c7 = c7 * m + x;
        }
        return Sink((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7), 1);
    }

    static volatile float sink;
    static int Sink(float value, int lanes) { sink = value; return lanes; }
}
