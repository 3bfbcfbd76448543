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

    /// <summary>Reads every tensor (in header order) and the metadata; validates the header against the file.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        using var f = File.OpenRead(path);
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

        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string>();
        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                string where = $"{path}: tensor '{entry.Name}'";
                string dtype = entry.Value.GetProperty("dtype").GetString() ?? "";
                int elementSize = dtype switch
                {
                    "F32" => 4,
                    "F64" => 8,
                    _ => throw new InvalidDataException($"{where} has dtype {dtype}; Backprop reads F32 and F64"),
                };
                var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                long count = 1;
                foreach (int d in shape) { if (d < 0) throw new InvalidDataException($"{where} has a negative dimension"); count *= d; }
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength || offsets[1] - offsets[0] != count * elementSize)
                    throw new InvalidDataException($"{where}: data_offsets [{string.Join(", ", offsets)}] do not match shape ({string.Join(",", shape)}) {dtype} within {dataLength} data bytes");
                var t = Tensor.Empty(shape, elementSize == 4 ? DType.Float32 : DType.Float64);
                f.Position = dataStart + offsets[0];
                if (elementSize == 4) f.ReadExactly(MemoryMarshal.AsBytes(t.AsFloatSpan()));
                else f.ReadExactly(MemoryMarshal.AsBytes(t.AsDoubleSpan()));
                tensors[entry.Name] = t;
            }
        }
        return (tensors, metadata);
    }
}
