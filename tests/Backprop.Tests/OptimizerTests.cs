using Backprop.Optim;
using static Backprop.Tests.Helpers;

namespace Backprop.Tests;

/// <summary>Optimizer steps against values computed by hand from the update rules.</summary>
public class OptimizerTests
{
    static Tensor Param(double v) => Leaf(Tensor.From([v]));

    static void SetGrad(Tensor p, double g) => p.Grad = Tensor.From([g]);

    [Fact]
    public void Sgd_with_momentum_follows_the_buffer()
    {
        var p = Param(1.0);
        var opt = new Sgd([p], learningRate: 0.1, momentum: 0.9);
        SetGrad(p, 2.0); opt.Step();   // b = 2; θ = 1 − 0.2 = 0.8
        Close(0.8, p.Item(), 1e-15);
        SetGrad(p, 1.0); opt.Step();   // b = 0.9·2 + 1 = 2.8; θ = 0.8 − 0.28 = 0.52
        Close(0.52, p.Item(), 1e-15);
    }

    [Fact]
    public void Sgd_nesterov_looks_ahead()
    {
        var p = Param(1.0);
        var opt = new Sgd([p], learningRate: 0.1, momentum: 0.9, nesterov: true);
        SetGrad(p, 2.0); opt.Step();   // b = 2; step g + μb = 3.8; θ = 1 − 0.38 = 0.62
        Close(0.62, p.Item(), 1e-15);
        SetGrad(p, 1.0); opt.Step();   // b = 2.8; step 1 + 2.52 = 3.52; θ = 0.62 − 0.352 = 0.268
        Close(0.268, p.Item(), 1e-15);
    }

    [Fact]
    public void Sgd_weight_decay_adds_lambda_theta_without_touching_grad()
    {
        var p = Param(2.0);
        var opt = new Sgd([p], learningRate: 0.5, weightDecay: 0.1);
        SetGrad(p, 1.0); opt.Step();   // g = 1 + 0.2 = 1.2; θ = 2 − 0.6
        Close(1.4, p.Item(), 1e-15);
        Close(1.0, p.Grad!.Item(), 0);
    }

    [Fact]
    public void Adam_applies_bias_correction()
    {
        var p = Param(1.0);
        var opt = new Adam([p], learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8);
        SetGrad(p, 2.0); opt.Step();
        // m = 0.2, v = 0.004; m̂ = 2, v̂ = 4; θ = 1 − 0.1·2/(2 + 1e-8)
        Close(1 - 0.1 * 2 / (2 + 1e-8), p.Item(), 1e-15);
        SetGrad(p, -1.0); opt.Step();
        double m = 0.9 * 0.2 - 0.1, v = 0.999 * 0.004 + 0.001;
        double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
        Close(1 - 0.1 * 2 / (2 + 1e-8) - 0.1 * mhat / (Math.Sqrt(vhat) + 1e-8), p.Item(), 1e-14);
    }

    [Theory]
    [InlineData(false, false, 0.0), InlineData(false, false, 0.05), InlineData(true, false, 0.05), InlineData(false, true, 0.05), InlineData(true, true, 0.05)]
    public void The_fused_adam_pass_matches_the_update_written_out_per_element(bool decoupled, bool amsgrad, double wd)
    {
        // 1,003 float32 elements: the vector loop and its scalar tail, against the formulas element by element
        const int n = 1003;
        var g = new Generator(3);
        var p = Tensor.Normal([n], 0, 1, g); p.RequiresGrad = true;
        var opt = decoupled ? new AdamW([p], 0.01, 0.9, 0.99, 1e-8, wd, amsgrad) : new Adam([p], 0.01, 0.9, 0.99, 1e-8, wd, amsgrad);
        float[] theta = p.ToFloatArray(), m = new float[n], v = new float[n], vMax = new float[n];
        for (int t = 1; t <= 3; t++)
        {
            var grad = Tensor.Normal([n], 0, t, g);   // a different scale each step, so v falls and rises
            p.Grad = grad;
            opt.Step();
            var gr = grad.ToFloatArray();
            float stepSize = (float)(0.01 / (1 - Math.Pow(0.9, t))), k = (float)(1 / Math.Sqrt(1 - Math.Pow(0.99, t)));
            for (int i = 0; i < n; i++)
            {
                float th = decoupled ? theta[i] * (float)(1 - 0.01 * wd) : theta[i];
                float gi = !decoupled && wd != 0 ? th * (float)wd + gr[i] : gr[i];
                m[i] = gi * (1 - 0.9f) + m[i] * 0.9f;
                v[i] = v[i] * 0.99f + (1 - 0.99f) * gi * gi;
                float vi = v[i];
                if (amsgrad) { vMax[i] = Math.Max(vMax[i], v[i]); vi = vMax[i]; }
                theta[i] = th - stepSize * m[i] / (MathF.Sqrt(vi) * k + 1e-8f);
            }
            Assert.Equal(theta, p.ToFloatArray());
        }
    }

