using System.CommandLine;

namespace Backprop.Cli;

/// <summary>Shared command-line plumbing: invocation and error reporting.</summary>
internal static class Cli
{
    /// <summary>Parses and runs; a parse error prints one clear line and exits 2, a failure prints its message and exits 1.</summary>
    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"backprop: {parse.Errors[0].Message} (see --help)");
            return 2;
        }
        try
        {
            return parse.Invoke();
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"backprop: {e.Message}");
            return 1;
        }
    }
}
