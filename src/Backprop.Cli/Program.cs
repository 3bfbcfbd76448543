using System.CommandLine;
using Backprop.Cli;

// Each command lives in its own file and contributes one Command here.
var root = new RootCommand("backprop — train, check and benchmark neural networks in pure .NET")
{
    TrainCommand.Create(),
    GradCheckCommand.Create(),
    ToyCommand.Create(),
};
return Cli.Run(root, args);
