using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// The IDX format of MNIST and its relatives (raw or gzipped): big-endian magic 0x00000803 (images: count,
/// rows, cols) or 0x00000801 (labels: count), then one unsigned byte per value. Sizes in the header are checked
/// against the file before anything is allocated, so a corrupt header fails with a message, not a huge allocation.
/// </summary>
public static class Idx
{
    const int ImageMagic = 0x00000803, LabelMagic = 0x00000801;

    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var s = Open(path, out long? payload);
        var header = ReadHeader(s, path, 16);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != ImageMagic) throw Bad(path, $"magic number 0x{magic:X8} is not 0x{ImageMagic:X8} (IDX images)");
        int n = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4)), rows = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8)), cols = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(12));
        if (n < 0 || rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096) throw Bad(path, $"implausible dimensions {n} × {rows} × {cols}");
        long bytes = (long)n * rows * cols;
        return (ReadPayload(s, path, bytes, payload is long p ? p - 16 : null, $"{n} images of {rows}×{cols}"), n, rows, cols);
    }

    public static byte[] ReadLabels(string path)
    {
        using var s = Open(path, out long? payload);
        var header = ReadHeader(s, path, 8);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != LabelMagic) throw Bad(path, $"magic number 0x{magic:X8} is not 0x{LabelMagic:X8} (IDX labels)");
        int n = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        if (n < 0) throw Bad(path, $"negative label count {n}");
        return ReadPayload(s, path, n, payload is long p ? p - 8 : null, $"{n} labels");
    }

    static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");

    /// <summary>Opens raw or gzip data; <paramref name="length"/> is the decompressed size when it can be known up front.</summary>
    static Stream Open(string path, out long? length)
    {
        var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        int got = f.Read(magic);
        f.Position = 0;
        if (got == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
        {
            // gzip's trailer holds the decompressed size mod 2³² (exact for files under 4 GiB).
            length = null;
            if (f.Length >= 18)
            {
                Span<byte> isize = stackalloc byte[4];
                f.Position = f.Length - 4;
                f.ReadExactly(isize);
                f.Position = 0;
                length = BinaryPrimitives.ReadUInt32LittleEndian(isize);
            }
            return new GZipStream(f, CompressionMode.Decompress);
        }
        length = f.Length;
        return f;
    }

    static byte[] ReadHeader(Stream s, string path, int size)
    {
        var h = new byte[size];
        int read = ReadUpTo(s, h, path);
        if (read < size) throw Bad(path, $"truncated: the {size}-byte header has only {read} bytes");
        return h;
    }

    static byte[] ReadPayload(Stream s, string path, long expected, long? available, string what)
    {
        if (expected > Array.MaxLength) throw Bad(path, $"header claims {what} ({expected:N0} bytes), more than one array can hold");
        // expected < 2³¹ here, so comparing with gzip's 32-bit size field is exact.
        if (available is long a && a != expected)
            throw Bad(path, a < expected
                ? $"truncated: header claims {what} ({expected:N0} bytes) but the file holds {Math.Max(a, 0):N0}"
                : $"header claims {what} ({expected:N0} bytes) but the file holds {a:N0}: {a - expected:N0} bytes too many");
        var data = new byte[expected];
        int read = ReadUpTo(s, data, path);
        if (read < expected) throw Bad(path, $"truncated: header claims {what} ({expected:N0} bytes) but the data ends after {read:N0}");
        return data;
    }

    static int ReadUpTo(Stream s, byte[] buffer, string path)
    {
        try
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = s.Read(buffer, total, buffer.Length - total);
                if (n == 0) break;
                total += n;
            }
            return total;
        }
        catch (InvalidDataException e) { throw Bad(path, $"corrupt gzip data ({e.Message})"); }
    }
}
