
using Backprop.Nn;
using Backprop.Optim;
using Backprop.Training;

namespace Backprop.Models;

/// <summary>Per-iteration losses and per-epoch minibatch and validation accuracies, as the exercise's <c>train</c> returns them.</summary>
public sealed record TwoLayerNetHistory(IReadOnlyList<double> Loss, IReadOnlyList<double> TrainAccuracy, IReadOnlyList<double> ValAccuracy);

/// <summary>Progress of <see cref="TwoLayerNet.Train"/>, reported every 100 iterations (the exercise's <c>verbose</c> print).</summary>
public readonly record struct TwoLayerNetProgress(int Iteration, int NumIters, double Loss);

/// <summary>
/// The classic two-layer network with its backward pass written out by hand (no autograd):
/// scores = ReLU(X W1 + b1) W2 + b2, softmax cross-entropy, L2 penalty λ(‖W1‖² + ‖W2‖²) without the ½.
/// W1 is (D, H) and W2 is (H, C), as the exercise stores them. Float32 or float64 (the parameters' dtype).
/// A <see cref="Module"/> whose forward gives the scores; <see cref="Train"/> runs the exercise's SGD through the
/// library's one training loop, with the hand-written gradients entering it as a custom <see cref="Function"/>.
/// </summary>
public sealed class TwoLayerNet : Module
{
    readonly Dictionary<string, Tensor> parameters;

    /// <summary>W1 = std·randn(D, H), b1 = 0, W2 = std·randn(H, C), b2 = 0, drawn from <paramref name="rng"/> in that order.</summary>
    public TwoLayerNet(int inputSize, int hiddenSize, int outputSize, NumpyRandom rng, double std = 1e-4, DType dtype = DType.Float64)
        : this(Init(rng.RandnTensor(inputSize, hiddenSize), std, dtype), Tensor.Zeros([hiddenSize], dtype),
               Init(rng.RandnTensor(hiddenSize, outputSize), std, dtype), Tensor.Zeros([outputSize], dtype)) { }

    /// <summary>A network holding the given parameters (not copied).</summary>
    public TwoLayerNet(Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        if (w1.Rank != 2 || w2.Rank != 2 || b1.Rank != 1 || b2.Rank != 1 || w1.Size(1) != w2.Size(0) || b1.Size(0) != w1.Size(1) || b2.Size(0) != w2.Size(1))
            throw new ArgumentException($"two-layer net: W1 {Fmt(w1)}, b1 {Fmt(b1)}, W2 {Fmt(w2)}, b2 {Fmt(b2)} do not fit (D,H), (H), (H,C), (C)");
        if (b1.DType != w1.DType || w2.DType != w1.DType || b2.DType != w1.DType)
            throw new ArgumentException("two-layer net: parameters must share one dtype");
        parameters = new() { ["W1"] = w1, ["b1"] = b1, ["W2"] = w2, ["b2"] = b2 };
        foreach (var (name, p) in parameters) RegisterParameter(name, p);
    }

    /// <summary>
    /// Class scores (N, C) as an autograd graph — what composes with other modules and what an exporter walks.
    /// <see cref="Scores"/> is the same function without a graph, for the exercise's hand-written backward.
    /// </summary>
    public override Tensor Forward(Tensor input) => Run(input, record: true).Z3;

    static Tensor Init(Tensor standardNormal, double std, DType dtype)
    {
        using var _ = Autograd.NoGrad();
        return (standardNormal * std).To(dtype);   // scaled in float64, as numpy does, then cast
    }

    static string Fmt(Tensor t) => "(" + string.Join(",", t.Shape.ToArray()) + ")";

    /// <summary>The parameters by the exercise's names: W1, b1, W2, b2 (updated in place by <see cref="Train"/>).</summary>
    public IReadOnlyDictionary<string, Tensor> Params => parameters;

    public DType DType => parameters["W1"].DType;

    /// <summary>Class scores (N, C) for inputs (N, D): the exercise's <c>loss(X)</c> without labels.</summary>
    public Tensor Loss(Tensor x) => Run(x).Z3;

    /// <inheritdoc cref="Loss(Tensor)"/>
    public Tensor Scores(Tensor x) => Run(x, record: false).Z3;

