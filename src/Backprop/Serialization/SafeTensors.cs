using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Backprop.Serialization;

/// <summary>
/// The safetensors format (8-byte little-endian header length, a JSON header of
/// <c>{name: {dtype, shape, data_offsets}}</c> plus optional <c>__metadata__</c>, then raw little-endian data),
/// so PyTorch's <c>safetensors.torch.load_file</c> reads what Backprop writes and vice versa. Every dtype PyTorch
/// writes is read (F16, BF16, F32, F64, I64, I32, I16, I8, U8, BOOL) and converted to float32 or float64; floats are
/// written as F32/F64 or, to halve a file, F16/BF16 (rounded to nearest, ties to even).
/// </summary>
public static class SafeTensors
{
    const long MaxHeader = 100_000_000;   // the reference implementation's limit

    /// <summary>Writes atomically: a temporary file is renamed over <paramref name="path"/>, so a failure never leaves half a file.</summary>
    /// <param name="storeAs">The file's dtype for every tensor: null keeps each tensor's own (F32 or F64); F16 or BF16 rounds.</param>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        SafeTensorsDType? storeAs = null)
    {
        if (storeAs is { } stored && stored is not (SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.F32 or SafeTensorsDType.F64))
            throw new ArgumentException($"safetensors: Backprop writes floats as F16, BF16, F32 or F64, not {stored}");
        SafeTensorsDType Stored(Tensor t) => storeAs ?? (t.DType == DType.Float32 ? SafeTensorsDType.F32 : SafeTensorsDType.F64);
        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                if (name == "__metadata__") throw new ArgumentException("safetensors: '__metadata__' is reserved");
                long size = (long)t.Length * ElementSize(Stored(t));
                w.WriteStartObject(name);
                w.WriteString("dtype", Name(Stored(t)));
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset); w.WriteNumberValue(offset + size);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += size;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors: big-endian hosts are not supported");
        AtomicFile.Write(path, f =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            f.Write(len);
            header.Position = 0;
            header.CopyTo(f);
            foreach (var (name, t) in tensors)
            {
                switch (Stored(t))
                {
                    case SafeTensorsDType.F32 when t.DType == DType.Float32: f.Write(MemoryMarshal.AsBytes(t.Dense().AsFloatSpan())); break;
                    case SafeTensorsDType.F64 when t.DType == DType.Float64: f.Write(MemoryMarshal.AsBytes(t.Dense().AsDoubleSpan())); break;
                    case SafeTensorsDType.F32: f.Write(MemoryMarshal.AsBytes(t.ToFloatArray().AsSpan())); break;
                    case SafeTensorsDType.F64: f.Write(MemoryMarshal.AsBytes(t.ToDoubleArray().AsSpan())); break;
                    case SafeTensorsDType.F16: f.Write(MemoryMarshal.AsBytes(InRange(name, t, (double)Half.MaxValue, "F16").Select(v => (Half)v).ToArray().AsSpan())); break;   // rounded once, from the source
                    default: f.Write(MemoryMarshal.AsBytes(InRange(name, t, 3.3895313892515355e38, "BF16").Select(ToBFloat16).ToArray().AsSpan())); break;
                }
            }
        });
    }

    /// <summary>
    /// Reads every tensor (in header order) and the metadata. The whole header is validated before anything is allocated:
    /// a JSON object whose entries have a known dtype, a shape of non-negative 32-bit dimensions whose byte size does not
    /// overflow, and <c>data_offsets</c> that together cover the data exactly once (no overlap, no gap, no duplicate
    /// name), so a file can never make the reader allocate more than it holds. Any defect raises
    /// <see cref="InvalidDataException"/> naming the file, the field and the offending value.
    /// </summary>
    /// <param name="dtype">What every tensor becomes: null keeps F64 as float64 and makes every other dtype float32.</param>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path, DType? dtype = null) =>
        Load(path, dtype, out _);

    /// <summary>The file's tensors with the dtype each had in the file (so a caller can tell an I64 counter from a weight).</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path, DType? dtype,
        out Dictionary<string, SafeTensorsDType> stored)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = f.Length;
        if (fileLength < 8) throw new InvalidDataException($"{path}: not a safetensors file (only {fileLength} bytes)");
        Span<byte> len = stackalloc byte[8];
        f.ReadExactly(len);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLength > MaxHeader || (long)headerLength > fileLength - 8)
            throw new InvalidDataException($"{path}: header length {headerLength} does not fit the file ({fileLength} bytes)");
        var headerBytes = new byte[headerLength];
        f.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength, dataLength = fileLength - dataStart;

        var (entries, metadata) = ParseHeader(path, headerBytes, dataLength);
        var tensors = new Dictionary<string, Tensor>();
        stored = [];
        foreach (var e in entries)
        {
            var target = dtype ?? (e.DType == SafeTensorsDType.F64 ? DType.Float64 : DType.Float32);
            var t = Tensor.Empty(e.Shape, target);
            f.Position = dataStart + e.Start;
            if (e.DType == SafeTensorsDType.F32 && target == DType.Float32) f.ReadExactly(MemoryMarshal.AsBytes(t.AsFloatSpan()));
            else if (e.DType == SafeTensorsDType.F64 && target == DType.Float64) f.ReadExactly(MemoryMarshal.AsBytes(t.AsDoubleSpan()));
            else
            {
                var raw = new byte[e.End - e.Start];
                f.ReadExactly(raw);
                var values = Widen(e.DType, raw);
                if (target == DType.Float64) values.CopyTo(t.AsDoubleSpan());
                else for (int i = 0; i < values.Length; i++) t.AsFloatSpan()[i] = (float)values[i];
            }
            tensors[e.Name] = t;
            stored[e.Name] = e.DType;
        }
        return (tensors, metadata);
    }

    // Every stored value as a double: exact for each dtype here except I64 beyond 2⁵³ (rounded to nearest).
    static double[] Widen(SafeTensorsDType dtype, byte[] raw) => dtype switch
    {
        SafeTensorsDType.F16 => [.. MemoryMarshal.Cast<byte, Half>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.BF16 => [.. MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(v => (double)BitConverter.Int32BitsToSingle(v << 16))],
        SafeTensorsDType.F32 => [.. MemoryMarshal.Cast<byte, float>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.F64 => MemoryMarshal.Cast<byte, double>(raw).ToArray(),
        SafeTensorsDType.I64 => [.. MemoryMarshal.Cast<byte, long>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.I32 => [.. MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.I16 => [.. MemoryMarshal.Cast<byte, short>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.I8 => [.. MemoryMarshal.Cast<byte, sbyte>(raw).ToArray().Select(v => (double)v)],
        SafeTensorsDType.U8 => [.. raw.Select(v => (double)v)],
        _ => [.. raw.Select(v => v != 0 ? 1.0 : 0.0)],   // BOOL: one byte each
    };

    // Half precision tops out at 65504 (bfloat16 near float32's range): refuse what would silently become infinite (the
    // write is atomic, so a refusal leaves no file).
    static double[] InRange(string name, Tensor t, double limit, string dtype)
    {
        var values = t.ToDoubleArray();
        int i = Array.FindIndex(values, v => double.IsFinite(v) && Math.Abs(v) > limit);
        return i < 0 ? values : throw new ArgumentException($"safetensors: '{name}' holds {values[i]:G6} at element {i}, beyond {dtype}'s range (±{limit:G5}); save it as F32");
    }

    // float64 → bfloat16 rounded once: through float32, except where that first rounding landed exactly on a bfloat16 tie
    // (low half 0x8000) from a value that was not one — then the side the value lies on decides.
    static ushort ToBFloat16(double v)
    {
        float f = (float)v;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if ((bits & 0xFFFF) == 0x8000 && float.IsFinite(f) && (double)f != v)
            return (ushort)((bits >> 16) + (Math.Abs(v) > Math.Abs((double)f) ? 1u : 0u));
        return ToBFloat16(f);
    }

    // float32 → bfloat16: keep the upper 16 bits, rounded to nearest, ties to even; NaN stays a (quiet) NaN.
    static ushort ToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    static int ElementSize(SafeTensorsDType d) => d switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.I16 => 2,
        _ => 1,
    };

    static string Name(SafeTensorsDType d) => d == SafeTensorsDType.Bool ? "BOOL" : d.ToString();

    sealed record Entry(string Name, SafeTensorsDType DType, int[] Shape, long Start, long End);

    static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw new InvalidDataException($"{path}: header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: header is a JSON {doc.RootElement.ValueKind}, not an object");
            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>();
            var names = new HashSet<string>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(entry.Name)) throw new InvalidDataException($"{path}: '{entry.Name}' appears twice in the header");
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: __metadata__ is a {entry.Value.ValueKind}, not an object");
                    foreach (var m in entry.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{path}: __metadata__ '{m.Name}' is a {m.Value.ValueKind}, not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, entry, dataLength));
            }
            // The offsets must tile the data: sorted by start, each begins where the previous ended, the last ends the file.
            long at = 0;
            foreach (var e in entries.OrderBy(e => e.Start).ThenBy(e => e.End))
            {
                if (e.Start != at)
                    throw new InvalidDataException(e.Start < at
                        ? $"{path}: tensor '{e.Name}': data_offsets [{e.Start}, {e.End}] overlap another tensor's data (which ends at {at})"
                        : $"{path}: tensor '{e.Name}': data_offsets start at {e.Start}, leaving bytes {at}–{e.Start} of the data unused");
                at = e.End;
            }
            if (at != dataLength) throw new InvalidDataException($"{path}: the tensors cover {at} of the {dataLength} data bytes");
            return (entries, metadata);
        }
    }

    static Entry ParseEntry(string path, JsonProperty entry, long dataLength)
    {
        string where = $"{path}: tensor '{entry.Name}'";
        var v = entry.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is a {v.ValueKind}, not an object");
        JsonElement Field(string name, JsonValueKind kind) =>
            v.TryGetProperty(name, out var x) ? x.ValueKind == kind ? x : throw new InvalidDataException($"{where}: '{name}' is a {x.ValueKind}, not a {kind}")
                : throw new InvalidDataException($"{where} has no '{name}'");
        string dtype = Field("dtype", JsonValueKind.String).GetString()!;
        var stored = dtype switch
        {
            "F16" => SafeTensorsDType.F16, "BF16" => SafeTensorsDType.BF16, "F32" => SafeTensorsDType.F32, "F64" => SafeTensorsDType.F64,
            "I64" => SafeTensorsDType.I64, "I32" => SafeTensorsDType.I32, "I16" => SafeTensorsDType.I16, "I8" => SafeTensorsDType.I8,
            "U8" => SafeTensorsDType.U8, "BOOL" => SafeTensorsDType.Bool,
            _ => throw new InvalidDataException($"{where} has dtype '{dtype}'; Backprop reads F16, BF16, F32, F64, I64, I32, I16, I8, U8 and BOOL"),
        };
        int elementSize = ElementSize(stored);
        var shapeJson = Field("shape", JsonValueKind.Array);
        if (shapeJson.GetArrayLength() > 32) throw new InvalidDataException($"{where}: shape has {shapeJson.GetArrayLength()} dimensions (at most 32)");
        var shape = new int[shapeJson.GetArrayLength()];
        long bytes = elementSize;
        int k = 0;
        foreach (var d in shapeJson.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int n) || n < 0)
                throw new InvalidDataException($"{where}: shape entry {k} is {d.GetRawText()}, not a dimension in [0, 2³¹)");
            shape[k++] = n;
            // Checked against the data size at every factor, so the product never overflows.
            bytes = n == 0 ? 0 : bytes > dataLength / n ? long.MaxValue : bytes * n;
        }
        var offsets = Field("data_offsets", JsonValueKind.Array);
        long start = 0, end = 0;
        if (offsets.GetArrayLength() != 2 || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out start) || !offsets[1].TryGetInt64(out end))
            throw new InvalidDataException($"{where}: data_offsets {offsets.GetRawText()} are not two integers");
        if (start < 0 || end < start || end > dataLength)
            throw new InvalidDataException($"{where}: data_offsets [{start}, {end}] are outside the {dataLength} data bytes");
        if (bytes == long.MaxValue || end - start != bytes)
            throw new InvalidDataException($"{where}: shape ({string.Join(",", shape)}) {dtype} needs {(bytes == long.MaxValue ? "more than the file's" : bytes.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, data_offsets [{start}, {end}] hold {end - start}");
        if (bytes / elementSize > Array.MaxLength) throw new InvalidDataException($"{where}: {bytes / elementSize} elements are more than one tensor holds");
        return new Entry(entry.Name, stored, shape, start, end);
    }
}

/// <summary>The element types of the safetensors format (its names, BOOL as <see cref="Bool"/>).</summary>
public enum SafeTensorsDType { F16, BF16, F32, F64, I64, I32, I16, I8, U8, Bool }
