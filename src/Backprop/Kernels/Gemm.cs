using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Kernels;

/// <summary>
/// General matrix multiply on row-major spans: C (m×n) = op(A)·op(B), or C += op(A)·op(B) when
/// <c>accumulate</c>. op(A) is m×k: A is stored m×k, or k×m when <c>transA</c>; likewise B is k×n or n×k.
/// Transposed operands are read in place, never materialised.
/// </summary>
internal static class Gemm
{
    public static void Multiply<T>(ReadOnlySpan<T> a, bool transA, ReadOnlySpan<T> b, bool transB, Span<T> c,
        int m, int n, int k, bool accumulate) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!accumulate) c[..(m * n)].Clear();
        if (m == 0 || n == 0 || k == 0) return;
        if (!transA && !transB)
        {
            // i-p-j order: each step is an axpy of a row of B into a row of C (unit stride, vectorised).
            for (int i = 0; i < m; i++)
            {
                var crow = c.Slice(i * n, n);
                var arow = a.Slice(i * k, k);
                for (int p = 0; p < k; p++)
                {
                    T s = arow[p];
                    if (s != T.Zero) TensorPrimitives.MultiplyAdd(b.Slice(p * n, n), s, crow, crow);
                }
            }
        }
        else if (!transA)
        {
            // A·Bᵀ: both operands' rows are contiguous, so each element is one dot product.
            for (int i = 0; i < m; i++)
            {
                var arow = a.Slice(i * k, k);
                for (int j = 0; j < n; j++) c[i * n + j] += TensorPrimitives.Dot(arow, b.Slice(j * k, k));
            }
        }
        else if (!transB)
        {
            // Aᵀ·B: for each p, C += A[p,:]ᵀ ⊗ B[p,:]; rows of C are axpys.
            for (int p = 0; p < k; p++)
            {
                var arow = a.Slice(p * m, m);
                var brow = b.Slice(p * n, n);
                for (int i = 0; i < m; i++)
                {
                    T s = arow[i];
                    if (s != T.Zero) TensorPrimitives.MultiplyAdd(brow, s, c.Slice(i * n, n), c.Slice(i * n, n));
                }
            }
        }
        else
        {
            // Aᵀ·Bᵀ: rare; c[i,j] = Σp A[p,i]·B[j,p].
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    T s = T.Zero;
                    for (int p = 0; p < k; p++) s += a[p * m + i] * b[j * k + p];
                    c[i * n + j] += s;
                }
        }
    }
}
