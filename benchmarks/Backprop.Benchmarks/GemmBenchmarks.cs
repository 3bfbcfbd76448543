using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Backprop.Kernels;

namespace Backprop.Benchmarks;

/// <summary>float32 C = A·B for the W4 shapes; the GFLOP/s column divides 2·M·K·N by the median time.</summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    float[] a = [], b = [], c = [];
    (int M, int K, int N) shape;

    public static IEnumerable<string> ShapeNames => GemmShapes.All.Select(GemmShapes.Name);

    [ParamsSource(nameof(ShapeNames))]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        shape = GemmShapes.Parse(Shape);
        var rng = new Random(1);
        a = Enumerable.Range(0, shape.M * shape.K).Select(_ => (float)rng.NextDouble()).ToArray();
        b = Enumerable.Range(0, shape.K * shape.N).Select(_ => (float)rng.NextDouble()).ToArray();
        c = new float[shape.M * shape.N];
    }

    [Benchmark]
    public void Multiply() => Gemm.Multiply<float>(a, false, b, false, c, shape.M, shape.N, shape.K, accumulate: false);

    sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() { AddColumn(new GflopsColumn()); }
    }

    sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "2·M·K·N / median time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            var name = (string)benchmarkCase.Parameters["Shape"];
            return stats is null ? "-" : (GemmShapes.Flops(GemmShapes.Parse(name)) / stats.Median).ToString("F1");
        }
    }
}
