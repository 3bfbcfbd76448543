#!/usr/bin/python3
"""torch.optim.Adam/AdamW with amsgrad=True on one float64 parameter (reference for OptimizerTests).

    /usr/bin/python3 tools/torch_amsgrad.py      # Debian's python3-torch
"""
import torch

GRADS = [3.0, 0.1, -0.2, 0.1]   # the second moment falls after the first step, so amsgrad differs from Adam

for name, cls, kw in [("Adam", torch.optim.Adam, dict(weight_decay=0.1)), ("AdamW", torch.optim.AdamW, dict(weight_decay=0.1))]:
    for amsgrad in (False, True):
        p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
        opt = cls([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8, amsgrad=amsgrad, **kw)
        seen = []
        for g in GRADS:
            p.grad = torch.tensor([g], dtype=torch.float64)
            opt.step()
            seen.append(repr(p.item()))
        print(f"{name} amsgrad={amsgrad}: {', '.join(seen)}")
