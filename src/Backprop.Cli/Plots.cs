using ScottPlot;

namespace Backprop.Cli;

/// <summary>Training pictures (ScottPlot, CLI only): curves, first-layer weights, confusion matrix.</summary>
internal static class Plots
{
    public static void Curves(string path, string title, string yLabel, IReadOnlyList<(string Label, double[] Values)> series, double[]? x = null)
    {
        var plt = new Plot();
        foreach (var (label, values) in series)
        {
            if (values.Length == 0) continue;
            var xs = x ?? Enumerable.Range(1, values.Length).Select(i => (double)i).ToArray();
            var s = plt.Add.Scatter(xs, values);
            s.LegendText = label;
            s.MarkerSize = values.Length > 60 ? 0 : 4;
        }
        plt.Title(title);
        plt.XLabel(x is null ? "epoch" : "iteration");
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.UpperRight);
        Serialization.AtomicFile.Write(path, f => f.Write(plt.GetImageBytes(900, 550, ScottPlot.ImageFormat.Png)));
    }

    /// <summary>
    /// Each row of <paramref name="weights"/> (one hidden unit's incoming weights) as a small image, tiled in a grid
    /// and scaled per tile to its own min–max so every unit's pattern is visible.
    /// </summary>
    public static void WeightGrid(string path, float[] weights, int units, int channels, int height, int width, int maxTiles = 100)
    {
        int n = Math.Min(units, maxTiles), cols = (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + cols - 1) / cols, gap = 1;
        int tileH = height + gap, tileW = width + gap, per = channels * height * width;
        var rgb = new double[rows * tileH + gap, cols * tileW + gap, 3];
        for (int u = 0; u < n; u++)
        {
            var w = weights.AsSpan(u * per, per);
            float lo = float.MaxValue, hi = float.MinValue;
            foreach (var v in w) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
            double scale = hi > lo ? 1.0 / (hi - lo) : 0;
            int r0 = gap + u / cols * tileH, c0 = gap + u % cols * tileW;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    for (int ch = 0; ch < 3; ch++)
                    {
                        int src = (channels == 3 ? ch : 0) * height * width + y * width + x;
                        rgb[r0 + y, c0 + x, ch] = (w[src] - lo) * scale;
                    }
        }
        SaveRgb(path, rgb, scale: Math.Max(1, 600 / Math.Max(rgb.GetLength(0), rgb.GetLength(1))));
    }

    /// <summary>
    /// Greyscale images (values in [0, 1], <paramref name="count"/> of <paramref name="height"/>×<paramref name="width"/>,
    /// row-major one after another) tiled <paramref name="columns"/> to a row on a grey one-pixel grid: white ink on black.
    /// </summary>
    public static void ImageGrid(string path, float[] images, int count, int columns, int height, int width, int scale = 3)
    {
        int rows = (count + columns - 1) / columns, gap = 1, per = height * width;
        var rgb = new double[rows * (height + gap) + gap, columns * (width + gap) + gap, 3];
        for (int y = 0; y < rgb.GetLength(0); y++)
            for (int x = 0; x < rgb.GetLength(1); x++)
                for (int ch = 0; ch < 3; ch++) rgb[y, x, ch] = 0.5;
        for (int i = 0; i < count; i++)
        {
            int r0 = gap + i / columns * (height + gap), c0 = gap + i % columns * (width + gap);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    double v = images[i * per + y * width + x];
                    for (int ch = 0; ch < 3; ch++) rgb[r0 + y, c0 + x, ch] = v;
                }
        }
        SaveRgb(path, rgb, scale);
    }

    /// <summary>Writes an RGB array (values in [0,1]) as a PNG, each pixel enlarged to a square of <paramref name="scale"/>.</summary>
    public static void SaveRgb(string path, double[,,] rgb, int scale)
    {
        int h = rgb.GetLength(0), w = rgb.GetLength(1);
        using var bmp = new SkiaSharp.SKBitmap(w * scale, h * scale);
        for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
            {
                byte C(int ch) => (byte)Math.Clamp(rgb[y / scale, x / scale, ch] * 255, 0, 255);
                bmp.SetPixel(x, y, new SkiaSharp.SKColor(C(0), C(1), C(2)));
            }
        using var png = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        Serialization.AtomicFile.Write(path, png.SaveTo);
    }

    public static void Confusion(string path, int[,] confusion, IReadOnlyList<string> classNames)
    {
        int k = confusion.GetLength(0);
        var plt = new Plot();
        var rowNormalised = new double[k, k];
        for (int i = 0; i < k; i++)
        {
            double total = 0;
            for (int j = 0; j < k; j++) total += confusion[i, j];
            for (int j = 0; j < k; j++) rowNormalised[i, j] = total > 0 ? confusion[i, j] / total : 0;
        }
        var hm = plt.Add.Heatmap(rowNormalised);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                var t = plt.Add.Text(confusion[i, j].ToString(System.Globalization.CultureInfo.InvariantCulture), j, i);
                t.LabelFontColor = rowNormalised[i, j] > 0.5 ? Colors.Black : Colors.White;
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontSize = k > 12 ? 8 : 12;
            }
        var ticks = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        var names = classNames.Take(k).ToArray();
        plt.Axes.Bottom.SetTicks(ticks, names);
        plt.Axes.Left.SetTicks(ticks, names);
        plt.Axes.InvertY();
        plt.XLabel("predicted");
        plt.YLabel("true");
        plt.Title("Confusion matrix (test set; colour = row fraction)");
        Serialization.AtomicFile.Write(path, f => f.Write(plt.GetImageBytes(800, 750, ScottPlot.ImageFormat.Png)));
    }
}
