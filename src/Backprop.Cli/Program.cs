return Backprop.Cli.Cli.Run(Backprop.Cli.Cli.CreateRoot(), args);
