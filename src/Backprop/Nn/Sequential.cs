namespace Backprop.Nn;

/// <summary>Applies its modules in order; they are named "0", "1", … as in PyTorch.</summary>
public sealed class Sequential : Module
{
    readonly List<Module> layers = [];

    public Sequential(params IEnumerable<Module> modules)
    {
        foreach (var m in modules) Add(m);
    }

    public Sequential Add(Module module)
    {
        RegisterModule(layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        layers.Add(module);
        return this;
    }

    public int Count => layers.Count;
    public Module this[int index] => layers[index];

    public override Tensor Forward(Tensor input)
    {
        for (int i = 0; i < layers.Count; i++)
        {
            using var path = Autograd.EnterModule($"Sequential[{i}]", layers[i]);
            input = layers[i].Forward(input);
        }
        return input;
    }
}
