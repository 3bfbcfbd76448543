#!/usr/bin/python3
"""The cs231n two-layer-net toy problem in numpy, as the exercise runs it (reference for `backprop toy`).

    /usr/bin/python3 tools/numpy_toy.py > tests/Backprop.Tests/Fixtures/numpy_toy.json
"""
import json
import numpy as np


def loss(params, X, y=None, reg=0.0):
    W1, b1, W2, b2 = params['W1'], params['b1'], params['W2'], params['b2']
    N = X.shape[0]
    z2 = X.dot(W1) + b1
    a2 = np.maximum(0, z2)
    scores = a2.dot(W2) + b2
    if y is None:
        return scores
    s = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    data_loss = -np.log(probs[np.arange(N), y]).sum() / N
    total = data_loss + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    d3 = probs.copy()
    d3[np.arange(N), y] -= 1
    d3 /= N
    grads = {'W2': a2.T.dot(d3) + 2 * reg * W2, 'b2': d3.sum(axis=0)}
    d2 = d3.dot(W2.T) * (z2 > 0)
    grads['W1'] = X.T.dot(d2) + 2 * reg * W1
    grads['b1'] = d2.sum(axis=0)
    return total, grads


def train(params, X, y, lr, decay, reg, num_iters, batch_size):
    num_train = X.shape[0]
    iterations_per_epoch = max(num_train / batch_size, 1)
    history = []
    for it in range(num_iters):
        idx = np.random.choice(num_train, batch_size)
        l, g = loss(params, X[idx], y[idx], reg)
        history.append(l)
        for k in params:
            params[k] -= lr * g[k]
        if it % iterations_per_epoch == 0:
            lr *= decay
    return history


def init_toy_model():
    np.random.seed(0)
    return {'W1': 1e-1 * np.random.randn(4, 10), 'b1': np.zeros(10),
            'W2': 1e-1 * np.random.randn(10, 3), 'b2': np.zeros(3)}


params = init_toy_model()
np.random.seed(1)
X = 10 * np.random.randn(5, 4)
y = np.array([0, 1, 2, 2, 1])
scores = loss(params, X)
l, _ = loss(params, X, y, reg=0.05)
# The notebook trains a fresh `net = init_toy_model()`: the minibatch draws continue from the stream
# right after the weights' draws (seed 0), not after X's.
params = init_toy_model()
history = train(params, X, y, lr=1e-1, decay=0.95, reg=5e-6, num_iters=100, batch_size=200)
print(json.dumps({"numpy_version": np.__version__, "scores": scores.tolist(), "loss": l, "loss_history": history}, indent=1))
