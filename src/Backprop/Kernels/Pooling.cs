using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Backprop.Backends;

namespace Backprop.Kernels;

/// <summary>
/// Pooling over NCHW planes, one plane (n, c) at a time, planes shared among threads. Max pooling's common case
/// (2×2, stride 2, no padding or dilation) reads two input rows as vectors and takes pairwise maxima; the general
/// case walks each window.
/// </summary>
internal static class Pooling
{
    public static void MaxForward<T>(Tensor x, Tensor y, int[] indices, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var xs = x.Span<T>().Slice(p * inPlane, inPlane);
            var ys = y.Span<T>().Slice(p * outPlane, outPlane);
            var idx = indices.AsSpan(p * outPlane, outPlane);
            if (IsHalving(g)) MaxHalving(xs, ys, idx, g);
            else MaxGeneral(xs, ys, idx, g);
        });
    }

    static bool IsHalving(in Pool2dGeometry g) => g is { KernelHeight: 2, KernelWidth: 2, StrideHeight: 2, StrideWidth: 2, PadHeight: 0, PadWidth: 0, DilationHeight: 1, DilationWidth: 1 }
        && g.OutHeight == g.Height / 2 && g.OutWidth == g.Width / 2;

    static void MaxGeneral<T>(ReadOnlySpan<T> x, Span<T> y, Span<int> idx, in Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = 0;
        for (int i = 0; i < g.OutHeight; i++)
            for (int j = 0; j < g.OutWidth; j++, o++)
            {
                T best = T.NegativeInfinity;
                int arg = -1;
                for (int p = 0; p < g.KernelHeight; p++)
                {
                    int h = i * g.StrideHeight - g.PadHeight + p * g.DilationHeight;
                    if ((uint)h >= (uint)g.Height) continue;
                    for (int q = 0; q < g.KernelWidth; q++)
                    {
                        int w = j * g.StrideWidth - g.PadWidth + q * g.DilationWidth;
                        if ((uint)w >= (uint)g.Width) continue;
                        T v = x[h * g.Width + w];
                        if (arg < 0 || v > best || T.IsNaN(v) && !T.IsNaN(best)) { best = v; arg = h * g.Width + w; }
                    }
                }
                y[o] = best;
                idx[o] = arg;
            }
    }

    // 2×2 windows, stride 2: for each output, compare (top-left, top-right, bottom-left, bottom-right) in window order.
    static void MaxHalving<T>(ReadOnlySpan<T> x, Span<T> y, Span<int> idx, in Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = g.Width, ow = g.OutWidth;
        for (int i = 0; i < g.OutHeight; i++)
        {
            var top = x.Slice(2 * i * w, w);
            var bottom = x.Slice((2 * i + 1) * w, w);
            var yr = y.Slice(i * ow, ow);
            var ir = idx.Slice(i * ow, ow);
            int r0 = 2 * i * w;
            for (int j = 0; j < ow; j++)
            {
                T a = top[2 * j], b = top[2 * j + 1], c = bottom[2 * j], d = bottom[2 * j + 1];
                T best = a; int arg = 0;
                if (b > best || T.IsNaN(b) && !T.IsNaN(best)) { best = b; arg = 1; }
                if (c > best || T.IsNaN(c) && !T.IsNaN(best)) { best = c; arg = w; }
                if (d > best || T.IsNaN(d) && !T.IsNaN(best)) { best = d; arg = w + 1; }
                yr[j] = best;
                ir[j] = r0 + 2 * j + arg;
            }
        }
    }

    public static void MaxBackward<T>(Tensor gy, int[] indices, Tensor gx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var gxs = gx.Span<T>().Slice(p * inPlane, inPlane);
            var gys = gy.Span<T>().Slice(p * outPlane, outPlane);
            var idx = indices.AsSpan(p * outPlane, outPlane);
            for (int o = 0; o < gys.Length; o++) gxs[idx[o]] += gys[o];
        });
    }

    public static void AvgForward<T>(Tensor x, Tensor y, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, outPlane, p =>
        {
            var xs = x.Span<T>().Slice(p * inPlane, inPlane);
            var ys = y.Span<T>().Slice(p * outPlane, outPlane);
            for (int i = 0, o = 0; i < g.OutHeight; i++)
            {
                var (hs, he, _) = g.Window(i, true);
                for (int j = 0; j < g.OutWidth; j++, o++)
                {
                    var (ws, we, _) = g.Window(j, false);
                    T s = T.Zero;
                    for (int h = hs; h < he; h++) s += TensorPrimitives.Sum(xs.Slice(h * g.Width + ws, we - ws));
                    ys[o] = s / T.CreateTruncating(g.Divisor(i, j));
                }
            }
        });
    }

    public static void AvgBackward<T>(Tensor gy, Tensor gx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        Planes(g.Batch * g.Channels, inPlane, p =>
        {
            var gxs = gx.Span<T>().Slice(p * inPlane, inPlane);
            var gys = gy.Span<T>().Slice(p * outPlane, outPlane);
            gxs.Clear();
            for (int i = 0, o = 0; i < g.OutHeight; i++)
            {
                var (hs, he, _) = g.Window(i, true);
                for (int j = 0; j < g.OutWidth; j++, o++)
                {
                    var (ws, we, _) = g.Window(j, false);
                    T share = gys[o] / T.CreateTruncating(g.Divisor(i, j));
                    for (int h = hs; h < he; h++)
                    {
                        var row = gxs.Slice(h * g.Width + ws, we - ws);
                        TensorPrimitives.Add(row, share, row);
                    }
                }
            }
        });
    }

    /// <summary>Runs body over planes, sharing them among threads when there is enough work (≈ 32 K elements per thread).</summary>
    static void Planes(int planes, int perPlane, Action<int> body)
    {
        long work = (long)planes * perPlane;
        int threads = (int)Math.Min(Math.Min(Parallelism.MaxThreads, Environment.ProcessorCount), Math.Max(1, Math.Min(planes, work / (32 * 1024))));
        if (threads <= 1) { for (int p = 0; p < planes; p++) body(p); return; }
        int per = (planes + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            for (int p = t * per, end = Math.Min(planes, p + per); p < end; p++) body(p);
        });
    }
}
