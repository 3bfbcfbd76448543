using System.CommandLine;
using Backprop.Data;
using Backprop.Serialization;
using SkiaSharp;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop predict</c>: the top-3 classes, with probabilities, of a trained model for the user's own images (PNG,
/// JPEG, …), each decoded, resized to the model's input size and normalised as in training.
/// </summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var top = new Option<int>("--top") { Description = "How many classes to print per image", DefaultValueFactory = _ => 3 };
        var data = new Option<string?>("--data") { Description = "Dataset folder, to refit the input normalisation of a file that does not store it" };
        var images = new Argument<string[]>("images") { Description = "Image files (PNG, JPEG, WebP, BMP, GIF)", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("predict", "Classify your own images with a trained model (top classes and probabilities)")
            { EvalCommand.ModelOption, EvalCommand.ArchOption, data, top, images };
        cmd.SetAction(r => Run(r.GetValue(EvalCommand.ModelOption)!, r.GetValue(EvalCommand.ArchOption), r.GetValue(data), r.GetValue(images)!, r.GetValue(top)));
        return cmd;
    }

    static int Run(string modelPath, string? arch, string? data, string[] images, int top)
    {
        if (top < 1) throw new ArgumentException($"--top: {top} must be at least 1");
        var (net, prep, classes) = Load(modelPath, arch, data);
        foreach (var path in images)
        {
            var p = Predict(net, prep, path);
            ConsoleOutput.Line($"{path}: " + string.Join(", ", p.Select((v, i) => (v, i)).OrderByDescending(t => t.v).Take(Math.Min(top, p.Length))
                .Select(t => $"{classes[t.i]} {ConsoleOutput.F(t.v * 100, "0.0")}%")));
        }
        return 0;
    }

    /// <summary>A classifier from any model file the CLI writes (or weights with --arch), its input normalisation and class names.</summary>
    internal static (Nn.Module Net, Preprocessor Prep, string[] Classes) Load(string modelPath, string? arch = null, string? data = null)
    {
        var file = ModelFile.Load(modelPath, arch, data: data);
        if (file.Kind == ModelKind.Vae)
            throw new ArgumentException($"predict: {modelPath} is a VAE, which does not classify images; `backprop export` writes its encoder and decoder");
        return (file.Net, file.Normalisation(), file.Classes);
    }

    /// <summary>Class probabilities for one image file.</summary>
    internal static double[] Predict(Nn.Module net, Preprocessor prep, string path)
    {
        var pixels = ReadImage(path, prep.Channels, prep.Height, prep.Width);
        var x = prep.Apply(new ImageDataset(Path.GetFileName(path), pixels, [0], prep.Channels, prep.Height, prep.Width, ["?"]));
        using (Autograd.NoGrad()) return net.Forward(x).Softmax().ToDoubleArray();
    }

    /// <summary>
    /// Decodes an image as bytes in C×H×W order at the model's input size. Colour images are resized whole (high-quality
    /// resampling). Single-channel images are prepared as MNIST's digits were: luminance, inverted when brighter than
    /// mid-grey on average (MNIST is light strokes on a dark ground, a digit on paper the opposite), cropped to the ink,
    /// scaled to fit a box of 20/28 of the side, and placed with its centre of mass at the centre.
    /// </summary>
    internal static byte[] ReadImage(string path, int channels, int height, int width)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"predict: {path} does not exist");
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"predict: {path} is not an image this build can decode (PNG, JPEG, WebP, BMP, GIF)");
        if (channels == 1) return Digit(decoded, height, width);
        using var resized = Resize(decoded, width, height, path);
        var bytes = new byte[channels * height * width];
        int plane = height * width;
        for (int i = 0; i < height; i++)
            for (int j = 0; j < width; j++)
            {
                var (r, g, b) = Rgb(resized.GetPixel(j, i));
                for (int c = 0; c < channels; c++) bytes[c * plane + i * width + j] = (byte)Math.Round(c == 0 ? r : c == 1 ? g : b);
            }
        return bytes;
    }

    // Transparent pixels count as the background (black), as an alpha-only drawing shows on a dark ground.
    static (double R, double G, double B) Rgb(SKColor c)
    {
        double a = c.Alpha / 255.0;
        return (c.Red * a, c.Green * a, c.Blue * a);
    }

    static SKBitmap Resize(SKBitmap source, int width, int height, string path) =>
        source.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.Mitchell))
        ?? throw new InvalidDataException($"predict: {path} could not be resized to {width}×{height}");

    static byte[] Digit(SKBitmap image, int height, int width)
    {
        int h = image.Height, w = image.Width;
        var lum = new byte[h * w];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
            {
                var (r, g, b) = Rgb(image.GetPixel(j, i));
                lum[i * w + j] = (byte)Math.Round(0.299 * r + 0.587 * g + 0.114 * b);
            }
        if (lum.Average(v => (double)v) > 127.5)
            for (int k = 0; k < lum.Length; k++) lum[k] = (byte)(255 - lum[k]);
        // The ink's bounding box (pixels above a quarter of the brightest); an empty image is just resized.
        int max = lum.Max(), top = h, bottom = -1, left = w, right = -1;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                if (lum[i * w + j] > max / 4)
                { top = Math.Min(top, i); bottom = Math.Max(bottom, i); left = Math.Min(left, j); right = Math.Max(right, j); }
        using var gray = new SKBitmap(new SKImageInfo(w, h, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(lum, 0, gray.GetPixels(), lum.Length);
        if (max == 0 || bottom < 0) return Gray(Resize(gray, width, height, "image"), width, height);
        int bw = right - left + 1, bh = bottom - top + 1;
        double fit = Math.Min(width, height) * 20.0 / 28 / Math.Max(bw, bh);
        int sw = Math.Max(1, (int)Math.Round(bw * fit)), sh = Math.Max(1, (int)Math.Round(bh * fit));
        using var crop = new SKBitmap();
        gray.ExtractSubset(crop, new SKRectI(left, top, right + 1, bottom + 1));
        var patch = Gray(Resize(crop, sw, sh, "image"), sw, sh);
        double mass = 0, cy = 0, cx = 0;
        for (int i = 0; i < sh; i++)
            for (int j = 0; j < sw; j++) { double v = patch[i * sw + j]; mass += v; cy += v * i; cx += v * j; }
        int oy = (int)Math.Round(height / 2.0 - (mass > 0 ? cy / mass : sh / 2.0) - 0.5), ox = (int)Math.Round(width / 2.0 - (mass > 0 ? cx / mass : sw / 2.0) - 0.5);
        oy = Math.Clamp(oy, 0, height - sh); ox = Math.Clamp(ox, 0, width - sw);
        var bytes = new byte[height * width];
        for (int i = 0; i < sh; i++) patch.AsSpan(i * sw, sw).CopyTo(bytes.AsSpan((oy + i) * width + ox, sw));
        return bytes;
    }

    static byte[] Gray(SKBitmap rgba, int width, int height)
    {
        using (rgba)
        {
            var bytes = new byte[width * height];
            for (int i = 0; i < height; i++)
                for (int j = 0; j < width; j++)
                {
                    var (r, g, b) = Rgb(rgba.GetPixel(j, i));
                    bytes[i * width + j] = (byte)Math.Round((r + g + b) / 3);
                }
            return bytes;
        }
    }
}
