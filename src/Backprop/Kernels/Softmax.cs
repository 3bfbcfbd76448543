using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>Row-wise softmax over the last axis, max-shifted so exp never overflows (stable for logits of ±1e4).</summary>
internal static class Softmax
{
    /// <summary>probs = softmax(rows of x); returns per-row log-sum-exp in <paramref name="lse"/> when given.</summary>
    public static void Rows<T>(ReadOnlySpan<T> x, Span<T> probs, Span<T> lse, int rows, int cols) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var pr = probs.Slice(r * cols, cols);
            T max = TensorPrimitives.Max(xr);
            TensorPrimitives.Subtract(xr, max, pr);
            TensorPrimitives.Exp(pr, pr);
            T sum = TensorPrimitives.Sum(pr);
            TensorPrimitives.Divide(pr, sum, pr);
            if (!lse.IsEmpty) lse[r] = max + T.Log(sum);
        }
    }
}
