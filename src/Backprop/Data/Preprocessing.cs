using System.Numerics;
using System.Numerics.Tensors;

namespace Backprop.Data;

/// <summary>How pixel values are normalised after scaling.</summary>
public enum Normalization
{
    /// <summary>Pixels / 255, in [0, 1] (or raw 0–255 when not scaled).</summary>
    Scale,
    /// <summary>Subtract the training set's mean image (the classic CIFAR-10 exercise).</summary>
    MeanImage,
    /// <summary>Per-channel standardisation: (x − μ_c)/σ_c with statistics of the training set.</summary>
    PerChannel,
}

/// <summary>
/// Turns byte images into float tensors, (N, C·H·W) flattened or (N, C, H, W). Statistics are fitted on the
/// training split only and then applied unchanged to every split, so validation and test never leak into them.
/// </summary>
public sealed class Preprocessor
{
    // Every mode is one affine map per feature, y = b·scale_j + shift_j, applied in one fused pass per row.
    readonly float[] scale, shift;

    Preprocessor(Normalization mode, bool scale01, int channels, int height, int width, float[] scale, float[] shift)
    {
        Mode = mode; Scale01 = scale01; Channels = channels; Height = height; Width = width; this.scale = scale; this.shift = shift;
    }

    public Normalization Mode { get; }
    /// <summary>Whether bytes are divided by 255 first.</summary>
    public bool Scale01 { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    int Features => Channels * Height * Width;

    /// <summary>The fitted mean image (MeanImage) or per-pixel channel mean (PerChannel), in output units before the shift; zeros for Scale.</summary>
    public float[] Mean()
    {
        var m = new float[Features];
        float k = Scale01 ? 1 / 255f : 1f;
        // shift = −μ·scale/k  ⇒  μ = −shift·k/scale
        for (int j = 0; j < m.Length; j++) m[j] = -shift[j] * k / scale[j];
        return m;
    }

    /// <summary>Fits the statistics <paramref name="mode"/> needs on <paramref name="train"/> (and only there).</summary>
    public static Preprocessor Fit(ImageDataset train, Normalization mode, bool scale01 = true)
    {
        int f = train.Features, plane = train.Height * train.Width;
        float k = scale01 ? 1 / 255f : 1f;
        var scale = new float[f];
        var shift = new float[f];
        Array.Fill(scale, k);
        if (mode != Normalization.Scale && train.Count == 0)
            throw new ArgumentException($"{train.Name}: cannot fit normalisation statistics on an empty training set");
        if (mode == Normalization.MeanImage)
        {
            // uint sums are exact up to 16.8 million images of 255s
            if (train.Count > uint.MaxValue / 255) throw new ArgumentException($"{train.Name}: too many images for the mean-image sums");
            var sum = new uint[f];
            for (int i = 0; i < train.Count; i++) AddBytes(train.Pixels.AsSpan(i * f, f), sum);
            for (int j = 0; j < f; j++) shift[j] = (float)(-(double)sum[j] / train.Count * k);
        }
        else if (mode == Normalization.PerChannel)
        {
            var s1 = new long[train.Channels];
            var s2 = new long[train.Channels];
            for (int i = 0; i < train.Count; i++)
                for (int c = 0; c < train.Channels; c++)
                {
                    long a = 0, b = 0;
                    foreach (byte v in train.Pixels.AsSpan(i * f + c * plane, plane)) { a += v; b += v * v; }
                    s1[c] += a; s2[c] += b;
                }
            double n = (double)train.Count * plane;
            for (int c = 0; c < train.Channels; c++)
            {
                double mean = s1[c] / n, std = Math.Sqrt(Math.Max(s2[c] / n - mean * mean, 1e-12));
                // (b·k − μk)/(σk) = b/σ − μ/σ: the 1/255 cancels, so scaling does not change the result
                scale.AsSpan(c * plane, plane).Fill((float)(1 / std));
                shift.AsSpan(c * plane, plane).Fill((float)(-mean / std));
            }
        }
        return new Preprocessor(mode, scale01, train.Channels, train.Height, train.Width, scale, shift);
    }

    static void AddBytes(ReadOnlySpan<byte> row, Span<uint> sum)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
            for (; j <= row.Length - Vector<byte>.Count; j += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(row[j..]), out var lo, out var hi);
                Vector.Widen(lo, out var a, out var b);
                Vector.Widen(hi, out var c, out var d);
                int w = Vector<uint>.Count;
                var s = sum[j..];
                (new Vector<uint>(s) + a).CopyTo(s);
                (new Vector<uint>(s[w..]) + b).CopyTo(s[w..]);
                (new Vector<uint>(s[(2 * w)..]) + c).CopyTo(s[(2 * w)..]);
                (new Vector<uint>(s[(3 * w)..]) + d).CopyTo(s[(3 * w)..]);
            }
        for (; j < row.Length; j++) sum[j] += row[j];
    }

    /// <summary>
    /// The dataset as a fresh tensor with the fitted normalisation applied: (N, C·H·W) when
    /// <paramref name="flatten"/>, else (N, C, H, W).
    /// </summary>
    public Tensor Apply(ImageDataset data, DType dtype = DType.Float32, bool flatten = true)
    {
        if (data.Channels != Channels || data.Height != Height || data.Width != Width)
            throw new ArgumentException($"{data.Name}: images of {data.Channels}×{data.Height}×{data.Width} do not match the fitted {Channels}×{Height}×{Width}");
        int[] shape = flatten ? [data.Count, Features] : [data.Count, Channels, Height, Width];
        if (dtype == DType.Float32)
        {
            var x = new float[data.Pixels.Length];
            Transform(data, x, scale, shift);
            return new Tensor(x, shape);
        }
        var xd = new double[data.Pixels.Length];
        Transform(data, xd, Array.ConvertAll(scale, v => (double)v), Array.ConvertAll(shift, v => (double)v));
        return new Tensor(xd, shape);
    }

    /// <summary>The fitted map as JSON (mode, image size and the per-feature scale and shift), for a model file's metadata.</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(new SavedPreprocessor(Mode.ToString(), Scale01, Channels, Height, Width, scale, shift), PreprocessorJson.Default.SavedPreprocessor);

    /// <summary>Reads what <see cref="ToJson"/> wrote; anything else raises <see cref="InvalidDataException"/>.</summary>
    public static Preprocessor FromJson(string json)
    {
        SavedPreprocessor? s;
        try { s = System.Text.Json.JsonSerializer.Deserialize(json, PreprocessorJson.Default.SavedPreprocessor); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"preprocessing metadata: {e.Message}"); }
        if (s is null || !Enum.TryParse<Normalization>(s.Mode, out var mode) || s.Channels <= 0 || s.Height <= 0 || s.Width <= 0
            || (long)s.Channels * s.Height * s.Width > 1 << 24 || s.Scale is null || s.Shift is null
            || s.Scale.Length != s.Channels * s.Height * s.Width || s.Shift.Length != s.Scale.Length
            || !s.Scale.All(float.IsFinite) || !s.Shift.All(float.IsFinite))
            throw new InvalidDataException("preprocessing metadata: missing or inconsistent fields (mode, image size, scale and shift per feature)");
        return new Preprocessor(mode, s.Scale01, s.Channels, s.Height, s.Width, s.Scale, s.Shift);
    }


    static void Transform<T>(ImageDataset data, T[] x, T[] scale, T[] shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int f = data.Features;
        for (int i = 0; i < data.Count; i++)
        {
            var row = x.AsSpan(i * f, f);
            TensorPrimitives.ConvertTruncating<byte, T>(data.Pixels.AsSpan(i * f, f), row);
            TensorPrimitives.FusedMultiplyAdd(row, scale, shift, row);
        }
    }
}

internal sealed record SavedPreprocessor(string Mode, bool Scale01, int Channels, int Height, int Width, float[] Scale, float[] Shift);

[System.Text.Json.Serialization.JsonSerializable(typeof(SavedPreprocessor))]
internal sealed partial class PreprocessorJson : System.Text.Json.Serialization.JsonSerializerContext;
