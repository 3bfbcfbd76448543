using System.Numerics;
using System.Runtime.Intrinsics;

namespace Backprop.Kernels;

/// <summary>
/// Update rules fused into one pass over memory. Optimizer steps are memory-bound: a chain of TensorPrimitives
/// calls reads and writes the state once per operation, one loop reads and writes it once in all.
/// </summary>
internal static unsafe class Fused
{
    // Large tensors are updated in pieces on the kernels' helpers: one core does not saturate memory bandwidth (W2's
    // step: 0.85 ms on one core). Elementwise, so the split never changes a value. Below this many elements per
    // thread the hand-off costs more than it saves.
    const int MinPerThread = 64 * 1024, Pieces = 16;

    /// <summary>b ← μb + c·d;  θ ← θ − η b  (SGD with momentum, dampening folded into c = 1 − dampening).</summary>
    public static void MomentumStep<T>(Span<T> param, Span<T> buf, ReadOnlySpan<T> d, T mu, T c, T lr) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = param.Length, threads = Workers.ThreadsFor(n / MinPerThread);
        if (threads <= 1 || buf.Length < n || d.Length < n) { MomentumRange(param, buf, d, mu, c, lr); return; }
        fixed (T* pp = param, pb = buf, pd = d)
        {
            nint p0 = (nint)pp, b0 = (nint)pb, d0 = (nint)pd;
            Workers.ForRanges(n, Pieces, threads, (s, len) =>
                MomentumRange(new Span<T>((T*)p0 + s, len), new Span<T>((T*)b0 + s, len), new ReadOnlySpan<T>((T*)d0 + s, len), mu, c, lr));
        }
    }

    static void MomentumRange<T>(Span<T> param, Span<T> buf, ReadOnlySpan<T> d, T mu, T c, T lr) where T : unmanaged, IFloatingPointIeee754<T>
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
        else if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)   // AVX2: 256 bits; SSE and Arm64's NEON: 128
        {
            Vector<T> vmu = new(mu), vc = new(c), vlr = new(lr);
            for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
            {
                var b = new Vector<T>(d[i..]) * vc + new Vector<T>(buf[i..]) * vmu;
                b.CopyTo(buf[i..]);
                (new Vector<T>(param[i..]) - vlr * b).CopyTo(param[i..]);
            }
        }
        for (; i < n; i++)
        {
            T b = d[i] * c + buf[i] * mu;
            buf[i] = b;
            param[i] -= lr * b;
        }
    }

    /// <summary>
    /// One Adam step in one pass (was five over the state): g ← g + λθ (L2; 0 for none), or θ ← θ·decay first (AdamW);
    /// m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; with AMSGrad v_max ← max(v_max, v) and v̂ = v_max, else v̂ = v;
    /// θ ← θ − s·m / (√v̂·k + ε), s = η/(1 − β₁ᵗ), k = 1/√(1 − β₂ᵗ). Each element is computed in the order the separate
    /// passes used, so the result is the same to the bit.
    /// </summary>
    public static void AdamStep<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> m, Span<T> v, Span<T> vMax, bool amsgrad,
        T l2, T decay, T b1, T b2, T stepSize, T invSqrtC2, T eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = param.Length, threads = Workers.ThreadsFor(n / MinPerThread);
        if (threads <= 1 || grad.Length < n || m.Length < n || v.Length < n || (amsgrad && vMax.Length < n))
        {
            AdamRange(param, grad, m, v, vMax, amsgrad, l2, decay, b1, b2, stepSize, invSqrtC2, eps);
            return;
        }
        fixed (T* pp = param, pg = grad, pm = m, pv = v, px = vMax)
        {
            nint p0 = (nint)pp, g0 = (nint)pg, m0 = (nint)pm, v0 = (nint)pv, x0 = (nint)px;
            Workers.ForRanges(n, Pieces, threads, (s, len) =>
                AdamRange(new Span<T>((T*)p0 + s, len), new ReadOnlySpan<T>((T*)g0 + s, len), new Span<T>((T*)m0 + s, len),
                    new Span<T>((T*)v0 + s, len), amsgrad ? new Span<T>((T*)x0 + s, len) : default, amsgrad, l2, decay, b1, b2, stepSize, invSqrtC2, eps));
        }
    }

    static void AdamRange<T>(Span<T> param, ReadOnlySpan<T> grad, Span<T> m, Span<T> v, Span<T> vMax, bool amsgrad,
        T l2, T decay, T b1, T b2, T stepSize, T invSqrtC2, T eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, n = param.Length;
        T c1 = T.One - b1, c2 = T.One - b2;
        bool coupled = l2 != T.Zero;   // no decay term at all without L2 (0·∞ would be NaN)
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            Vector<T> vl2 = new(l2), vdecay = new(decay), vb1 = new(b1), vb2 = new(b2), vc1 = new(c1), vc2 = new(c2),
                vstep = new(stepSize), vk = new(invSqrtC2), veps = new(eps);
            for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
            {
                var p = new Vector<T>(param[i..]) * vdecay;
                var g = coupled ? p * vl2 + new Vector<T>(grad[i..]) : new Vector<T>(grad[i..]);
                var mi = g * vc1 + new Vector<T>(m[i..]) * vb1;
                var vi = new Vector<T>(v[i..]) * vb2 + vc2 * g * g;
                mi.CopyTo(m[i..]);
                vi.CopyTo(v[i..]);
                if (amsgrad) { vi = Vector.Max(new Vector<T>(vMax[i..]), vi); vi.CopyTo(vMax[i..]); }
                (p - vstep * mi / (Vector.SquareRoot(vi) * vk + veps)).CopyTo(param[i..]);
            }
        }
        for (; i < n; i++)
        {
            T p = param[i] * decay;
            T g = coupled ? p * l2 + grad[i] : grad[i];
            T mi = g * c1 + m[i] * b1;
            T vi = v[i] * b2 + c2 * g * g;
            m[i] = mi; v[i] = vi;
            if (amsgrad) { vi = T.Max(vMax[i], vi); vMax[i] = vi; }
            param[i] = p - stepSize * mi / (T.Sqrt(vi) * invSqrtC2 + eps);
        }
    }
}
