using System.Numerics.Tensors;

namespace Backprop.Data;

/// <summary>How pixel values are normalised after scaling.</summary>
public enum Normalization
{
    /// <summary>Pixels / 255, in [0, 1].</summary>
    Scale,
    /// <summary>Subtract the training set's mean image (the classic CIFAR-10 exercise, on raw 0–255 values unless scaled).</summary>
    MeanImage,
    /// <summary>Per-channel standardisation: (x − μ_c)/σ_c with statistics of the training set.</summary>
    PerChannel,
}

/// <summary>
/// Turns byte images into flattened float tensors (N, C·H·W). Statistics are fitted on the training split only
/// and then applied unchanged to every split.
/// </summary>
public sealed class Preprocessor
{
    readonly float[]? mean;     // per feature (mean image) or per channel
    readonly float[]? invStd;   // per channel

    Preprocessor(Normalization mode, bool scale, int channels, int plane, float[]? mean, float[]? invStd)
    {
        Mode = mode; Scale01 = scale; Channels = channels; Plane = plane; this.mean = mean; this.invStd = invStd;
    }

    public Normalization Mode { get; }
    /// <summary>Whether bytes are divided by 255 first.</summary>
    public bool Scale01 { get; }
    public int Channels { get; }
    int Plane { get; }

    /// <summary>Fits the statistics <paramref name="mode"/> needs on <paramref name="train"/>.</summary>
    public static Preprocessor Fit(ImageDataset train, Normalization mode, bool scale01 = true)
    {
        int f = train.Features, plane = train.Height * train.Width;
        float k = scale01 ? 1 / 255f : 1f;
        if (mode == Normalization.Scale) return new Preprocessor(mode, scale01, train.Channels, plane, null, null);
        if (train.Count == 0) throw new ArgumentException($"{train.Name}: cannot fit normalisation statistics on an empty training set");
        if (mode == Normalization.MeanImage)
        {
            var sum = new double[f];
            for (int i = 0; i < train.Count; i++)
            {
                var row = train.Pixels.AsSpan(i * f, f);
                for (int j = 0; j < f; j++) sum[j] += row[j];
            }
            return new Preprocessor(mode, scale01, train.Channels, plane, Array.ConvertAll(sum, s => (float)(s / train.Count * k)), null);
        }
        var mu = new double[train.Channels];
        var sq = new double[train.Channels];
        for (int i = 0; i < train.Count; i++)
            for (int c = 0; c < train.Channels; c++)
            {
                var p = train.Pixels.AsSpan(i * f + c * plane, plane);
                long s = 0, s2 = 0;
                foreach (byte b in p) { s += b; s2 += b * b; }
                mu[c] += s; sq[c] += s2;
            }
        double n = (double)train.Count * plane;
        var m = new float[train.Channels];
        var inv = new float[train.Channels];
        for (int c = 0; c < train.Channels; c++)
        {
            double mean = mu[c] / n, variance = Math.Max(sq[c] / n - mean * mean, 1e-12);
            m[c] = (float)(mean * k);
            inv[c] = (float)(1 / (Math.Sqrt(variance) * k));
        }
        return new Preprocessor(mode, scale01, train.Channels, plane, m, inv);
    }

    /// <summary>The dataset as a (N, C·H·W) tensor with the fitted normalisation applied.</summary>
    public Tensor Apply(ImageDataset data, DType dtype = DType.Float32)
    {
        if (data.Channels != Channels || data.Height * data.Width != Plane)
            throw new ArgumentException($"{data.Name}: images of {data.Channels}×{data.Height}×{data.Width} do not match the fitted {Channels} channels × {Plane} pixels");
        int f = data.Features;
        var x = new float[data.Pixels.Length];
        TensorPrimitives.ConvertChecked<byte, float>(data.Pixels, x);
        if (Scale01) TensorPrimitives.Multiply(x, 1 / 255f, x);
        for (int i = 0; i < data.Count; i++)
        {
            var row = x.AsSpan(i * f, f);
            switch (Mode)
            {
                case Normalization.MeanImage:
                    TensorPrimitives.Subtract(row, mean, row);
                    break;
                case Normalization.PerChannel:
                    for (int c = 0; c < Channels; c++)
                    {
                        var p = row.Slice(c * Plane, Plane);
                        TensorPrimitives.Subtract(p, mean![c], p);
                        TensorPrimitives.Multiply(p, invStd![c], p);
                    }
                    break;
            }
        }
        var t = Tensor.From(x, [data.Count, f]);
        return dtype == DType.Float32 ? t : t.To(dtype);
    }
}
