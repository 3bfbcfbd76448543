using System.Collections.Concurrent;
using System.Numerics;

namespace Backprop.Data;

/// <summary>
/// A random change to a batch of images, given as rows of C·H·W values (N, C·H·W) or as (N, C, H, W): drawn from the
/// generator it is given, so the same seed gives the same batches. Returns a new tensor; the input is not changed.
/// </summary>
public interface IImageTransform
{
    Tensor Apply(Tensor batch, Generator generator);
}

/// <summary>
/// A transform that also depends on which images the batch holds and on the epoch (airbench's alternating flip). The
/// <see cref="DataLoader"/> passes both; <see cref="IImageTransform.Apply"/> alone treats the batch as images 0…N−1 of epoch 0.
/// </summary>
public interface IEpochImageTransform : IImageTransform
{
    Tensor Apply(Tensor batch, ReadOnlySpan<int> samples, int epoch, Generator generator);
}

/// <summary>
/// Composable image augmentations for training, as torchvision.transforms: random crops of a zero-padded image,
/// horizontal flips, random translations. Applied to whole batches on the CPU (a per-row copy each), after the
/// per-channel normalisation, so the zero padding is the mean image's value.
/// </summary>
public static class Augment
{
    /// <summary>A random H×W crop of the image zero-padded by <paramref name="padding"/> on every side (torchvision RandomCrop(size, padding)).</summary>
    public static IImageTransform RandomCrop(int channels, int height, int width, int padding) => new Shift(channels, height, width, padding, padding, false);

    /// <summary>A random shift by up to ±<paramref name="maxRows"/> rows and ±<paramref name="maxCols"/> columns, zero-filled (torchvision RandomAffine(translate)).</summary>
    public static IImageTransform RandomTranslate(int channels, int height, int width, int maxRows, int maxCols) => new Shift(channels, height, width, maxRows, maxCols, false);

    /// <summary>
    /// airbench's augmentation: a random shift by up to ±<paramref name="max"/> pixels each way of the image padded by
    /// reflection (no blank border), then a random horizontal flip.
    /// </summary>
    public static IImageTransform TranslateAndFlip(int channels, int height, int width, int max = 2) =>
        new Shift(channels, height, width, max, max, true, reflect: true);

    /// <summary>
    /// airbench's augmentation with its alternating flip: the random ±<paramref name="max"/>-pixel reflection-padded shift of
    /// <see cref="TranslateAndFlip"/>, but each image is mirrored in every other epoch instead of by a coin each time
    /// (image i starts mirrored when a hash of i is odd and flips side each epoch), so two consecutive epochs show both
    /// sides of every image. Keller Jordan measured this worth about a tenth more epochs in short runs.
    /// </summary>
    public static IEpochImageTransform TranslateAndAlternatingFlip(int channels, int height, int width, int max = 2) =>
        new Shift(channels, height, width, max, max, true, reflect: true, alternating: true);

    /// <summary>Every image shifted by <paramref name="dy"/> rows and <paramref name="dx"/> columns of its reflection-padded self (no randomness): for test-time translation averaging.</summary>
    public static Tensor Translate(Tensor batch, int channels, int height, int width, int dy, int dx) =>
        new Shift(channels, height, width, Math.Abs(dy), Math.Abs(dx), false, reflect: true, fixedShift: (dy, dx)).Apply(batch, new Generator(0));

    /// <summary>Mirrors each image left–right with probability ½ (torchvision RandomHorizontalFlip).</summary>
    public static IImageTransform RandomHorizontalFlip(int channels, int height, int width) => new Shift(channels, height, width, 0, 0, true);

    /// <summary>Every image mirrored left–right (no randomness): for test-time flip averaging.</summary>
    public static Tensor Mirror(Tensor batch, int channels, int height, int width) =>
        new Shift(channels, height, width, 0, 0, true, always: true).Apply(batch, new Generator(0));

    /// <summary>Applies the transforms in order.</summary>
    public static IImageTransform Compose(params IImageTransform[] transforms) => new Composed(transforms);

    /// <summary>The standard CIFAR-10 augmentation: random crop with 4 pixels of padding, then a random horizontal flip.</summary>
    public static IImageTransform CropAndFlip(int channels, int height, int width, int padding = 4) =>
        new Shift(channels, height, width, padding, padding, true);

    sealed class Composed(IImageTransform[] transforms) : IImageTransform
    {
        public Tensor Apply(Tensor batch, Generator generator)
        {
            foreach (var t in transforms) batch = t.Apply(batch, generator);
            return batch;
        }
    }

