namespace Backprop.Benchmarks;

/// <summary>The GEMM shapes of issue 6's W4 workload: (M×K)·(K×N).</summary>
public static class GemmShapes
{
    public static readonly (int M, int K, int N)[] All =
    [
        (256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
        (16, 784, 50), (128, 784, 1024), (128, 1024, 1024),
    ];

    public static string Name((int M, int K, int N) s) => $"{s.M}x{s.K}@{s.K}x{s.N}";

    public static (int M, int K, int N) Parse(string name)
    {
        var parts = name.Split('@', 'x');
        return (int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[3]));
    }

    public static double Flops((int M, int K, int N) s) => 2.0 * s.M * s.K * s.N;
}