    /// <summary>
    /// The exercise's <c>loss(X, y, reg)</c>: the loss and the gradient of each parameter (W1, b1, W2, b2),
    /// in the parameters' dtype.
    /// </summary>
    public (double Loss, IReadOnlyDictionary<string, Tensor> Grads) Loss(Tensor x, int[] y, double reg = 0.0)
    {
        using var _ = Autograd.NoGrad();
        var (z2, a2, z3) = Run(x);
        Tensor w1 = parameters["W1"], w2 = parameters["W2"];
        int n = x.Size(0), c = w2.Size(1);
        if (y.Length != n) throw new ArgumentException($"two-layer net: {y.Length} labels for {n} inputs");
        foreach (int label in y)
            if ((uint)label >= (uint)c) throw new ArgumentException($"two-layer net: label {label} is outside 0…{c - 1}");

        // J = (1/N) Σᵢ (log Σⱼ exp z3ᵢⱼ − z3ᵢ,yᵢ) + λ(‖W1‖² + ‖W2‖²), the log-sum-exp max-shifted (no overflow)
        var max = z3.Max(1, keepDim: true);
        var exp = (z3 - max).Exp();
        var sum = exp.Sum(1, keepDim: true);
        var softmax = exp / sum;
        double dataLoss = 0;
        for (int i = 0; i < n; i++) dataLoss += max[i, 0] + Math.Log(sum[i, 0]) - z3[i, y[i]];
        double loss = dataLoss / n + reg * (w1.Mul(w1).Sum().Item() + w2.Mul(w2).Sum().Item());

        var delta = Tensor.Zeros([n, c], x.DType);
        for (int i = 0; i < n; i++) delta[i, y[i]] = 1;
        var dz3 = (softmax - delta) / n;                                      // dZ3 = (softmax − Δ) / N
        var dw2 = a2.MatMul(dz3, transposeA: true) + w2 * (2 * reg);         // dW2 = a2ᵀ dZ3 + 2λ W2
        var db2 = dz3.Sum(0);                                                 // db2 = Σᵢ dZ3ᵢ
        var da2 = dz3.MatMul(w2, transposeB: true);                           // da2 = dZ3 W2ᵀ
        var dz2 = da2 * z2.Gt(0);                                             // dZ2 = da2 ⊙ [z2 > 0]
        var dw1 = x.MatMul(dz2, transposeA: true) + w1 * (2 * reg);          // dW1 = Xᵀ dZ2 + 2λ W1
        var db1 = dz2.Sum(0);                                                 // db1 = Σᵢ dZ2ᵢ

        return (loss, new Dictionary<string, Tensor> { ["W1"] = dw1, ["b1"] = db1, ["W2"] = dw2, ["b2"] = db2 });
    }

    (Tensor Z2, Tensor A2, Tensor Z3) Run(Tensor x, bool record = false)
    {
        Tensor w1 = parameters["W1"], b1 = parameters["b1"], w2 = parameters["W2"], b2 = parameters["b2"];
        if (x.Rank != 2 || x.Size(1) != w1.Size(0) || x.DType != w1.DType)
            throw new ArgumentException($"two-layer net: input {Fmt(x)} {x.DType} does not match W1 {Fmt(w1)} {w1.DType}");
        using var _ = record ? null : Autograd.NoGrad();   // recording follows the caller's state when asked for a graph
        var z2 = x.MatMul(w1) + b1;                     // z2 = X W1 + b1
        var a2 = z2.Relu();                             // a2 = max(0, z2)
        var z3 = a2.MatMul(w2) + b2;                    // z3 = a2 W2 + b2   (the scores)
        return (z2, a2, z3);
    }

    /// <summary>The predicted class of each row of <paramref name="x"/>: argmax of its scores.</summary>
    public int[] Predict(Tensor x) => Scores(x).ArgMax(-1);

