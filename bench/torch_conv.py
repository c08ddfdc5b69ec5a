#!/usr/bin/env python3
"""torch_conv.py: the PyTorch reference of examples/fmnist-conv.yaml for
throughput (and accuracy) comparisons with soma.

Network (snnTorch tutorial 7's layout, as in the YAML file):
  1x28x28 -> Conv2d(1, 32, 3, padding 1) -> MaxPool2d(2) -> LIF   (32x14x14)
          -> Conv2d(32, 64, 3, padding 1) -> MaxPool2d(2) -> LIF  (64x7x7)
          -> flatten -> Linear(3136, 10) -> LIF
LIF as snnTorch's Leaky: U = beta*U + I - S_prev*theta (reset by subtraction,
the reset detached), S = H(U - theta), beta 0.9, theta 1, fast-sigmoid
surrogate 1/(25|U - theta| + 1)^2. The pixels are the input current at every
one of T = 6 steps, so the first convolution is computed once per batch (a
stronger reference than recomputing it each step). Loss: mean over steps of
CE on the output membrane; Adam 2e-3; batch 128. Readout: argmax of the mean
output membrane.

Usage: python3 bench/torch_conv.py [--batches 100] [--threads 2] [--epochs 0] [--json OUT]
With --epochs E > 0 it trains E full epochs (cosine schedule, as the YAML
file) and reports the test accuracy; otherwise it times --batches batches.
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from torch_ref import read_idx  # the IDX reader of the main reference (same directory)




class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (25.0 * x.abs() + 1.0) ** 2


def lif(u, i, s_prev, beta=0.9, theta=1.0):
    u = beta * u + i - s_prev.detach() * theta
    return u, Spike.apply(u - theta)


class ConvSNN(torch.nn.Module):
    def __init__(self, steps=6):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.fc = torch.nn.Linear(64 * 7 * 7, 10)
        self.steps = steps

    def forward(self, x):  # x: [B, 1, 28, 28]
        B = x.shape[0]
        i1 = torch.nn.functional.max_pool2d(self.c1(x), 2)
        u1 = torch.zeros_like(i1)
        s1 = torch.zeros_like(i1)
        u2 = torch.zeros(B, 64, 7, 7)
        s2 = torch.zeros_like(u2)
        u3 = torch.zeros(B, 10)
        s3 = torch.zeros_like(u3)
        mems = []
        for _ in range(self.steps):
            u1, s1 = lif(u1, i1, s1)
            u2, s2 = lif(u2, torch.nn.functional.max_pool2d(self.c2(s1), 2), s2)
            u3, s3 = lif(u3, self.fc(s2.flatten(1)), s3)
            mems.append(u3)
        return torch.stack(mems)  # [T, B, 10]


def loss_of(mem, y):
    T = mem.shape[0]
    return sum(torch.nn.functional.cross_entropy(mem[t], y) for t in range(T)) / T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    root = "/usr/share/datasets/fashion-mnist/"
    xtr = torch.tensor(read_idx(root + "train-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28), dtype=torch.float32) / 255
    ytr = torch.tensor(read_idx(root + "train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.tensor(read_idx(root + "t10k-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28), dtype=torch.float32) / 255
    yte = torch.tensor(read_idx(root + "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    net = ConvSNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    B = 128
    nb_epoch = (len(xtr) + B - 1) // B
    total = a.epochs * nb_epoch if a.epochs > 0 else a.batches
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total))) \
        if a.epochs > 0 else None
    # Timing mode: one warm-up batch first, not timed (soma's figure is its
    # train_samples_per_second_after_first: the same rule on both sides).
    warm = 1 if a.epochs == 0 else 0
    done = 0
    t0 = time.perf_counter()
    while done < total + warm:
        perm = torch.randperm(len(xtr))
        for k in range(nb_epoch):
            if done >= total + warm:
                break
            if done == warm and warm:
                t0 = time.perf_counter()
            idx = perm[k * B:(k + 1) * B]
            loss = loss_of(net(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            done += 1
    train_sps = total * B / (time.perf_counter() - t0)
    correct = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b0 in range(0, len(xte), B):
            mem = net(xte[b0:b0 + B])
            correct += int((mem.mean(0).argmax(1) == yte[b0:b0 + B]).sum())
    infer_sps = len(xte) / (time.perf_counter() - t0)
    res = {"train_samples_per_second": train_sps, "infer_samples_per_second": infer_sps,
           "test_accuracy": correct / len(xte), "batches": total, "threads": a.threads}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
