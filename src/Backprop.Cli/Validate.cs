using System.Globalization;

namespace Backprop.Cli;

/// <summary>Option checks shared by the commands: each returns the value or throws one clear line naming the option.</summary>
internal static class Validate
{
    public static int Positive(int v, string option) => v > 0 ? v : throw new ArgumentException($"{option}: {v} must be positive");
    public static double Positive(double v, string option) => v > 0 && double.IsFinite(v) ? v : throw new ArgumentException($"{option}: {v} must be positive");
    public static double NonNegative(double v, string option) => v >= 0 && double.IsFinite(v) ? v : throw new ArgumentException($"{option}: {v} must be ≥ 0");
    public static double Probability(double v, string option) => v >= 0 && v < 1 ? v : throw new ArgumentException($"{option}: {v} must be in [0, 1)");

    public static string OneOf(string v, string option, params string[] allowed) =>
        allowed.Contains(v) ? v : throw new ArgumentException($"{option}: '{v}' is not one of {string.Join(", ", allowed)}");

    /// <summary>Round-trip ("R") invariant formatting, for CSV and JSON figures that must reload exactly.</summary>
    public static string RoundTrip(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
