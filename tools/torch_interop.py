#!/usr/bin/python3
"""Fixtures written by PyTorch for Backprop's interoperability tests (ONNX import, safetensors both ways).

Run with Debian's PyTorch and ONNX (apt-get install python3-torch python3-onnx):
    /usr/bin/python3 tools/torch_interop.py tests/Backprop.Tests/Fixtures/torch

Writes, into the given folder:
  mlp.onnx, cnn.onnx       a small MLP (Linear-BatchNorm1d-ReLU-Dropout-Linear) and a small CNN
                           (Conv-BatchNorm2d-ReLU-MaxPool-Conv-ReLU-AvgPool-Flatten-Linear), trained a few steps so the
                           BatchNorm statistics are not trivial, exported in eval mode with torch.onnx.export
                           (opset 17, dynamic batch dimension)
  outputs.safetensors      the inputs and the outputs PyTorch computed for them (mlp_input, mlp_output, cnn_input, ...)
  mlp_state.safetensors    the MLP's state_dict as F32, with BatchNorm's num_batches_tracked (I64)
  mlp_state_f16.safetensors, mlp_state_bf16.safetensors   the same state in half precision
  dtypes.safetensors       one small tensor per safetensors dtype (F16 BF16 F32 F64 I64 I32 I16 I8 U8 BOOL)
  mnist_mlp.safetensors    a 784-64-10 MLP (Linear-BatchNorm1d-ReLU-Dropout-Linear) trained one epoch on the repository's
                           MNIST copy (pixels / 255, the last 5,000 training images held out), without Backprop's metadata;
  mnist_mlp.json           its MNIST test accuracy as PyTorch measured it
The safetensors files are written by the format's definition (an 8-byte little-endian header length, a JSON header,
the raw little-endian bytes), since Debian has no safetensors package.
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
          torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        # bfloat16 has no numpy type: its bytes are the upper halves of float32s
        raw = (t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes())
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def settle(model, make_input, steps=20):
    """A few SGD steps on random targets, so weights and BatchNorm statistics move off their initial values."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        x = make_input(16)
        loss = nn.functional.cross_entropy(model(x), torch.randint(0, 10, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def export(model, example, path):
    torch.onnx.export(model, example, path, opset_version=17, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, training=torch.onnx.TrainingMode.EVAL,
                      do_constant_folding=False)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    settle(mlp, lambda n: torch.randn(n, 20) * 2 + 0.5)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 2 * 2, 10))
    settle(cnn, lambda n: torch.randn(n, 3, 16, 16))

    export(mlp, torch.randn(2, 20), os.path.join(out, "mlp.onnx"))
    export(cnn, torch.randn(2, 3, 16, 16), os.path.join(out, "cnn.onnx"))
    with torch.no_grad():
        mlp_x, cnn_x = torch.randn(5, 20), torch.randn(5, 3, 16, 16)
        outputs = {"mlp_input": mlp_x, "mlp_output": mlp(mlp_x), "cnn_input": cnn_x, "cnn_output": cnn(cnn_x)}
        y = torch.tensor([3, 1, 4, 1, 5])
        outputs["labels"] = y.to(torch.float32)
    # the loss and its gradients in eval mode (running statistics, no dropout: deterministic), for the fine-tuning test
    for name, model, x in [("mlp", mlp, mlp_x), ("cnn", cnn, cnn_x)]:
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        outputs[f"{name}_loss"] = loss.detach().reshape(1)
        for n, p in model.named_parameters():
            outputs[f"{name}_grad.{n}"] = p.grad.clone()
        model.zero_grad()
    save_safetensors(os.path.join(out, "outputs.safetensors"), outputs)

    state = mlp.state_dict()
    save_safetensors(os.path.join(out, "mlp_state.safetensors"), state)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_safetensors(os.path.join(out, "mlp_state_f16.safetensors"), half)
    bf = {k: (v.bfloat16() if v.is_floating_point() else v) for k, v in state.items()}
    save_safetensors(os.path.join(out, "mlp_state_bf16.safetensors"), bf)

    values = torch.tensor([[-2.5, -1.0, 0.0], [0.5, 3.0, 100.0]])
    zoo = {name: (values.abs() if dt == torch.uint8 else values).to(dt) for dt, name in DTYPES.items()}
    save_safetensors(os.path.join(out, "dtypes.safetensors"), {n: t for n, t in zip(DTYPES.values(), zoo.values())})


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def mnist_mlp(out, mnist="data/mnist"):
    torch.manual_seed(1)
    x = read_idx(os.path.join(mnist, "train-images-idx3-ubyte.gz")).reshape(-1, 784).float() / 255
    y = read_idx(os.path.join(mnist, "train-labels-idx1-ubyte.gz")).long()
    tx = read_idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).float() / 255
    ty = read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")).long()
    x, y = x[:-5000], y[:-5000]
    net = nn.Sequential(nn.Linear(784, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    order = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        idx = order[i:i + 64]
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(tx).argmax(1) == ty).float().mean().item()
    save_safetensors(os.path.join(out, "mnist_mlp.safetensors"), net.state_dict())
    with open(os.path.join(out, "mnist_mlp.json"), "w") as f:
        json.dump({"arch": "mlp:784-64-10:batchnorm:dropout=0.2", "test_accuracy": accuracy, "test_images": len(ty)}, f)
        f.write("\n")


if __name__ == "__main__":
    folder = sys.argv[1] if len(sys.argv) > 1 else "tests/Backprop.Tests/Fixtures/torch"
    main(folder)
    mnist_mlp(folder)