    // Shift (crop of a padded image, or translation: the same map) and flip in one pass: out[c, i, j] = in[c, i − dy, j' − dx]
    // with j' = W − 1 − j when flipped, 0 outside (or, with reflect, the pixel mirrored back in: −1 → 1, H → H − 2, as
    // torch's 'reflect' padding). Per image the draws are dy, dx (when shifting) then the flip coin.
    sealed class Shift(int channels, int height, int width, int maxRows, int maxCols, bool flip, bool always = false, bool reflect = false,
        (int Dy, int Dx)? fixedShift = null, bool alternating = false) : IEpochImageTransform
    {
        public Tensor Apply(Tensor batch, Generator generator) => Apply(batch, [], 0, generator);

        public Tensor Apply(Tensor batch, ReadOnlySpan<int> samples, int epoch, Generator generator)
        {
            int n = batch.Size(0), size = channels * height * width;
            if (batch.Length != (long)n * size)
                throw new ArgumentException($"augmentation: batch of shape {ShapeUtil.Format(batch.Shape.ToArray())} is not N images of {channels}×{height}×{width}");
            if (maxRows < 0 || maxCols < 0 || maxRows >= height || maxCols >= width)
                throw new ArgumentException($"augmentation: shift ±{maxRows}×±{maxCols} must be below the image size {height}×{width}");
            var src = batch.Dense();
            var dst = Tensor.Zeros(batch.Shape, batch.DType);
            if (!samples.IsEmpty && samples.Length != n)
                throw new ArgumentException($"augmentation: {samples.Length} sample indices for a batch of {n} images");
            if (batch.DType == DType.Float32) Run<float>(src, dst, n, samples, epoch, generator); else Run<double>(src, dst, n, samples, epoch, generator);
            return dst;
        }

        // Alternating flips: image i is mirrored in epoch e when parity(hash(i)) ≠ parity(e).
        static bool Mirrored(int sample, int epoch)
        {
            ulong z = (ulong)sample * 0x9E3779B97F4A7C15UL;   // splitmix64's finaliser: neighbouring indices get unrelated bits
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return (((z ^ (z >> 31)) & 1) == 1) != ((epoch & 1) == 1);
        }

        void Run<T>(Tensor src, Tensor dst, int n, ReadOnlySpan<int> samples, int epoch, Generator g) where T : unmanaged, INumberBase<T>
        {
            int plane = height * width, size = channels * plane;
            var s = src.Span<T>();
            var d = dst.Span<T>();
            for (int k = 0; k < n; k++)
            {
                int dy = fixedShift?.Dy ?? (maxRows > 0 ? g.NextInt(2 * maxRows + 1) - maxRows : 0);
                int dx = fixedShift?.Dx ?? (maxCols > 0 ? g.NextInt(2 * maxCols + 1) - maxCols : 0);
                bool mirror = flip && (always || (alternating ? Mirrored(samples.IsEmpty ? k : samples[k], epoch) : g.NextDouble() < 0.5));
                if (reflect)
                {
                    for (int c = 0; c < channels; c++)
                    {
                        var from = s.Slice(k * size + c * plane, plane);
                        var to = d.Slice(k * size + c * plane, plane);
                        for (int i = 0; i < height; i++)
                        {
                            var row = from.Slice(Reflect(i - dy, height) * width, width);
                            var outRow = to.Slice(i * width, width);
                            for (int j = 0; j < width; j++) outRow[mirror ? width - 1 - j : j] = row[Reflect(j - dx, width)];
                        }
                    }
                    continue;
                }
                int i0 = Math.Max(0, dy), i1 = Math.Min(height, height + dy);
                int j0 = Math.Max(0, dx), j1 = Math.Min(width, width + dx);
                for (int c = 0; c < channels; c++)
                {
                    var from = s.Slice(k * size + c * plane, plane);
                    var to = d.Slice(k * size + c * plane, plane);
                    for (int i = i0; i < i1; i++)
                    {
                        var row = from.Slice((i - dy) * width, width);
                        var outRow = to.Slice(i * width, width);
                        if (!mirror) row.Slice(j0 - dx, j1 - j0).CopyTo(outRow[j0..j1]);
                        else for (int j = j0; j < j1; j++) outRow[width - 1 - j] = row[j - dx];
                    }
                }
            }
        }

        static int Reflect(int i, int size) => i < 0 ? -i : i >= size ? 2 * size - 2 - i : i;   // shifts are below the size
    }
}

/// <summary>
/// Runs an enumeration of batches on a background thread, <c>depth</c> batches ahead of the consumer, so loading and
/// augmenting the next batches overlaps training on the current one. The batches and their order are the source's
/// own (the source is enumerated on one thread, in order, so a seeded source stays deterministic); an exception in
/// the source reaches the consumer; stopping early stops the producer.
/// </summary>
public sealed class Prefetch<T>(IReadOnlyCollection<T> source, int depth = 2) : IReadOnlyCollection<T>
{
    /// <summary>The source's count (a trainer uses it for per-step schedules and progress).</summary>
    public int Count => source.Count;

    public IEnumerator<T> GetEnumerator()
    {
        if (depth < 1) throw new ArgumentOutOfRangeException(nameof(depth), depth, "Prefetch: depth must be at least 1");
        using var queue = new BlockingCollection<T>(depth);
        using var stop = new CancellationTokenSource();
        Exception? failure = null;
        // A thread of its own (LongRunning), not a pool thread: the producer blocks while the queue is full, and a blocked
        // pool thread would starve the kernels' helpers and every timer callback of the process.
        var producer = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var item in source)
                    queue.Add(item, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch (Exception e) { failure = e; }
            finally { queue.CompleteAdding(); }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            foreach (var item in queue.GetConsumingEnumerable())
                yield return item;
            producer.Wait();
            if (failure is not null) throw new InvalidOperationException($"prefetch: the batch source failed: {failure.Message}", failure);
        }
        finally
        {
            stop.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
