namespace Backprop.Optim;

/// <summary>
/// Learning-rate schedules stepped once per epoch, as torch.optim.lr_scheduler. Each computes the rate for an
/// epoch in closed form from the optimizer's initial rate, so resuming at any epoch gives the same value.
/// </summary>
public abstract class LrScheduler(Optimizer optimizer)
{
    public Optimizer Optimizer { get; } = optimizer;
    /// <summary>Completed epochs; setting it (to resume a run) sets the optimizer's rate for that point.</summary>
    public int Epoch
    {
        get => epoch;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            epoch = value;
            Optimizer.LearningRate = RateAt(value);
        }
    }

    int epoch;

    /// <summary>Advances one epoch and sets the optimizer's learning rate.</summary>
    public void Step()
    {
        Epoch = epoch + 1;
    }

    /// <summary>The learning rate after <paramref name="epoch"/> completed epochs.</summary>
    public abstract double RateAt(int epoch);

    /// <summary>
    /// True for schedules that change the rate within an epoch: the trainer then sets <see cref="RateAt(double)"/> at
    /// each step, at the fraction of the epoch done.
    /// </summary>
    public virtual bool PerStep => false;

    /// <summary>The rate at a fractional epoch (per-step schedules); others hold their epoch's rate.</summary>
    public virtual double RateAt(double epoch) => RateAt((int)Math.Floor(epoch));
}

/// <summary>
/// Linear warm-up from η₀/warm-up-steps to η₀ over the first <c>warmup</c> epochs, then a cosine decay to η_min at
/// <c>total</c> epochs; updated at every step (PyTorch: LinearLR then CosineAnnealingLR in a SequentialLR, stepped per batch).
/// Warm-up keeps large-batch SGD with momentum stable while batch-norm statistics settle.
/// </summary>
public sealed class WarmupCosineLR : LrScheduler
{
    public WarmupCosineLR(Optimizer optimizer, double warmupEpochs, int totalEpochs, double etaMin = 0) : base(optimizer)
    {
        if (totalEpochs <= 0) throw new ArgumentOutOfRangeException(nameof(totalEpochs), totalEpochs, "WarmupCosineLR: total epochs must be positive");
        if (warmupEpochs < 0 || warmupEpochs >= totalEpochs) throw new ArgumentOutOfRangeException(nameof(warmupEpochs), warmupEpochs, "WarmupCosineLR: warm-up must be in [0, total epochs)");
        WarmupEpochs = warmupEpochs; TotalEpochs = totalEpochs; EtaMin = etaMin;
    }
    public double WarmupEpochs { get; }
    public int TotalEpochs { get; }
    public double EtaMin { get; }
    public override bool PerStep => true;
    public override double RateAt(int epoch) => RateAt((double)epoch);
    public override double RateAt(double epoch)
    {
        double eta = Optimizer.InitialLearningRate;
        if (epoch < WarmupEpochs) return eta * Math.Max(epoch, 1e-3 * WarmupEpochs) / WarmupEpochs;
        double t = Math.Min(1, (epoch - WarmupEpochs) / (TotalEpochs - WarmupEpochs));
        return EtaMin + (eta - EtaMin) * (1 + Math.Cos(Math.PI * t)) / 2;
    }
}

/// <summary>η₀ · γ^⌊epoch / k⌋ (×γ every k epochs).</summary>
public sealed class StepLR : LrScheduler
{
    public StepLR(Optimizer optimizer, int stepSize, double gamma = 0.1) : base(optimizer)
    {
        if (stepSize <= 0) throw new ArgumentOutOfRangeException(nameof(stepSize), stepSize, "StepLR: step size must be positive");
        StepSize = stepSize; Gamma = gamma;
    }
    public int StepSize { get; }
    public double Gamma { get; }
    public override double RateAt(int epoch) => Optimizer.InitialLearningRate * Math.Pow(Gamma, epoch / StepSize);
}

/// <summary>η₀ · γ^epoch (×γ every epoch).</summary>
public sealed class ExponentialLR(Optimizer optimizer, double gamma) : LrScheduler(optimizer)
{
    public double Gamma { get; } = gamma;
    public override double RateAt(int epoch) => Optimizer.InitialLearningRate * Math.Pow(Gamma, epoch);
}

/// <summary>
/// η_min + (η₀ − η_min)(1 + cos(π·epoch/T))/2: from η₀ down to η_min over T epochs. Not clamped, as PyTorch's
/// closed form: past T the rate follows the cosine back up, to η₀ at 2T.
/// </summary>
public sealed class CosineAnnealingLR : LrScheduler
{
    public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin = 0) : base(optimizer)
    {
        if (tMax <= 0) throw new ArgumentOutOfRangeException(nameof(tMax), tMax, "CosineAnnealingLR: T_max must be positive");
        TMax = tMax; EtaMin = etaMin;
    }
    public int TMax { get; }
    public double EtaMin { get; }
    public override double RateAt(int epoch) =>
        EtaMin + (Optimizer.InitialLearningRate - EtaMin) * (1 + Math.Cos(Math.PI * epoch / TMax)) / 2;
}

/// <summary>
/// The one-cycle policy, as torch.optim.lr_scheduler.OneCycleLR (two phases) with the optimizer's rate as max_lr: from
/// η/<c>divFactor</c> up to η over the first <c>pctStart</c> of training, then down to η/(<c>divFactor</c>·<c>finalDivFactor</c>),
/// by cosine or linear annealing; updated at every step. airbench's triangle is linear with 0.23, 5 and 2.857 (0.2η → η → 0.07η).
/// </summary>
public sealed class OneCycleLR : LrScheduler
{
    public OneCycleLR(Optimizer optimizer, int totalEpochs, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4, bool linear = false) : base(optimizer)
    {
        if (totalEpochs <= 0) throw new ArgumentOutOfRangeException(nameof(totalEpochs), totalEpochs, "OneCycleLR: total epochs must be positive");
        if (!(pctStart > 0 && pctStart < 1)) throw new ArgumentOutOfRangeException(nameof(pctStart), pctStart, "OneCycleLR: pct_start must be in (0, 1)");
        if (!(divFactor > 0) || !(finalDivFactor > 0)) throw new ArgumentOutOfRangeException(nameof(divFactor), "OneCycleLR: div_factor and final_div_factor must be positive");
        TotalEpochs = totalEpochs; PctStart = pctStart; DivFactor = divFactor; FinalDivFactor = finalDivFactor; Linear = linear;
    }
    public int TotalEpochs { get; }
    public double PctStart { get; }
    public double DivFactor { get; }
    public double FinalDivFactor { get; }
    public bool Linear { get; }
    public override bool PerStep => true;
    public override double RateAt(int epoch) => RateAt((double)epoch);
    public override double RateAt(double epoch)
    {
        double max = Optimizer.InitialLearningRate, start = max / DivFactor, end = start / FinalDivFactor;
        double t = Math.Clamp(epoch / TotalEpochs, 0, 1);
        return t < PctStart ? Anneal(start, max, t / PctStart) : Anneal(max, end, (t - PctStart) / (1 - PctStart));
    }

    double Anneal(double from, double to, double f) => Linear ? from + (to - from) * f : to + (from - to) * (1 + Math.Cos(Math.PI * f)) / 2;
}
