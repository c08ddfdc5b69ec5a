#!/usr/bin/env python3
"""torch_ultralif.py: the PyTorch reference of examples/fmnist-ultralif-t1.yaml
(UltraPLIF, T = 1, hidden 64) for throughput comparisons with soma.

Same maths as src/models/ultralif.c: V1 = eps*logaddexp((V + L)/eps, I/eps),
s = sigmoid((V1 - theta)/eps), V = V1*(1 - s); eps = exp(log_eps) with log_eps
one learnable scalar clamped to [ln 0.1, ln 20]; ln tau learned per neuron;
input rate-coded with p = 0.5*x; output fc2(s) averaged over steps; loss
CE + 0.1*mean(s); Adam 1e-3; batch 128. Plain autograd: the model is a few
elementwise ops, which is how such a model is written in PyTorch.

Usage: python3 bench/torch_ultralif.py [--batches 300] [--threads 2] [--json OUT]
Prints training and inference samples/s (and the test accuracy after the
measured batches).
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from torch_ref import read_idx  # the IDX reader of the main reference (same directory)




class UltraNet(torch.nn.Module):
    def __init__(self, hidden=64, steps=1):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, hidden)
        self.fc2 = torch.nn.Linear(hidden, 10)
        self.log_tau = torch.nn.Parameter(torch.full((hidden,), math.log(0.9)))
        self.log_eps = torch.nn.Parameter(torch.zeros(1))
        self.steps = steps

    def forward(self, x):  # x: [T, B, 784] spikes
        eps = self.log_eps.clamp(math.log(0.1), math.log(20.0)).exp()
        v = torch.zeros(x.shape[1], self.fc1.out_features)
        out, rate = 0.0, 0.0
        for t in range(self.steps):
            i = self.fc1(x[t])
            v1 = eps * torch.logaddexp((v + self.log_tau) / eps, i / eps)
            s = torch.sigmoid((v1 - 1.0) / eps)
            v = v1 * (1 - s)
            out = out + self.fc2(s)
            rate = rate + s.mean()
        return out / self.steps, rate / self.steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    root = "/usr/share/datasets/fashion-mnist/"
    xtr = torch.tensor(read_idx(root + "train-images-idx3-ubyte.gz").reshape(-1, 784), dtype=torch.float32) / 255
    ytr = torch.tensor(read_idx(root + "train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.tensor(read_idx(root + "t10k-images-idx3-ubyte.gz").reshape(-1, 784), dtype=torch.float32) / 255
    yte = torch.tensor(read_idx(root + "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    net = UltraNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    perm = torch.randperm(len(xtr))
    B = 128
    # One warm-up batch first, not timed (soma's figure is its
    # train_samples_per_second_after_first: the same rule on both sides).
    t0 = time.perf_counter()
    for k in range(a.batches + 1):
        if k == 1:
            t0 = time.perf_counter()
        idx = perm[(k * B) % (len(xtr) - B):][:B]
        x = (torch.rand(1, B, 784) < 0.5 * xtr[idx]).float()  # rate code, T = 1
        out, rate = net(x)
        loss = torch.nn.functional.cross_entropy(out, ytr[idx]) + 0.1 * rate
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_sps = a.batches * B / (time.perf_counter() - t0)
    correct = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b0 in range(0, len(xte), B):
            x = (torch.rand(1, min(B, len(xte) - b0), 784) < 0.5 * xte[b0:b0 + B]).float()
            out, _ = net(x)
            correct += int((out.argmax(1) == yte[b0:b0 + B]).sum())
    infer_sps = len(xte) / (time.perf_counter() - t0)
    res = {"train_samples_per_second": train_sps, "infer_samples_per_second": infer_sps,
           "test_accuracy": correct / len(xte), "batches": a.batches, "threads": a.threads}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