    // Tensors this large are updated in pieces on the kernels' helper threads; a ragged last piece included, every
    // value must be what one thread computes.
    [Theory]
    [InlineData("sgd"), InlineData("adam"), InlineData("amsgrad")]
    public void Large_tensors_update_in_pieces_on_several_threads_to_the_same_values(string rule)
    {
        float[] Run(int threads)
        {
            using var _ = Parallelism.Use(threads);
            var g = new Generator(4);
            var p = Tensor.Normal([300_007], 0, 1, g); p.RequiresGrad = true;
            Optimizer opt = rule == "sgd" ? new Sgd([p], 0.01, momentum: 0.9) : new Adam([p], 0.01, 0.9, 0.99, 1e-8, 0.01, amsgrad: rule == "amsgrad");
            for (int t = 1; t <= 3; t++)
            {
                p.Grad = Tensor.Normal([300_007], 0, t, g);
                opt.Step();
            }
            return p.ToFloatArray();
        }
        Assert.Equal(Run(1), Run(Environment.ProcessorCount));
    }

    [Fact]
    public void AdamW_decays_weights_decoupled_from_the_gradient()
    {
        var p = Param(1.0);
        var opt = new AdamW([p], learningRate: 0.1, weightDecay: 0.5);
        SetGrad(p, 2.0); opt.Step();   // θ ← θ(1 − 0.05) then the Adam step of size 0.1
        Close(0.95 - 0.1 * 2 / (2 + 1e-8), p.Item(), 1e-15);
    }

    // The second moment falls after the first gradient, so v_max stays at v₁ and amsgrad takes smaller steps than Adam.
    static readonly double[] FallingGrads = [3.0, 0.1, -0.2, 0.1];

    [Theory]   // θ after each step from tools/torch_amsgrad.py (torch 1.13, float64)
    [InlineData(false, new[] { 0.9000000003225807, 0.8286280596968376, 0.776011955546525, 0.7297234179887148 })]
    [InlineData(true, new[] { 0.8900000003333333, 0.8118037537381908, 0.7545063448787659, 0.7048630371008913 })]
    public void Amsgrad_divides_by_the_largest_second_moment_seen(bool decoupled, double[] torch)
    {
        const double lr = 0.1, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
        var p = Param(1.0); var plain = Param(1.0);
        Adam opt = decoupled ? new AdamW([p], lr, b1, b2, eps, wd, amsgrad: true) : new Adam([p], lr, b1, b2, eps, wd, amsgrad: true);
        Adam adam = decoupled ? new AdamW([plain], lr, b1, b2, eps, wd) : new Adam([plain], lr, b1, b2, eps, wd);
        double theta = 1, m = 0, v = 0, vMax = 0;
        for (int t = 1; t <= FallingGrads.Length; t++)
        {
            double g = FallingGrads[t - 1];
            if (decoupled) theta *= 1 - lr * wd; else g += wd * theta;
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * g * g;
            vMax = Math.Max(vMax, v);
            theta -= lr / (1 - Math.Pow(b1, t)) * m / (Math.Sqrt(vMax) / Math.Sqrt(1 - Math.Pow(b2, t)) + eps);

            SetGrad(p, FallingGrads[t - 1]); opt.Step();
            SetGrad(plain, FallingGrads[t - 1]); adam.Step();
            Close(theta, p.Item(), 1e-15, $"step {t}");
            Close(torch[t - 1], p.Item(), 1e-15, $"torch step {t}");
            if (t > 1) Assert.True(Math.Abs(p.Item() - plain.Item()) > 1e-4, $"step {t}: amsgrad should differ from Adam");
        }
        Assert.Equal(vMax, opt.StateDict()["0.max_exp_avg_sq"].Item());
    }

