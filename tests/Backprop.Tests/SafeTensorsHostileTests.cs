using System.Buffers.Binary;
using System.Text;
using Backprop.Serialization;

namespace Backprop.Tests;

/// <summary>
/// safetensors files from strangers: every defect found by fuzzing the old reader is refused with an
/// InvalidDataException naming the field, before any large allocation; random mutations of a valid file never raise
/// another exception type nor allocate more than a few times the file's size.
/// </summary>
public class SafeTensorsHostileTests
{
    static string WriteRaw(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        string path = Path.Combine(Path.GetTempPath(), "bp-st-" + Guid.NewGuid() + ".safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static InvalidDataException Refused(string header, int dataBytes, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(WriteRaw(header, dataBytes)));
        Assert.Contains(expected, e.Message);
        return e;
    }

    [Fact] public void Overlapping_offsets_are_refused() => Refused("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap");
    [Fact] public void A_gap_in_the_data_is_refused() => Refused("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "unused");
    [Fact] public void Uncovered_trailing_data_is_refused() => Refused("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 12, "cover 4 of the 12");
    [Fact] public void Duplicate_names_are_refused() => Refused("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "twice");
    [Fact] public void A_missing_shape_is_refused() => Refused("""{"a":{"dtype":"F32","data_offsets":[0,4]}}""", 4, "no 'shape'");
    [Fact] public void A_shape_of_the_wrong_kind_is_refused() => Refused("""{"a":{"dtype":"F32","shape":"4","data_offsets":[0,4]}}""", 4, "'shape' is a String");
    [Fact] public void Non_string_metadata_is_refused() => Refused("""{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, "not a string");
    [Fact] public void An_unknown_dtype_is_refused() => Refused("""{"a":{"dtype":"Q8","shape":[4],"data_offsets":[0,4]}}""", 4, "dtype 'Q8'");
    [Fact] public void A_header_that_is_not_an_object_is_refused() => Refused("""[1,2,3]""", 0, "not an object");

    [Fact]
    public void A_shape_whose_byte_count_overflows_is_refused_without_allocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Refused("""{"a":{"dtype":"F32","shape":[65536,65536,65536,16384],"data_offsets":[0,0]}}""", 0, "needs more than the file's");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Two_thousand_entries_pointing_at_one_range_are_refused_without_allocating_a_gigabyte()
    {
        var sb = new StringBuilder("{");
        for (int i = 0; i < 2000; i++) sb.Append(i == 0 ? "" : ",").Append($"\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[131072],\"data_offsets\":[0,524288]}}");
        sb.Append('}');
        long before = GC.GetAllocatedBytesForCurrentThread();
        Refused(sb.ToString(), 524288, "overlap");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 20_000_000);
    }

    [Fact]
    public void Five_hundred_mutations_of_a_valid_file_raise_only_InvalidDataException_and_allocate_little()
    {
        var g = new Generator(77);
        string valid = Path.Combine(Path.GetTempPath(), "bp-st-valid-" + Guid.NewGuid() + ".safetensors");
        SafeTensors.Save(valid, new Dictionary<string, Tensor> { ["w"] = Tensor.Normal([7, 5], 0, 1, g), ["b"] = Tensor.Normal([5], 0, 1, g, DType.Float64) },
            new Dictionary<string, string> { ["format"] = "pt" });
        var original = File.ReadAllBytes(valid);
        string path = Path.Combine(Path.GetTempPath(), "bp-st-mut-" + Guid.NewGuid() + ".safetensors");
        var random = new Random(5);
        int accepted = 0, refused = 0;
        for (int trial = 0; trial < 500; trial++)
        {
            var bytes = (byte[])original.Clone();
            switch (trial % 4)
            {
                case 0: bytes = bytes[..random.Next(bytes.Length)]; break;                                      // truncation
                case 1: for (int k = 0; k < 1 + random.Next(4); k++) bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8)); break;   // bit flips
                case 2: bytes[8 + random.Next(Math.Min(200, bytes.Length - 8))] = (byte)"0123456789[]{},:\"-9eE"[random.Next(21)]; break;   // header character
                default: BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)random.NextInt64()); break;     // header length
            }
            File.WriteAllBytes(path, bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { SafeTensors.Load(path); accepted++; }
            catch (InvalidDataException) { refused++; }
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4L * bytes.Length + 200_000, $"trial {trial}: allocated too much");
        }
        Assert.True(refused > 250, $"only {refused} of 500 mutations refused");
    }
}

/// <summary><c>eval</c> on hostile or broken model files: one line and a non-zero exit, never a crash or a huge allocation.</summary>
[Collection("console")]
public class EvalHostileTests
{
    static string Model(Dictionary<string, Tensor> tensors, string settings)
    {
        string path = Path.Combine(Path.GetTempPath(), "bp-eval-" + Guid.NewGuid() + ".safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["backprop.settings"] = settings });
        return path;
    }

    static string Settings(string hidden) => Cli.TrainSettings.FromJson(new Cli.TrainSettings().ToJson()).ToJson().Replace("\"hidden\":\"50\"", $"\"hidden\":\"{hidden}\"");

    [Theory]
    [InlineData("{}")]
    [InlineData("not json")]
    [InlineData("HIDDEN:abc")]
    public void Broken_settings_give_one_line_and_exit_1(string settings)
    {
        string json = settings == "HIDDEN:abc" ? Settings("abc") : settings;
        var (code, _, err) = Helpers.RunCli("eval", "--model", Model(new() { ["0.weight"] = Tensor.Zeros([2, 2]) }, json));
        Assert.Equal(1, code);
        Assert.StartsWith("backprop: ", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void A_small_file_declaring_huge_layers_is_refused_before_building_the_model()
    {
        long before = GC.GetTotalAllocatedBytes();
        var (code, _, err) = Helpers.RunCli("eval", "--model", Model(new() { ["0.weight"] = Tensor.Zeros([2, 2]) }, Settings("40000,40000")));
        Assert.Equal(1, code);
        Assert.Contains("layers are", err);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 2_000_000_000, "the declared model was built");
    }

    [Fact]
    public void A_model_with_non_finite_weights_is_refused()
    {
        var g = new Generator(0);
        var tensors = new Dictionary<string, Tensor> { ["0.weight"] = Tensor.Normal([50, 784], 0, 1, g), ["0.bias"] = Tensor.Zeros([50]), ["2.weight"] = Tensor.Normal([10, 50], 0, 1, g), ["2.bias"] = Tensor.Zeros([10]) };
        tensors["2.weight"][3, 4] = double.NaN;
        var (code, _, err) = Helpers.RunCli("eval", "--model", Model(tensors, new Cli.TrainSettings().ToJson()));
        Assert.Equal(1, code);
        Assert.Contains("NaN or infinite", err);
    }
}
