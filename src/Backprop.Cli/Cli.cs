using System.CommandLine;

namespace Backprop.Cli;

/// <summary>Shared command-line plumbing: invocation and error reporting.</summary>
internal static class Cli
{
    // "expected type 'System.Nullable`1[System.Double]'" → "expected a number"
    static string Readable(string message) => System.Text.RegularExpressions.Regex.Replace(message,
        @"as expected type 'System\.Nullable`1\[System\.(\w+)\]'", m => m.Groups[1].Value switch
        {
            "Double" => "as a number",
            "Int32" or "UInt64" => "as a whole number",
            "Boolean" => "as true or false",
            var t => "as " + t,
        });

    /// <summary>The <c>backprop</c> command; each subcommand lives in its own file.</summary>
    // A plain Command named "backprop" rather than RootCommand, whose name would be the assembly's (Backprop.Cli:
    // an assembly called "backprop" would collide with Backprop.dll, assembly names being case-insensitive).
    public static Command CreateRoot() => new("backprop", "backprop — train, check and benchmark neural networks in pure .NET")
    {
        new System.CommandLine.Help.HelpOption(),
        new VersionOption(),
        TrainCommand.Create(),
        EvalCommand.Create(), PredictCommand.Create(), ExportCommand.Create(),
        GradCheckCommand.Create(), FuzzCommand.Create(),
        ToyCommand.Create(),
        BenchCommand.Create(),
        VaeCommand.Create(),
        MultiTaskCommand.Create(),
        Cifar10TwoLayerCommand.Create(),
        DistributedCheckCommand.Create(),
    };

    /// <summary>Parses and runs; a parse error prints one clear line and exits 2, a failure prints its message and exits 1.</summary>
    public static int Run(Command root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // The most specific error first: an unknown word beats the "required command" that follows from it.
            var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            Console.Error.WriteLine($"backprop: {Readable(error.Message)} (see --help)");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or InvalidOperationException
            or UnauthorizedAccessException or Training.TrainingDivergedException or AnomalyException)
        {
            // Expected failures (bad input, missing files, divergence) get one clear line, not a stack trace.
            if (Distribution.Current is { Size: > 1 } job) job.Fail(e.Message);   // ends every rank, not only this one
            Console.Error.WriteLine($"backprop: {e.Message}");
            return e is ArgumentException ? 2 : 1;
        }
        catch (Exception e) when (Distribution.Current is { Size: > 1 } job)
        {
            job.Fail(e.ToString());
            throw;
        }
    }
}
