using Backprop.Kernels;

namespace Backprop.Tests;

public class ShortSpansTests
{
    [Fact]
    public void Copy_and_clear_touch_exactly_the_run_at_every_length_and_offset()
    {
        // Lengths across every vector width's boundaries (the last vector overlaps the one before it), at offsets that
        // leave the run unaligned; the values around the run must survive.
        for (int offset = 0; offset < 3; offset++)
            for (int n = 0; n <= 70; n++)
            {
                var src = Enumerable.Range(1, n + 8).Select(i => (float)i).ToArray();
                var dst = Enumerable.Repeat(-7f, n + 8).ToArray();
                ShortSpans.Copy(src.AsSpan(offset, n), dst.AsSpan(offset + 1, n + 1));
                for (int i = 0; i < dst.Length; i++)
                    Assert.Equal(i > offset && i <= offset + n ? src[i - 1] : -7f, dst[i]);
                var d = Enumerable.Repeat(-7.0, n + 8).ToArray();
                ShortSpans.Clear(d.AsSpan(offset, n));
                for (int i = 0; i < d.Length; i++) Assert.Equal(i >= offset && i < offset + n ? 0.0 : -7.0, d[i]);
            }
        Assert.Throws<ArgumentException>(() => ShortSpans.Copy(new float[5], new float[4]));
    }
}
