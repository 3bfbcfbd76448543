using System.Numerics;
using System.Runtime.Intrinsics;

namespace Backprop.Kernels;

/// <summary>
/// Update rules fused into one pass over memory. Optimizer steps are memory-bound: a chain of TensorPrimitives
/// calls reads and writes the state once per operation, one loop reads and writes it once in all.
/// </summary>
internal static class Fused
{
    /// <summary>b ← μb + c·d;  θ ← θ − η b  (SGD with momentum, dampening folded into c = 1 − dampening).</summary>
    public static void MomentumStep<T>(Span<T> param, Span<T> buf, ReadOnlySpan<T> d, T mu, T c, T lr) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, n = param.Length;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
        {
            Vector512<T> vmu = Vector512.Create(mu), vc = Vector512.Create(c), vlr = Vector512.Create(lr);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var b = Vector512.Create<T>(d[i..]) * vc + Vector512.Create<T>(buf[i..]) * vmu;
                b.CopyTo(buf[i..]);
                (Vector512.Create<T>(param[i..]) - vlr * b).CopyTo(param[i..]);
            }
        }
        else if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
        {
            Vector256<T> vmu = Vector256.Create(mu), vc = Vector256.Create(c), vlr = Vector256.Create(lr);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var b = Vector256.Create<T>(d[i..]) * vc + Vector256.Create<T>(buf[i..]) * vmu;
                b.CopyTo(buf[i..]);
                (Vector256.Create<T>(param[i..]) - vlr * b).CopyTo(param[i..]);
            }
        }
        for (; i < n; i++)
        {
            T b = d[i] * c + buf[i] * mu;
            buf[i] = b;
            param[i] -= lr * b;
        }
    }
}