    [Fact]
    public void Schedules_follow_their_closed_forms()
    {
        var opt = new Sgd([Param(0)], learningRate: 0.1);
        var step = new StepLR(opt, stepSize: 20, gamma: 0.1);
        var seen = new List<double>();
        for (int e = 0; e < 60; e++) { seen.Add(opt.LearningRate); step.Step(); }
        Close(0.1, seen[19], 1e-15); Close(0.01, seen[20], 1e-15); Close(0.001, seen[59], 1e-15);

        var cos = new CosineAnnealingLR(new Sgd([Param(0)], learningRate: 1.0), tMax: 10);
        Close(0.5, cos.RateAt(5), 1e-15); Close(0.0, cos.RateAt(10), 1e-15);
        Close(0.9 * 0.9, new ExponentialLR(new Sgd([Param(0)], 1.0), 0.9).RateAt(2), 1e-15);
    }

    [Fact]
    public void Parameter_groups_scale_the_rate_and_the_decay_of_their_members()
    {
        var a = Param(2.0); var b = Param(2.0);
        var opt = new Sgd([new ParameterGroup([a]), new ParameterGroup([b], LearningRateScale: 4, WeightDecayScale: 0.25)], learningRate: 0.5, weightDecay: 0.1);
        SetGrad(a, 1.0); SetGrad(b, 1.0); opt.Step();
        Close(2 - 0.5 * (1 + 0.1 * 2), a.Item(), 1e-15);          // 1.4
        Close(2 - 2.0 * (1 + 0.025 * 2), b.Item(), 1e-15);        // lr 2, decay 0.025: the same shrink per step, 0.1·θ
        Assert.Throws<ArgumentException>(() => new Sgd([new ParameterGroup([a]), new ParameterGroup([a], 2)], 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([new ParameterGroup([a], -1)], 0.1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void One_cycle_rises_from_max_over_div_to_max_then_falls_to_its_floor_as_pytorch(bool linear)
    {
        var cycle = new OneCycleLR(new Sgd([Param(0)], learningRate: 1.0), totalEpochs: 10, pctStart: 0.25, divFactor: 5, finalDivFactor: 4, linear: linear);
        Close(0.2, cycle.RateAt(0.0), 1e-15);          // max / div
        Close(1.0, cycle.RateAt(2.5), 1e-15);          // the peak at pct_start
        Close(0.05, cycle.RateAt(10.0), 1e-15);        // max / (div · final_div)
        Close(0.6, cycle.RateAt(1.25), 1e-15);   // halfway up (linear, and cosine at its midpoint, agree)
        double quarterDown = linear ? 1 - 0.95 * 0.25 : 0.05 + 0.95 * (1 + Math.Cos(Math.PI * 0.25)) / 2;
        Close(quarterDown, cycle.RateAt(2.5 + 7.5 * 0.25), 1e-15);
        Assert.True(cycle.PerStep);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLR(new Sgd([Param(0)], 1.0), 10, pctStart: 1));
    }

    [Fact]
    public void Cosine_annealing_past_T_max_follows_the_cosine_back_up_as_pytorch()
    {
        var opt = new Sgd([Param(0)], learningRate: 0.1);
        var cos = new CosineAnnealingLR(opt, tMax: 10, etaMin: 0.01);
        var lr = new List<double> { opt.LearningRate };
        for (int e = 0; e < 20; e++) { cos.Step(); lr.Add(opt.LearningRate); }
        Close(0.01, lr[10], 1e-15);                  // η_min at T
        Close(0.01 + 0.09 * 0.5, lr[15], 1e-15);     // cos(1.5π) = 0: halfway back up at 1.5T (torch: 0.0550000000000002)
        Close(0.1, lr[20], 1e-15);                   // η₀ again at 2T (torch: 0.1000000000000004)
    }

    [Fact]
    public void State_dict_resumes_momentum_exactly()
    {
        var a = Param(1.0); var b = Param(1.0);
        var oa = new Sgd([a], 0.1, momentum: 0.9);
        SetGrad(a, 2.0); oa.Step();
        b.CopyFrom(a);
        var ob = new Sgd([b], 0.1, momentum: 0.9);
        ob.LoadStateDict(oa.StateDict());
        SetGrad(a, 1.0); oa.Step();
        SetGrad(b, 1.0); ob.Step();
        Assert.Equal(a.Item(), b.Item());
        Assert.Equal(2, ob.Steps);
    }
}
