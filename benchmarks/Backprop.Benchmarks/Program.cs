using BenchmarkDotNet.Running;
using Backprop.Benchmarks;

// `quick [options]`: Stopwatch GFLOP/s for tuning GEMM; `quick-conv`: the same for convolutions; anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "quick") QuickRunner.Run(args[1..]);
else if (args.Length > 0 && args[0] == "quick-conv") ConvRunner.Run(args[1..]);
else BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(args);
