using System.Globalization;
using Spectre.Console;

namespace Backprop.Cli;

/// <summary>Console reporting: Spectre.Console on a terminal, plain lines when output is redirected (CI logs).</summary>
internal static class ConsoleOutput
{
    /// <summary>True on the ranks of a distributed run other than rank 0, which alone reports.</summary>
    public static bool Muted { get; set; }

    public static bool Interactive => !Muted && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public static string F(double v, string format = "0.0000") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="work"/> under a progress bar (terminal) or plainly; <paramref name="work"/> reports (done, total, status).</summary>
    public static T WithProgress<T>(string title, Func<Action<int, int, string>, T> work)
    {
        if (!Interactive) return work((_, _, _) => { });
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title));
                result = work((done, total, status) =>
                {
                    if (total > 0) task.MaxValue = total;
                    task.Value = done;
                    task.Description = Markup.Escape($"{title}  {status}");
                });
            });
        return result;
    }

    public static void Line(string text) { if (!Muted) Console.WriteLine(text); }

    public static void PrintConfusion(int[,] confusion, IReadOnlyList<string> classNames)
    {
        if (Muted) return;
        int k = confusion.GetLength(0);
        if (Interactive)
        {
            var table = new Table().Title("confusion matrix (rows: true, columns: predicted)");
            table.AddColumn("");
            for (int j = 0; j < k; j++) table.AddColumn(new TableColumn(Markup.Escape(Short(classNames[j]))).RightAligned());
            for (int i = 0; i < k; i++)
                table.AddRow(new[] { Markup.Escape(classNames[i]) }.Concat(Enumerable.Range(0, k).Select(j =>
                    i == j ? $"[green]{confusion[i, j]}[/]" : confusion[i, j] == 0 ? "[grey]0[/]" : confusion[i, j].ToString(CultureInfo.InvariantCulture))).ToArray());
            AnsiConsole.Write(table);
            return;
        }
        Console.WriteLine("confusion matrix (rows: true, columns: predicted)");
        Console.WriteLine("          " + string.Concat(Enumerable.Range(0, k).Select(j => Short(classNames[j]).PadLeft(6))));
        for (int i = 0; i < k; i++)
            Console.WriteLine(Short(classNames[i]).PadRight(10) + string.Concat(Enumerable.Range(0, k).Select(j => confusion[i, j].ToString(CultureInfo.InvariantCulture).PadLeft(6))));
    }

    static string Short(string s) => s.Length <= 5 ? s : s[..5];
}

/// <summary>An IProgress that reports synchronously on the calling thread (System.Progress posts asynchronously).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
