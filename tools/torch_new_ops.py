#!/usr/bin/python3
"""Prints PyTorch's float64 values and gradients for the ops NewOpTests pins (Debian's python3-torch, 1.13)."""
import torch
import torch.nn.functional as F

x = torch.tensor([-30.0, -5.0, -1.5, -0.25, -1e-8, 0.0, 1e-8, 0.3, 1.7, 6.0, 25.0], dtype=torch.float64)
for name, f in [("leaky_relu", lambda t: F.leaky_relu(t, 0.01)), ("elu", F.elu), ("gelu", F.gelu),
                ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")), ("softplus", F.softplus),
                ("softplus_b2_t4", lambda t: F.softplus(t, beta=2, threshold=4)), ("silu", F.silu), ("erf", torch.erf)]:
    xx = x.clone().requires_grad_()
    y = f(xx)
    y.sum().backward()
    print(name, y.tolist(), "grad", xx.grad.tolist())
print("erf near 2.5", torch.erf(torch.tensor([2.4999999, 2.5, 2.5000001, 3.0], dtype=torch.float64)).tolist())
t = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4).sin()
w = torch.linspace(0.5, 1.5, 12, dtype=torch.float64).reshape(3, 4)
b = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
print("layer_norm (3,4)", F.layer_norm(t, (3, 4), w, b).reshape(-1).tolist())
print("layer_norm (4)", F.layer_norm(t, (4,)).reshape(-1)[:8].tolist())
e = torch.arange(15, dtype=torch.float64).reshape(5, 3).requires_grad_()
y = F.embedding(torch.tensor([[1, 3], [3, 0]]), e, padding_idx=3)
y.backward(torch.ones_like(y))
print("embedding", y.reshape(-1).tolist(), "grad", e.grad.reshape(-1).tolist())
