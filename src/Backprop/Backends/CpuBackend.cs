using System.Numerics;
using System.Numerics.Tensors;
using Backprop.Kernels;

namespace Backprop.Backends;

/// <summary>
/// The default backend: managed span kernels (TensorPrimitives' vectorised maps and reductions, the blocked GEMM).
/// Strided inputs are copied to contiguous once (<see cref="Tensor.Dense"/>), except that a transposed matrix is
/// handed to the GEMM as a transpose flag instead.
/// </summary>
internal sealed class CpuBackend : IBackend
{
    public string Name => "cpu";

    public void Copy(Tensor source, Tensor destination) => Strided.Copy(source, destination);

    public void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0)
    {
        x = x.Dense();
        if (op == UnaryOp.Gelu) { Kernels.Gelu.Forward(x, y); return; }
        if (y.DType == DType.Float32) Unary<float>(op, x.Span<float>(), y.Span<float>(), (float)alpha, (float)beta);
        else Unary<double>(op, x.Span<double>(), y.Span<double>(), alpha, beta);
    }

    static void Unary<T>(UnaryOp op, ReadOnlySpan<T> x, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (op)
        {
            case UnaryOp.Neg: TensorPrimitives.Negate(x, y); break;
            case UnaryOp.Exp: TensorPrimitives.Exp(x, y); break;
            case UnaryOp.Log: TensorPrimitives.Log(x, y); break;
            case UnaryOp.Sqrt: TensorPrimitives.Sqrt(x, y); break;
            case UnaryOp.Sin: TensorPrimitives.Sin(x, y); break;
            case UnaryOp.Cos: TensorPrimitives.Cos(x, y); break;
            case UnaryOp.Tanh: TensorPrimitives.Tanh(x, y); break;
            case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;   // stable for large |x|
            case UnaryOp.Relu: TensorPrimitives.Max(x, T.Zero, y); break;
            case UnaryOp.Abs: TensorPrimitives.Abs(x, y); break;
            case UnaryOp.Pow: TensorPrimitives.Pow(x, alpha, y); break;
            case UnaryOp.Clamp: TensorPrimitives.Max(x, alpha, y); TensorPrimitives.Min(y, beta, y); break;
            case UnaryOp.Sign: for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? T.One : x[i] < T.Zero ? -T.One : T.Zero; break;
            case UnaryOp.NonZero: for (int i = 0; i < x.Length; i++) y[i] = x[i] != T.Zero ? T.One : T.Zero; break;
            case UnaryOp.Inside: for (int i = 0; i < x.Length; i++) y[i] = x[i] > alpha && x[i] < beta ? T.One : T.Zero; break;
            case UnaryOp.Softplus:
                for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(ReferenceBackend.Softplus(double.CreateTruncating(x[i])));
                break;
            case UnaryOp.Erf:
                for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(ScalarMath.Erf(double.CreateTruncating(x[i])));
                break;
            case UnaryOp.Expm1:
                for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(ScalarMath.Expm1(double.CreateTruncating(x[i])));
                break;
            default: throw new NotSupportedException($"cpu backend: unary op {op}");
        }
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, double alpha = 0)
    {
        a = a.Dense(); b = b.Dense();
        switch (op)
        {
            case BinaryOp.Add: Elementwise.Zip<AddK>(a, b, y); break;
            case BinaryOp.Sub: Elementwise.Zip<SubK>(a, b, y); break;
            case BinaryOp.Mul: Elementwise.Zip<MulK>(a, b, y); break;
            case BinaryOp.Div: Elementwise.Zip<DivK>(a, b, y); break;
            case BinaryOp.Maximum: Elementwise.Zip<MaxK>(a, b, y); break;
            case BinaryOp.Greater: Masks.Greater(Full(a, y), Full(b, y), y); break;
            case BinaryOp.PassWhereGreater: Masks.PassWhereGreater(Full(a, y), Full(b, y), alpha, y); break;
            case BinaryOp.GeluGrad: Kernels.Gelu.Backward(Full(a, y), Full(b, y), y); break;
            default: throw new NotSupportedException($"cpu backend: binary op {op}");
        }
    }

    /// <summary>x broadcast to y's shape, contiguous (the gates have no broadcasting kernel of their own).</summary>
    static Tensor Full(Tensor x, Tensor y) => ShapeUtil.Equal(x.shape, y.shape) ? x : x.Detach().Expand(y.shape).Dense();

    public void Axpy(double alpha, Tensor x, Tensor y)
    {
        x = x.Dense();
        if (y.DType == DType.Float32)
        {
            if (alpha == 1) TensorPrimitives.Add(y.Span<float>(), x.Span<float>(), y.Span<float>());
            else TensorPrimitives.MultiplyAdd(x.Span<float>(), (float)alpha, y.Span<float>(), y.Span<float>());
        }
        else if (alpha == 1) TensorPrimitives.Add(y.Span<double>(), x.Span<double>(), y.Span<double>());
        else TensorPrimitives.MultiplyAdd(x.Span<double>(), alpha, y.Span<double>(), y.Span<double>());
    }

    public double Dot(Tensor a, Tensor b)
    {
        a = a.Dense(); b = b.Dense();
        if (ReferenceEquals(a, b) || a.SharesStorageWith(b) && a.offset == b.offset)
            return a.DType == DType.Float32 ? TensorPrimitives.SumOfSquares(a.Span<float>()) : TensorPrimitives.SumOfSquares(a.Span<double>());
        return a.DType == DType.Float32 ? TensorPrimitives.Dot(a.Span<float>(), b.Span<float>()) : TensorPrimitives.Dot(a.Span<double>(), b.Span<double>());
    }

    public double SumAll(Tensor x)
    {
        x = x.Dense();
        return x.DType == DType.Float32 ? TensorPrimitives.Sum(x.Span<float>()) : TensorPrimitives.Sum(x.Span<double>());
    }

    public void Sum(Tensor x, int axis, Tensor y) => Reduce.Sum(x.Dense(), axis, y);

    public void Max(Tensor x, int axis, Tensor values, int[] indices) => Reduce.Max(x.Dense(), axis, values, indices);

    public void SoftmaxRows(Tensor x, Tensor probs, Tensor? logSumExp)
    {
        x = x.Dense();
        int cols = x.shape[^1], rows = cols == 0 ? 0 : x.Length / cols;
        if (x.DType == DType.Float32) Softmax.Rows<float>(x.Span<float>(), probs.Span<float>(), logSumExp is null ? default : logSumExp.Span<float>(), rows, cols);
        else Softmax.Rows<double>(x.Span<double>(), probs.Span<double>(), logSumExp is null ? default : logSumExp.Span<double>(), rows, cols);
    }

    public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, bool accumulate)
    {
        (a, transposeA) = GemmOperand(a, transposeA);
        (b, transposeB) = GemmOperand(b, transposeB);
        int m = c.shape[0], n = c.shape[1], k = transposeA ? a.shape[0] : a.shape[1];
        if (a.DType == DType.Float32) Gemm.Multiply<float>(a.Span<float>(), transposeA, b.Span<float>(), transposeB, c.Span<float>(), m, n, k, accumulate);
        else Gemm.Multiply<double>(a.Span<double>(), transposeA, b.Span<double>(), transposeB, c.Span<double>(), m, n, k, accumulate);
    }

    /// <summary>A 2-D operand as the GEMM reads it: a transposed view of a contiguous matrix is read in place with the flag flipped.</summary>
    static (Tensor, bool) GemmOperand(Tensor x, bool transposed)
    {
        if (x.IsContiguous) return (x, transposed);
        if (x.Rank == 2 && x.strides[0] == 1 && x.strides[1] == x.shape[0])
            return (new Tensor(x.storage, [x.shape[1], x.shape[0]], [x.shape[0], 1], x.offset), !transposed);
        return (x.Dense(), transposed);
    }

    public void IndexSelect(Tensor x, ReadOnlySpan<int> rows, Tensor y)
    {
        x = x.Dense();
        int row = x.shape[0] == 0 ? 0 : x.Length / x.shape[0];
        if (x.DType == DType.Float32) Select<float>(x.Span<float>(), rows, y.Span<float>(), row);
        else Select<double>(x.Span<double>(), rows, y.Span<double>(), row);

        // Memory-bound: a large gather (a CIFAR-10 batch of 200 rows is 2.4 MB, 0.5 ms on one core) is shared by the
        // kernels' helpers, rows in pieces; small ones stay on the calling thread.
        static unsafe void Select<T>(ReadOnlySpan<T> x, ReadOnlySpan<int> rows, Span<T> y, int row) where T : unmanaged
        {
            long total = (long)rows.Length * row;
            int threads = Workers.ThreadsFor(total / (256 * 1024));
            if (threads <= 1 || row == 0)
            {
                Touch(x, rows, row);
                for (int i = 0; i < rows.Length; i++) x.Slice(rows[i] * row, row).CopyTo(y.Slice(i * row, row));
                return;
            }
            int count = x.Length / row;
            foreach (int r in rows)
                if ((uint)r >= (uint)count) throw new ArgumentOutOfRangeException(nameof(rows), r, $"index_select: row {r} of {count}");
            if (y.Length < total) throw new ArgumentException($"index_select: output of {y.Length} for {rows.Length} rows of {row}");
            fixed (T* px = x, py = y) fixed (int* pr = rows)
            {
                nint xs = (nint)px, ys = (nint)py, rs = (nint)pr;
                int n = rows.Length;
                Workers.For(n, threads, i =>
                {
                    if (i + Ahead < n) Fetch((T*)xs + (long)((int*)rs)[i + Ahead] * row, row);   // a later row's misses overlap this copy
                    new ReadOnlySpan<T>((T*)xs + (long)((int*)rs)[i] * row, row).CopyTo(new Span<T>((T*)ys + (long)i * row, row));
                });
            }
        }
    }

    // Rows scattered over a large dataset each start with TLB and cache misses, which a row-by-row copy pays one row
    // after the other (W1's 16 MNIST rows: 13–14 µs). Asking for a line of every page of each row first overlaps them
    // (~10 µs); a large gather asks for the row a few places ahead of the one it copies.
    const int Ahead = 4;

    static unsafe void Touch<T>(ReadOnlySpan<T> x, ReadOnlySpan<int> rows, int row) where T : unmanaged
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || rows.Length < 2 || row * sizeof(T) < 256) return;
        int count = x.Length / row;
        fixed (T* px = x)
            foreach (int r in rows)
                if ((uint)r < (uint)count) Fetch(px + (long)r * row, row);   // an invalid row is the copy's to report
    }

    static unsafe void Fetch<T>(T* start, int length) where T : unmanaged
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        byte* first = (byte*)start, last = (byte*)(start + length) - 1;
        for (byte* a = first; a < last; a += 4096) System.Runtime.Intrinsics.X86.Sse.Prefetch0(a);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(last);
    }

    public void AddAt(double value, ReadOnlySpan<int> positions, Tensor target)
    {
        if (target.DType == DType.Float32)
        {
            var t = target.Span<float>();
            foreach (int p in positions) t[p] += (float)value;
        }
        else
        {
            var t = target.Span<double>();
            foreach (int p in positions) t[p] += value;
        }
    }

    public void IndexAdd(Tensor source, ReadOnlySpan<int> rows, Tensor target)
    {
        source = source.Dense();
        int row = target.shape[0] == 0 ? 0 : target.Length / target.shape[0];
        if (target.DType == DType.Float32) Add<float>(source.Span<float>(), rows, target.Span<float>(), row);
        else Add<double>(source.Span<double>(), rows, target.Span<double>(), row);

        static void Add<T>(ReadOnlySpan<T> s, ReadOnlySpan<int> rows, Span<T> t, int row) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < rows.Length; i++)
            {
                var d = t.Slice(rows[i] * row, row);
                TensorPrimitives.Add(d, s.Slice(i * row, row), d);
            }
        }
    }

    // Convolution, pooling and channel statistics: kernels in Kernels/{Convolution,Pooling,Channels}.cs read dense inputs.

    public void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        Tensor xd = x.Dense(), wd = weight.Dense(), bd = bias?.Dense()!;
        if (y.DType == DType.Float32) Convolution.Forward<float>(xd, wd, bd, y, g); else Convolution.Forward<double>(xd, wd, bd, y, g);
    }

    public void Conv2dInputGrad(Tensor gy, Tensor weight, Tensor gx, in Conv2dGeometry g)
    {
        Tensor gyd = gy.Dense(), wd = weight.Dense();
        if (gx.DType == DType.Float32) Convolution.InputGrad<float>(gyd, wd, gx, g); else Convolution.InputGrad<double>(gyd, wd, gx, g);
    }

    public void Conv2dWeightGrad(Tensor x, Tensor gy, Tensor gw, in Conv2dGeometry g)
    {
        Tensor xd = x.Dense(), gyd = gy.Dense();
        if (gw.DType == DType.Float32) Convolution.WeightGrad<float>(xd, gyd, gw, g); else Convolution.WeightGrad<double>(xd, gyd, gw, g);
    }

    public void MaxPool2d(Tensor x, Tensor y, int[] indices, in Pool2dGeometry g)
    {
        var xd = x.Dense();
        if (y.DType == DType.Float32) Pooling.MaxForward<float>(xd, y, indices, g); else Pooling.MaxForward<double>(xd, y, indices, g);
    }

    public void MaxPool2dBackward(Tensor gy, int[] indices, Tensor gx, in Pool2dGeometry g)
    {
        var gyd = gy.Dense();
        if (gx.DType == DType.Float32) Pooling.MaxBackward<float>(gyd, indices, gx, g); else Pooling.MaxBackward<double>(gyd, indices, gx, g);
    }

    public void AvgPool2d(Tensor x, Tensor y, in Pool2dGeometry g)
    {
        var xd = x.Dense();
        if (y.DType == DType.Float32) Pooling.AvgForward<float>(xd, y, g); else Pooling.AvgForward<double>(xd, y, g);
    }

    public void AvgPool2dBackward(Tensor gy, Tensor gx, in Pool2dGeometry g)
    {
        var gyd = gy.Dense();
        if (gx.DType == DType.Float32) Pooling.AvgBackward<float>(gyd, gx, g); else Pooling.AvgBackward<double>(gyd, gx, g);
    }

    public void ChannelMeanVar(Tensor x, Tensor mean, Tensor variance)
    {
        var xd = x.Dense();
        if (xd.DType == DType.Float32) Channels.MeanVar<float>(xd, mean, variance); else Channels.MeanVar<double>(xd, mean, variance);
    }

    public void ChannelSums(Tensor a, Tensor? b, Tensor sumA, Tensor? sumAB)
    {
        Tensor ad = a.Dense(), bd = b?.Dense()!;
        if (ad.DType == DType.Float32) Channels.Sums<float>(ad, bd, sumA, sumAB); else Channels.Sums<double>(ad, bd, sumA, sumAB);
    }

    public void ChannelAffine(Tensor x, Tensor scale, Tensor? z, Tensor? zScale, Tensor shift, Tensor y)
    {
        Tensor xd = x.Dense(), sd = scale.Dense(), hd = shift.Dense(), zd = z?.Dense()!, zsd = zScale?.Dense()!;
        if (y.DType == DType.Float32) Channels.Affine<float>(xd, sd, zd, zsd, hd, y); else Channels.Affine<double>(xd, sd, zd, zsd, hd, y);
    }

    public void Where(Tensor condition, Tensor a, Tensor b, Tensor y)
    {
        var c = condition.Detach().Expand(y.shape).Dense();
        var ad = a.Detach().Expand(y.shape).Dense();
        var bd = b.Detach().Expand(y.shape).Dense();
        if (y.DType == DType.Float32) Select<float>(c.Span<float>(), ad.Span<float>(), bd.Span<float>(), y.Span<float>());
        else Select<double>(c.Span<double>(), ad.Span<double>(), bd.Span<double>(), y.Span<double>());

        static void Select<T>(ReadOnlySpan<T> c, ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < y.Length; i++) y[i] = c[i] != T.Zero ? a[i] : b[i];
        }
    }

    struct AddK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(b, a, d);
    }

    struct SubK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(a, b, d);
    }

    struct MulK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(b, a, d);
    }

    struct DivK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(a, b, d);
    }

    struct MaxK : IBinaryKernel
    {
        public static void Run<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(a, b, d);
        public static void Run<T>(ReadOnlySpan<T> a, T b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(a, b, d);
        public static void Run<T>(T a, ReadOnlySpan<T> b, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Max(b, a, d);
    }
}
