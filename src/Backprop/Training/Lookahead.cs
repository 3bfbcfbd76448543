using System.Numerics.Tensors;
using Backprop.Nn;

namespace Backprop.Training;

/// <summary>
/// Lookahead by an exponential moving average, as airbench trains (from hlb-cifar10): once <c>start</c> of the training is
/// done, every <c>every</c> steps the average moves toward the weights (and the floating-point buffers: batch-norm
/// statistics) with decay ρ = base^every · (t/T)^power — a little at first, strongly near the end — and the weights are
/// set to it; after an epoch's last step the weights are set to the average once more, so every validation and the
/// final model see the average. The average lives in memory only: as every epoch ends with the weights set to it, a run
/// resumed from an epoch boundary restores it from the weights (<see cref="Resume"/>) and continues as one not interrupted.
/// </summary>
public sealed class Lookahead : ITrainerCallback
{
    readonly Tensor[] targets;
    Tensor[]? average;
    readonly int stepsPerEpoch, every;
    readonly long totalSteps, startStep;
    readonly double decayBase, power;

    public Lookahead(Module model, int stepsPerEpoch, int epochs, double start = 0.3, int every = 5, double decayBase = 0.95, double power = 3)
    {
        if (stepsPerEpoch <= 0 || epochs <= 0) throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), "Lookahead: steps per epoch and epochs must be positive");
        if (!(start >= 0 && start < 1)) throw new ArgumentOutOfRangeException(nameof(start), start, "Lookahead: start must be a fraction of training in [0, 1)");
        if (every <= 0) throw new ArgumentOutOfRangeException(nameof(every), every, "Lookahead: every must be positive");
        if (!(decayBase > 0 && decayBase < 1)) throw new ArgumentOutOfRangeException(nameof(decayBase), decayBase, "Lookahead: the decay base must be in (0, 1)");
        targets = [.. model.Parameters().Where(p => p.RequiresGrad), .. model.NamedBuffers().Select(b => b.Buffer).Where(b => b.DType is DType.Float32 or DType.Float64)];
        foreach (var t in targets)
            if (!t.IsContiguous) throw new ArgumentException($"Lookahead: tensor of shape {ShapeUtil.Format(t.Shape)} is a strided view; average contiguous tensors");
        this.stepsPerEpoch = stepsPerEpoch; this.every = every; this.decayBase = decayBase; this.power = power;
        totalSteps = (long)stepsPerEpoch * epochs;
        // airbench starts at epoch 3 of 10: the first epoch boundary at or after the fraction asked.
        startStep = (long)Math.Ceiling(start * epochs) * stepsPerEpoch;
    }

    /// <summary>
    /// For a run resumed after <paramref name="epochsDone"/> epochs: if the average existed by then, it equals the weights
    /// (each epoch ends by setting them to it), so it restarts from them — not, as an empty average would, at the next
    /// update, which would skip one step of mixing.
    /// </summary>
    public void Resume(int epochsDone)
    {
        long done = (long)epochsDone * stepsPerEpoch;
        long first = (startStep / every + 1) * every;   // the step that creates the average
        if (first <= done) StartAverage();
    }

    void StartAverage()
    {
        using (Autograd.NoGrad()) average = targets.Select(x => x.Clone()).ToArray();
    }

    public void OnStep(int epoch, int step, double loss)
    {
        long t = (long)(epoch - 1) * stepsPerEpoch + step;
        if (t > startStep && t % every == 0)
        {
            if (average is null) StartAverage();
            else
            {
                double rho = Math.Pow(decayBase, every) * Math.Pow((double)t / totalSteps, power);
                for (int i = 0; i < targets.Length; i++) Mix(average[i], targets[i], 1 - rho);
                CopyBack();
            }
        }
        if (step == stepsPerEpoch && average is not null) CopyBack();
    }

    void CopyBack()
    {
        using (Autograd.NoGrad())
            for (int i = 0; i < targets.Length; i++) targets[i].CopyFrom(average![i]);   // in place, its version bumped as the optimizer's steps
    }

    static void Mix(Tensor avg, Tensor x, double amount)
    {
        if (x.DType == DType.Float32) TensorPrimitives.Lerp(avg.Span<float>(), x.Span<float>(), (float)amount, avg.Span<float>());
        else TensorPrimitives.Lerp(avg.Span<double>(), x.Span<double>(), amount, avg.Span<double>());
    }
}
