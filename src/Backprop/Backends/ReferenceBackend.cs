namespace Backprop.Backends;

/// <summary>
/// Deliberately simple kernels: one scalar loop per method over logical indices (any layout), every value and every
/// sum carried in float64 and rounded once when stored. Slow and obviously right — the oracle the SIMD kernels are
/// tested against, and the proof that ops reach memory only through <see cref="IBackend"/>.
/// </summary>
internal sealed class ReferenceBackend : IBackend
{
    public string Name => "reference";

    public void Copy(Tensor source, Tensor destination)
    {
        for (int i = 0; i < source.Length; i++) destination.SetFlat(i, source.GetFlat(i));
    }

    public void Unary(UnaryOp op, Tensor x, Tensor y, double alpha = 0, double beta = 0)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x.GetFlat(i);
            y.SetFlat(i, op switch
            {
                UnaryOp.Neg => -v,
                UnaryOp.Exp => Math.Exp(v),
                UnaryOp.Log => Math.Log(v),
                UnaryOp.Sqrt => Math.Sqrt(v),
                UnaryOp.Sin => Math.Sin(v),
                UnaryOp.Cos => Math.Cos(v),
                UnaryOp.Tanh => Math.Tanh(v),
                UnaryOp.Sigmoid => v >= 0 ? 1 / (1 + Math.Exp(-v)) : Math.Exp(v) / (1 + Math.Exp(v)),
                UnaryOp.Relu => v > 0 ? v : 0,
                UnaryOp.Gelu => v * Kernels.Gelu.Cdf(v),
                UnaryOp.Abs => Math.Abs(v),
                UnaryOp.Sign => v > 0 ? 1 : v < 0 ? -1 : 0,
                UnaryOp.NonZero => v != 0 ? 1 : 0,
                UnaryOp.Pow => Math.Pow(v, alpha),
                UnaryOp.Clamp => Math.Min(Math.Max(v, alpha), beta),
                UnaryOp.Inside => v > alpha && v < beta ? 1 : 0,
                UnaryOp.Softplus => Softplus(v),
                UnaryOp.Erf => Kernels.ScalarMath.Erf(v),
                UnaryOp.Expm1 => Kernels.ScalarMath.Expm1(v),
                _ => throw new NotSupportedException($"reference backend: unary op {op}"),
            });
        }
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, double alpha = 0)
    {
        var shape = y.shape;
        Tensor ea = a.Detach().Expand(shape), eb = b.Detach().Expand(shape);
        var result = new double[y.Length];   // y may be a: read everything before writing
        for (int i = 0; i < result.Length; i++)
        {
            double u = ea.GetFlat(i), v = eb.GetFlat(i);
            result[i] = op switch
            {
                BinaryOp.Add => u + v,
                BinaryOp.Sub => u - v,
                BinaryOp.Mul => u * v,
                BinaryOp.Div => u / v,
                BinaryOp.Maximum => double.IsNaN(u) || double.IsNaN(v) ? double.NaN : Math.Max(u, v),
                BinaryOp.Greater => u > v ? 1 : 0,
                BinaryOp.PassWhereGreater => v > alpha ? u : 0,
                BinaryOp.GeluGrad => u * (Kernels.Gelu.Cdf(v) + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI)),
                _ => throw new NotSupportedException($"reference backend: binary op {op}"),
            };
        }
        for (int i = 0; i < result.Length; i++) y.SetFlat(i, result[i]);
    }

    /// <summary>log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}).</summary>
    internal static double Softplus(double x) => Math.Max(x, 0) + Log1p(Math.Exp(-Math.Abs(x)));

    // log(1 + u) to a few ulps for tiny u (Goldberg's trick: the rounding of w = 1 + u cancels in log(w)/(w − 1));
    // .NET's double.LogP1 is log(u + 1) and rounds a tiny u away.
    internal static double Log1p(double u)
    {
        double w = 1 + u;
        return w == 1 ? u : Math.Log(w) * u / (w - 1);
    }

    public void Axpy(double alpha, Tensor x, Tensor y)
    {
        for (int i = 0; i < y.Length; i++) y.SetFlat(i, y.GetFlat(i) + alpha * x.GetFlat(i));
    }

    public double Dot(Tensor a, Tensor b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a.GetFlat(i) * b.GetFlat(i);
        return s;
    }

    public double SumAll(Tensor x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += x.GetFlat(i);
        return s;
    }

    public void Sum(Tensor x, int axis, Tensor y)
    {
        var (outer, n, inner) = ShapeUtil.Around(x.shape, axis);
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                double s = 0;
                for (int i = 0; i < n; i++) s += x.GetFlat((o * n + i) * inner + j);
                y.SetFlat(o * inner + j, s);
            }
    }

    public void Max(Tensor x, int axis, Tensor values, int[] indices)
    {
        var (outer, n, inner) = ShapeUtil.Around(x.shape, axis);
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
            {
                int best = 0;
                double bv = x.GetFlat(o * n * inner + j);
                for (int i = 1; i < n; i++)
                {
                    double v = x.GetFlat((o * n + i) * inner + j);
                    if (v > bv || double.IsNaN(v) && !double.IsNaN(bv)) { bv = v; best = i; }
                }
                indices[o * inner + j] = best;
                values.SetFlat(o * inner + j, bv);
            }
    }

    public void SoftmaxRows(Tensor x, Tensor probs, Tensor? logSumExp)
    {
        int cols = x.shape[^1], rows = cols == 0 ? 0 : x.Length / cols;
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < cols; c++) max = Math.Max(max, x.GetFlat(r * cols + c));
            double sum = 0;
            for (int c = 0; c < cols; c++) sum += Math.Exp(x.GetFlat(r * cols + c) - max);
            for (int c = 0; c < cols; c++) probs.SetFlat(r * cols + c, Math.Exp(x.GetFlat(r * cols + c) - max) / sum);
            logSumExp?.SetFlat(r, max + Math.Log(sum));
        }
    }

    public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, bool accumulate)
    {
        if (transposeA) a = a.Detach().T();
        if (transposeB) b = b.Detach().T();
        int m = c.shape[0], n = c.shape[1], k = a.shape[1];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = accumulate ? c.GetFlat(i * n + j) : 0;
                for (int p = 0; p < k; p++) s += At(a, i, p) * At(b, p, j);
                c.SetFlat(i * n + j, s);
            }
    }

    static double At(Tensor t, int i, int j)
    {
        int at = t.offset + i * t.strides[0] + j * t.strides[1];
        return t.storage.Data is float[] f ? f[at] : ((double[])t.storage.Data)[at];
    }

    public void IndexSelect(Tensor x, ReadOnlySpan<int> rows, Tensor y)
    {
        int row = x.shape[0] == 0 ? 0 : x.Length / x.shape[0];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < row; j++) y.SetFlat(i * row + j, x.GetFlat(rows[i] * row + j));
    }

    public void AddAt(double value, ReadOnlySpan<int> positions, Tensor target)
    {
        foreach (int p in positions) target.SetFlat(p, target.GetFlat(p) + (target.DType == DType.Float32 ? (float)value : value));
    }

    public void IndexAdd(Tensor source, ReadOnlySpan<int> rows, Tensor target)
    {
        int row = target.shape[0] == 0 ? 0 : target.Length / target.shape[0];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < row; j++) target.SetFlat(rows[i] * row + j, target.GetFlat(rows[i] * row + j) + source.GetFlat(i * row + j));
    }

    public void Where(Tensor condition, Tensor a, Tensor b, Tensor y)
    {
        Tensor c = condition.Detach().Expand(y.shape), ea = a.Detach().Expand(y.shape), eb = b.Detach().Expand(y.shape);
        for (int i = 0; i < y.Length; i++) y.SetFlat(i, c.GetFlat(i) != 0 ? ea.GetFlat(i) : eb.GetFlat(i));
    }

    // ---- convolution and pooling: the textbook sums, index by index --------------------------------------------

    public void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g)
    {
        int oh = g.OutHeight, ow = g.OutWidth, cg = g.GroupInChannels, kg = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int k = 0; k < g.OutChannels; k++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double s = bias is null ? 0 : bias.GetFlat(k);
                        for (int c = 0; c < cg; c++)
                            for (int p = 0; p < g.KernelHeight; p++)
                                for (int q = 0; q < g.KernelWidth; q++)
                                    if (Input(g, i, j, p, q) is (int h, int w))
                                        s += x[n, k / kg * cg + c, h, w] * weight[k, c, p, q];
                        y[n, k, i, j] = s;
                    }
    }

    public void Conv2dInputGrad(Tensor gy, Tensor weight, Tensor gx, in Conv2dGeometry g)
    {
        var sums = new double[gx.Length];
        int oh = g.OutHeight, ow = g.OutWidth, cg = g.GroupInChannels, kg = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int k = 0; k < g.OutChannels; k++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                        for (int c = 0; c < cg; c++)
                            for (int p = 0; p < g.KernelHeight; p++)
                                for (int q = 0; q < g.KernelWidth; q++)
                                    if (Input(g, i, j, p, q) is (int h, int w))
                                        sums[((n * g.InChannels + k / kg * cg + c) * g.Height + h) * g.Width + w] += gy[n, k, i, j] * weight[k, c, p, q];
        for (int i = 0; i < sums.Length; i++) gx.SetFlat(i, sums[i]);
    }

    public void Conv2dWeightGrad(Tensor x, Tensor gy, Tensor gw, in Conv2dGeometry g)
    {
        int oh = g.OutHeight, ow = g.OutWidth, cg = g.GroupInChannels, kg = g.GroupOutChannels;
        for (int k = 0; k < g.OutChannels; k++)
            for (int c = 0; c < cg; c++)
                for (int p = 0; p < g.KernelHeight; p++)
                    for (int q = 0; q < g.KernelWidth; q++)
                    {
                        double s = 0;
                        for (int n = 0; n < g.Batch; n++)
                            for (int i = 0; i < oh; i++)
                                for (int j = 0; j < ow; j++)
                                    if (Input(g, i, j, p, q) is (int h, int w))
                                        s += gy[n, k, i, j] * x[n, k / kg * cg + c, h, w];
                        gw[k, c, p, q] = s;
                    }
    }

    // The input pixel that kernel tap (p, q) of output (i, j) reads, or null in the padding.
    static (int, int)? Input(in Conv2dGeometry g, int i, int j, int p, int q)
    {
        int h = i * g.StrideHeight - g.PadTop + p * g.DilationHeight, w = j * g.StrideWidth - g.PadLeft + q * g.DilationWidth;
        return h >= 0 && h < g.Height && w >= 0 && w < g.Width ? (h, w) : null;
    }

    public void MaxPool2d(Tensor x, Tensor y, int[] indices, in Pool2dGeometry g)
    {
        int oh = g.OutHeight, ow = g.OutWidth, at = 0;
        for (int n = 0; n < g.Batch; n++)
            for (int c = 0; c < g.Channels; c++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++, at++)
                    {
                        double best = double.NegativeInfinity;
                        int arg = -1;
                        for (int p = 0; p < g.KernelHeight; p++)
                            for (int q = 0; q < g.KernelWidth; q++)
                            {
                                int h = i * g.StrideHeight - g.PadHeight + p * g.DilationHeight, w = j * g.StrideWidth - g.PadWidth + q * g.DilationWidth;
                                if (h < 0 || h >= g.Height || w < 0 || w >= g.Width) continue;
                                double v = x[n, c, h, w];
                                if (arg < 0 || v > best || double.IsNaN(v)) { best = v; arg = h * g.Width + w; }   // as PyTorch: the first maximum, the last NaN
                            }
                        y[n, c, i, j] = best;
                        indices[at] = arg;
                    }
    }

    public void MaxPool2dBackward(Tensor gy, int[] indices, Tensor gx, in Pool2dGeometry g)
    {
        int plane = g.Height * g.Width, outPlane = g.OutHeight * g.OutWidth;
        gx.Fill(0);
        for (int o = 0; o < indices.Length; o++)
        {
            int at = o / outPlane * plane + indices[o];
            gx.SetFlat(at, gx.GetFlat(at) + gy.GetFlat(o));
        }
    }

    public void AvgPool2d(Tensor x, Tensor y, in Pool2dGeometry g)
    {
        for (int n = 0; n < g.Batch; n++)
            for (int c = 0; c < g.Channels; c++)
                for (int i = 0; i < g.OutHeight; i++)
                    for (int j = 0; j < g.OutWidth; j++)
                    {
                        var (hs, he, _) = g.Window(i, true);
                        var (ws, we, _) = g.Window(j, false);
                        double s = 0;
                        for (int h = hs; h < he; h++)
                            for (int w = ws; w < we; w++) s += x[n, c, h, w];
                        y[n, c, i, j] = s / g.Divisor(i, j);
                    }
    }

    public void AvgPool2dBackward(Tensor gy, Tensor gx, in Pool2dGeometry g)
    {
        var sums = new double[gx.Length];
        for (int n = 0; n < g.Batch; n++)
            for (int c = 0; c < g.Channels; c++)
                for (int i = 0; i < g.OutHeight; i++)
                    for (int j = 0; j < g.OutWidth; j++)
                    {
                        var (hs, he, _) = g.Window(i, true);
                        var (ws, we, _) = g.Window(j, false);
                        double share = gy[n, c, i, j] / g.Divisor(i, j);
                        for (int h = hs; h < he; h++)
                            for (int w = ws; w < we; w++) sums[((n * g.Channels + c) * g.Height + h) * g.Width + w] += share;
                    }
        for (int i = 0; i < sums.Length; i++) gx.SetFlat(i, sums[i]);
    }

    // ---- per-channel statistics (batch normalisation over (N, C, L)) ---------------------------------------------

    public void ChannelMeanVar(Tensor x, Tensor mean, Tensor variance)
    {
        int nb = x.shape[0], c = x.shape[1], l = x.shape[2];
        for (int k = 0; k < c; k++)
        {
            double s = 0, ss = 0;
            for (int n = 0; n < nb; n++) for (int i = 0; i < l; i++) s += x[n, k, i];
            double mu = s / ((double)nb * l);
            for (int n = 0; n < nb; n++) for (int i = 0; i < l; i++) ss += (x[n, k, i] - mu) * (x[n, k, i] - mu);
            mean.SetFlat(k, mu);
            variance.SetFlat(k, ss / ((double)nb * l));
        }
    }

    public void ChannelSums(Tensor a, Tensor? b, Tensor sumA, Tensor? sumAB)
    {
        int nb = a.shape[0], c = a.shape[1], l = a.shape[2];
        for (int k = 0; k < c; k++)
        {
            double s = 0, sab = 0;
            for (int n = 0; n < nb; n++)
                for (int i = 0; i < l; i++) { s += a[n, k, i]; if (b is not null) sab += a[n, k, i] * b[n, k, i]; }
            sumA.SetFlat(k, s);
            sumAB?.SetFlat(k, sab);
        }
    }

    public void ChannelAffine(Tensor x, Tensor scale, Tensor? z, Tensor? zScale, Tensor shift, Tensor y)
    {
        int nb = x.shape[0], c = x.shape[1], l = x.shape[2];
        for (int n = 0; n < nb; n++)
            for (int k = 0; k < c; k++)
                for (int i = 0; i < l; i++)
                    y.SetFlat((n * c + k) * l + i, x[n, k, i] * scale.GetFlat(k) + (z is null ? 0 : z[n, k, i] * zScale!.GetFlat(k)) + shift.GetFlat(k));
    }
}
