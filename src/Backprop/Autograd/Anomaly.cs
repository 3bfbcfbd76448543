namespace Backprop;

/// <summary>Thrown by anomaly mode at the first NaN or infinity an op produces, naming the op, its inputs and the module.</summary>
public sealed class AnomalyException(string message) : Exception(message);

public static partial class Autograd
{
    static readonly AsyncLocal<bool> anomaly = new();
    static readonly AsyncLocal<string?> modulePath = new();

    /// <summary>True inside a <see cref="DetectAnomaly"/> scope.</summary>
    public static bool IsAnomalyDetectionEnabled => anomaly.Value;

    /// <summary>
    /// Checks every recorded op's output and every gradient the backward pass computes for NaN or infinity, and throws
    /// <see cref="AnomalyException"/> at the first one, naming the op, its input shapes and the module path where it was
    /// recorded (PyTorch's detect_anomaly). Slow: a pass over every output; for debugging.
    /// </summary>
    public static IDisposable DetectAnomaly() => new AmbientScope<bool>(anomaly, true);

    /// <summary>The module path recorded ops are attributed to in anomaly mode (e.g. "Sequential[2] Linear").</summary>
    internal static string? ModulePath => modulePath.Value;

    /// <summary>Extends the module path for a child's forward while anomaly mode is on (a no-op otherwise).</summary>
    internal static IDisposable? EnterModule(string name, object module)
    {
        if (!anomaly.Value) return null;
        string segment = $"{name} {module.GetType().Name}";
        return new AmbientScope<string?>(modulePath, modulePath.Value is { } p ? $"{p} > {segment}" : segment);
    }

    internal static void CheckFinite(Tensor t, string what, Function op, IReadOnlyList<Tensor> inputs)
    {
        var values = t.Dense().ToDoubleArray();
        int bad = Array.FindIndex(values, v => !double.IsFinite(v));
        if (bad < 0) return;
        string shapes = string.Join(", ", inputs.Select(i => ShapeUtil.Format(i.shape)));
        throw new AnomalyException($"anomaly: {what} of '{op.Name}' (inputs {shapes}) has {values[bad]} at element {bad}" +
            (op.RecordedIn is { } path ? $", in module {path}" : ", outside any module"));
    }

    sealed class AmbientScope<T> : IDisposable
    {
        readonly AsyncLocal<T> local;
        readonly T? previous;
        bool disposed;
        public AmbientScope(AsyncLocal<T> local, T value) { this.local = local; previous = local.Value; local.Value = value; }
        public void Dispose() { if (!disposed) { disposed = true; local.Value = previous!; } }
    }
}
