using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Backprop.Serialization;

/// <summary>
/// The safetensors format (8-byte little-endian header length, a JSON header of
/// <c>{name: {dtype, shape, data_offsets}}</c> plus optional <c>__metadata__</c>, then raw little-endian data),
/// so PyTorch's <c>safetensors.torch.load_file</c> reads what Backprop writes and vice versa (F32 and F64).
/// </summary>
public static class SafeTensors
{
    const long MaxHeader = 100_000_000;   // the reference implementation's limit

    /// <summary>Writes atomically: a temporary file is renamed over <paramref name="path"/>, so a failure never leaves half a file.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
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
                long size = (long)t.Length * (t.DType == DType.Float32 ? 4 : 8);
                w.WriteStartObject(name);
                w.WriteString("dtype", t.DType == DType.Float32 ? "F32" : "F64");
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
            foreach (var t in tensors.Values)
            {
                if (t.DType == DType.Float32) f.Write(MemoryMarshal.AsBytes(t.Dense().AsFloatSpan()));
                else f.Write(MemoryMarshal.AsBytes(t.Dense().AsDoubleSpan()));
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
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
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
        foreach (var e in entries)
        {
            var t = Tensor.Empty(e.Shape, e.ElementSize == 4 ? DType.Float32 : DType.Float64);
            f.Position = dataStart + e.Start;
            if (e.ElementSize == 4) f.ReadExactly(MemoryMarshal.AsBytes(t.AsFloatSpan()));
            else f.ReadExactly(MemoryMarshal.AsBytes(t.AsDoubleSpan()));
            tensors[e.Name] = t;
        }
        return (tensors, metadata);
    }

    sealed record Entry(string Name, int ElementSize, int[] Shape, long Start, long End);

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
        int elementSize = dtype switch
        {
            "F32" => 4,
            "F64" => 8,
            _ => throw new InvalidDataException($"{where} has dtype '{dtype}'; Backprop reads F32 and F64"),
        };
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
        return new Entry(entry.Name, elementSize, shape, start, end);
    }
}
