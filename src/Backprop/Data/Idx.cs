using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// The IDX format of MNIST and its relatives (raw or gzipped): big-endian magic 0x00000803 (images: count,
/// rows, cols) or 0x00000801 (labels: count), then one unsigned byte per value. A header is never trusted for
/// an allocation: raw files are checked against their length first; gzipped ones are read in bounded chunks
/// into a buffer that grows only as real data arrives, so a header claiming 10⁹ images fails with a message,
/// not a huge allocation.
/// </summary>
public static class Idx
{
    public const int ImageMagic = 0x00000803, LabelMagic = 0x00000801;
    const int MaxSide = 1 << 16;
    // Deflate cannot expand more than ~1032:1, so a claim beyond this is a lie whatever the data holds.
    const long MaxDeflateRatio = 1032;
    const int Chunk = 1 << 20;

    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var s = Open(path, out long? rawLength, out long compressed, out uint? gzipSize);
        Span<byte> header = stackalloc byte[16];
        ReadHeader(s, path, header, ImageMagic, "IDX images");
        int n = BinaryPrimitives.ReadInt32BigEndian(header[4..]), rows = BinaryPrimitives.ReadInt32BigEndian(header[8..]), cols = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        if (n < 0 || rows <= 0 || cols <= 0 || rows > MaxSide || cols > MaxSide) throw Bad(path, $"implausible dimensions {n} × {rows} × {cols}");
        long bytes = (long)n * rows * cols;
        return (ReadPayload(s, path, bytes, rawLength, compressed, gzipSize, 16, $"{n:N0} images of {rows}×{cols}"), n, rows, cols);
    }

    public static byte[] ReadLabels(string path)
    {
        using var s = Open(path, out long? rawLength, out long compressed, out uint? gzipSize);
        Span<byte> header = stackalloc byte[8];
        ReadHeader(s, path, header, LabelMagic, "IDX labels");
        int n = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (n < 0) throw Bad(path, $"negative label count {n}");
        return ReadPayload(s, path, n, rawLength, compressed, gzipSize, 8, $"{n:N0} labels");
    }

    static string Hint(int magic) => magic switch
    {
        ImageMagic => ": this is an images file",
        LabelMagic => ": this is a labels file",
        _ when (magic >>> 16) == 0x1F8B => ": gzip data inside gzip?",
        _ => "",
    };

    static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");

    /// <summary>Opens raw or gzip data (gzip by magic bytes 1f 8b); <paramref name="rawLength"/> is the exact payload size of a raw file.</summary>
    static Stream Open(string path, out long? rawLength, out long compressed, out uint? gzipSize)
    {
        var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        int got = f.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        f.Position = 0;
        compressed = f.Length;
        gzipSize = null;
        if (got == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
        {
            rawLength = null;
            if (f.Length >= 18)   // gzip's trailer: ISIZE, the uncompressed length mod 2³², in the last 4 bytes
            {
                Span<byte> trailer = stackalloc byte[4];
                f.Position = f.Length - 4;
                f.ReadExactly(trailer);
                gzipSize = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
                f.Position = 0;
            }
            return new GZipStream(f, CompressionMode.Decompress);
        }
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            f.Dispose();
            throw Bad(path, "named .gz but does not start with the gzip magic bytes 1f 8b");
        }
        rawLength = f.Length;
        return f;
    }

    // The magic is checked as soon as its 4 bytes are in, so a short file of the wrong kind is named for what it is.
    static void ReadHeader(Stream s, string path, Span<byte> header, int expectedMagic, string kind)
    {
        int read;
        try { read = s.ReadAtLeast(header, header.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException e) { throw Corrupt(path, e); }
        if (read >= 4 && BinaryPrimitives.ReadInt32BigEndian(header) is int magic && magic != expectedMagic)
            throw Bad(path, $"magic number 0x{magic:X8} is not 0x{expectedMagic:X8} ({kind}){Hint(magic)}");
        if (read < header.Length) throw Bad(path, $"truncated: the {header.Length}-byte header has only {read} bytes");
    }

    static byte[] ReadPayload(Stream s, string path, long expected, long? rawLength, long compressed, uint? gzipSize, int headerSize, string what)
    {
        if (expected > Array.MaxLength) throw Bad(path, $"header claims {what} ({expected:N0} bytes), more than one array can hold");
        if (rawLength is long total)
        {
            long a = total - headerSize;
            if (a != expected)
                throw Bad(path, a < expected
                    ? $"truncated: header claims {what} ({expected:N0} bytes) but the file holds {a:N0}"
                    : $"header claims {what} ({expected:N0} bytes) but the file holds {a:N0}: {a - expected:N0} bytes too many");
            var data = new byte[expected];
            s.ReadExactly(data);   // raw file of checked length: cannot fall short
            return data;
        }
        if (expected > compressed * MaxDeflateRatio + 1024)
            throw Bad(path, $"truncated: header claims {what} ({expected:N0} bytes) but {compressed:N0} compressed bytes cannot hold that many");
        // When gzip's own size field agrees with the header, the payload's length is known twice over: one exact buffer
        // (growing as data arrives would allocate about twice the payload, three times with the copies).
        return gzipSize == (uint)(expected + headerSize) ? ReadExact(s, path, (int)expected, what) : ReadGrowing(s, path, (int)expected, what);
    }

    static byte[] ReadExact(Stream s, string path, int expected, string what)
    {
        var buffer = new byte[expected];
        int filled = 0;
        try
        {
            while (filled < expected)
            {
                int n = s.Read(buffer, filled, Math.Min(expected - filled, Chunk));
                if (n == 0) throw Bad(path, $"truncated: header claims {what} ({expected:N0} bytes) but the data ends after {filled:N0}");
                filled += n;
            }
            if (s.ReadByte() >= 0) throw Bad(path, $"header claims {what} ({expected:N0} bytes) but more data follows");
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal)) { throw Corrupt(path, e); }
        return buffer;
    }

    /// <summary>Reads exactly <paramref name="expected"/> bytes, growing the buffer (at most doubling) only as data arrives.</summary>
    static byte[] ReadGrowing(Stream s, string path, int expected, string what)
    {
        var buffer = new byte[Math.Min(expected, Chunk)];
        int filled = 0;
        try
        {
            while (filled < expected)
            {
                if (filled == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(expected, 2L * buffer.Length));
                int n = s.Read(buffer, filled, Math.Min(buffer.Length - filled, Chunk));
                if (n == 0) throw Bad(path, $"truncated: header claims {what} ({expected:N0} bytes) but the data ends after {filled:N0}");
                filled += n;
            }
            if (s.ReadByte() >= 0) throw Bad(path, $"header claims {what} ({expected:N0} bytes) but more data follows");
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal)) { throw Corrupt(path, e); }
        return buffer;
    }

    static InvalidDataException Corrupt(string path, Exception e) => new($"{path}: corrupt gzip data ({e.Message})", e);
}