    /// <summary>
    /// The exercise's minibatch SGD: each iteration draws <c>np.random.choice(N, batchSize)</c> (with
    /// replacement) from <paramref name="rng"/>, steps every parameter by −lr·grad, and once per epoch
    /// records the minibatch and validation accuracies and multiplies lr by <paramref name="learningRateDecay"/>.
    /// Runs on the library's <see cref="Trainer{TBatch}"/> (plain SGD, an exponential schedule), each of the exercise's
    /// epochs one <see cref="Trainer{TBatch}.RunEpoch"/>.
    /// </summary>
    public TwoLayerNetHistory Train(Tensor x, int[] y, Tensor xVal, int[] yVal, NumpyRandom rng,
        double learningRate = 1e-3, double learningRateDecay = 0.95, double reg = 5e-6, int numIters = 100, int batchSize = 200,
        IProgress<TwoLayerNetProgress>? progress = null)
    {
        int numTrain = x.Size(0);
        if (y.Length != numTrain) throw new ArgumentException($"train: {y.Length} labels for {numTrain} inputs");
        if (batchSize <= 0) throw new ArgumentException($"train: batch size must be positive, not {batchSize}");
        // Python 3's true division, as in the exercise: with N not a multiple of the batch the epoch test
        // `it % iterations_per_epoch == 0` is a float remainder, true only at multiples of N / batch.
        double iterationsPerEpoch = Math.Max((double)numTrain / batchSize, 1);

        var losses = new List<double>(numIters);
        var trainAcc = new List<double>();
        var valAcc = new List<double>();
        var optimizer = new Sgd(Parameters(), learningRate);
        (Tensor X, int[] Y) last = default;
        var trainer = new Trainer<(Tensor X, int[] Y)>(this, optimizer, b =>
        {
            last = b;
            var f = new ManualLoss(this, b.X, b.Y, reg);
            var loss = f.Apply(parameters["W1"], parameters["b1"], parameters["W2"], parameters["b2"]);
            if (progress is not null && losses.Count % 100 == 0) progress.Report(new TwoLayerNetProgress(losses.Count, numIters, f.Value));
            losses.Add(f.Value);   // in float64, as the exercise records it (the loss tensor has the parameters' dtype)
            return new StepResult(loss, b.Y.Length);
        }, new ExponentialLR(optimizer, learningRateDecay)) { DivergenceFactor = double.PositiveInfinity };

        // One exercise epoch: the iterations up to and including the next `it % iterations_per_epoch == 0`.
        IEnumerable<(Tensor X, int[] Y)> Batches(int from, int to)
        {
            for (int it = from; it < to; it++)
            {
                var idx = rng.Choice(numTrain, batchSize);
                Tensor xBatch;
                using (Autograd.NoGrad()) xBatch = x.IndexSelect(idx);
                yield return (xBatch, Array.ConvertAll(idx, i => y[i]));
            }
        }
        int start = 0, epoch = 0;
        while (start < numIters)
        {
            int end = start + 1;
            while (end < numIters && (end - 1) % iterationsPerEpoch != 0) end++;
            bool boundary = (end - 1) % iterationsPerEpoch == 0;
            trainer.RunEpoch(++epoch, Batches(start, end), boundary ? () =>
            {
                trainAcc.Add(Accuracy(Predict(last.X!), last.Y!));
                valAcc.Add(Accuracy(Predict(xVal), yVal));
                return new Dictionary<string, double>();
            } : null);
            start = end;
        }
        return new TwoLayerNetHistory(losses, trainAcc, valAcc);
    }

    // The loss as one graph node whose backward is the hand-written one (public Function API).
    sealed class ManualLoss(TwoLayerNet net, Tensor x, int[] y, double reg) : Function
    {
        IReadOnlyDictionary<string, Tensor>? grads;
        public double Value { get; private set; }
        public override string Name => "two_layer_net_loss";
        protected override Tensor Forward(Tensor[] inputs)
        {
            (Value, grads) = net.Loss(x, y, reg);
            return Tensor.Scalar(Value, net.DType);
        }
        protected override Tensor?[] Backward(Tensor g) => [.. new[] { "W1", "b1", "W2", "b2" }.Select(n => grads![n].Mul(g))];
    }

    static double Accuracy(int[] predicted, int[] labels)
    {
        if (predicted.Length != labels.Length) throw new ArgumentException($"accuracy: {predicted.Length} predictions for {labels.Length} labels");
        int hits = 0;
        for (int i = 0; i < labels.Length; i++) if (predicted[i] == labels[i]) hits++;
        return (double)hits / labels.Length;
    }
}
