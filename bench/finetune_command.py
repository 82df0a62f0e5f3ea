#!/usr/bin/python3
"""A `--recovery-command` that fine-tunes a pruned fixture on Fashion-MNIST's 60k training images.

prune-guard's own recovery uses the 512 calibration samples; this is the external fine-tune a user
would run on their training set (on a GPU, usually), here on this machine's CPU for reference runs:

    node bin/prune-guard.js run --model fixtures/resnet.onnx --data fixtures/fmnist-test.npz \
      --calib fixtures/fmnist-calib.npz --method structured --sparsity 0.3 --scope layer \
      --recovery command --recovery-command "/usr/bin/python3 bench/finetune_command.py" \
      --quantize int8 --batch-sizes 32 --threads 1 --out OUT

It needs no model class: the pruned ONNX graph itself runs in torch (Conv, BatchNormalization,
Relu, Add, pooling, Flatten/Reshape, Gemm/MatMul, Identity), every float initializer a parameter
except BatchNorm's running statistics, which are buffers updated in training mode. The masks
prune-guard wrote are applied after every step, so pruned zeros stay zero. Every initializer is
written back under its own name and shape, as prune-guard checks.

Settings follow bench/ceiling_finetune.py's full fine-tuning (AdamW lr 1e-3, cosine to 0, batch 128)
with torch's default weight decay (0.01) and a fixed shuffling seed; FT_EPOCHS (default 1) and
FT_THREADS (default 1) in the environment change the epochs and torch's threads.
"""

import math
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "fixtures"))
import make_fixtures as mf  # noqa: E402

LR, BATCH, SEED = 1e-3, 128, 0


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxGraph(torch.nn.Module):
    """The ONNX graph run op by op in torch, its initializers as parameters (BatchNorm statistics as buffers)."""

    def __init__(self, model):
        super().__init__()
        self.graph = model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        stats = {n.input[k] for n in model.graph.node if n.op_type == "BatchNormalization" for k in (3, 4)}
        self.names = {}
        self.params = torch.nn.ParameterDict()
        for i, (name, value) in enumerate(inits.items()):
            key = f"t{i}"
            self.names[name] = key
            tensor = torch.from_numpy(np.array(value, copy=True))
            if name in stats or not tensor.is_floating_point():
                self.register_buffer(key, tensor)
            else:
                self.params[key] = torch.nn.Parameter(tensor)

    def tensor(self, name):
        key = self.names[name]
        return self.params[key] if key in self.params else getattr(self, key)

    def forward(self, x):
        env = {self.graph.input[0].name: x}
        get = lambda n: env[n] if n in env else self.tensor(n)  # noqa: E731
        for node in self.graph.node:
            a, ins, op = attrs(node), node.input, node.op_type
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or a.get("ceil_mode", 0) or a.get("transA", 0):
                raise SystemExit(f"{node.name}: {op} attributes {sorted(a)} are not run by this fine-tuning script")
            if op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    raise SystemExit(f"{node.name}: asymmetric Conv padding is not supported here")
                y = F.conv2d(get(ins[0]), get(ins[1]), get(ins[2]) if len(ins) > 2 and ins[2] else None,
                             a.get("strides", [1, 1]), pads[:2], a.get("dilations", [1, 1]), a.get("group", 1))
            elif op == "BatchNormalization":
                y = F.batch_norm(get(ins[0]), get(ins[3]), get(ins[4]), get(ins[1]), get(ins[2]),
                                 self.training, 0.1, a.get("epsilon", 1e-5))
            elif op == "Relu":
                y = F.relu(get(ins[0]))
            elif op == "Add":
                y = get(ins[0]) + get(ins[1])
            elif op == "GlobalAveragePool":
                y = get(ins[0]).mean(dim=(2, 3), keepdim=True)
            elif op == "MaxPool":
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    raise SystemExit(f"{node.name}: asymmetric MaxPool padding is not supported here")
                y = F.max_pool2d(get(ins[0]), a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads[:2])
            elif op == "Flatten":
                y = torch.flatten(get(ins[0]), a.get("axis", 1))
            elif op == "Reshape":
                shape = [int(s) for s in get(ins[1]).tolist()]
                y = get(ins[0]).reshape([get(ins[0]).shape[i] if s == 0 else s for i, s in enumerate(shape)])
            elif op == "Gemm":
                w = get(ins[1]).t() if a.get("transB", 0) else get(ins[1])
                y = a.get("alpha", 1.0) * (get(ins[0]) @ w)
                if len(ins) > 2 and ins[2]:
                    y = y + a.get("beta", 1.0) * get(ins[2])
            elif op == "MatMul":
                y = get(ins[0]) @ get(ins[1])
            elif op == "Identity":
                y = get(ins[0])
            else:
                raise SystemExit(f"{node.name}: op {op} is not run by this fine-tuning script")
            env[node.output[0]] = y
        return env[self.graph.output[0].name]


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("FT_THREADS", "1")))
    epochs = int(os.environ.get("FT_EPOCHS", "1"))
    model = onnx.load(os.environ["PRUNE_GUARD_MODEL_IN"])
    masks = np.load(os.environ["PRUNE_GUARD_MASKS"])
    net = OnnxGraph(model)
    mask_of = {net.names[n]: torch.from_numpy(masks[n].astype(np.float32)) for n in masks.files if n in net.names and net.names[n] in net.params}

    images, labels = mf.load_split(train=True)
    x, y = torch.from_numpy(mf.normalize(images)), torch.from_numpy(labels)
    steps = epochs * math.ceil(len(x) / BATCH)
    opt = torch.optim.AdamW(net.params.values(), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(SEED)
    started = time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for key, m in mask_of.items():
                    net.params[key].mul_(m)
            total += loss.item() * len(idx)
        print(f"fine-tune epoch {epoch + 1}/{epochs}: train loss {total / len(x):.4f} ({time.time() - started:.0f} s)", file=sys.stderr)

    state = {name: net.tensor(name).detach().numpy() for name in net.names}
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(state[t.name].astype(np.float32), t.name))
    onnx.save(model, os.environ["PRUNE_GUARD_MODEL_OUT"])


if __name__ == "__main__":
    main()
