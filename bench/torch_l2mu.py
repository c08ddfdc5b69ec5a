#!/usr/bin/env python3
"""torch_l2mu.py: the PyTorch reference of soma's l2mu cell (src/models/l2mu.c)
for throughput comparisons: input -> Linear -> L2MU -> Linear, loss the mean
over steps of CE on the readout (soma's ce_mem with a linear ann output), Adam.

Same maths as l2mu.c: spikes S(v) = H(v - 1) with a fast-sigmoid surrogate
1/(k|v - 1| + 1)^2 (k = 25, soma's default), reset by subtraction with the
reset signal detached;
  u  = e_x.in + e_h.S_h[t-1] + e_m.S_m[t-1]         (one u neuron)
  vu = beta_u vu + u - R,                          S_u = S(vu)
  vm = beta_m vm + Abar S_m[t-1] + Bbar S_u - R,   S_m = S(vm)   (order d)
  vh = beta vh + in + W_h S_h[t-1] + W_m S_m - R,  S_h = S(vh)   (output)
Abar, Bbar: zero-order hold of the Legendre system (A/theta, B/theta), dt = 1,
by torch.matrix_exp in double. The betas stay fixed at 0.9 (soma's default:
not learned).

Usage: python3 bench/torch_l2mu.py --hidden 64 --order 16 --steps 40 --inputs 6
       --classes 6 --batch 64 --batches 10 --threads 2
Prints one JSON line {"train_samples_per_s": ...}.
"""
import argparse
import json
import math
import time

import torch


class Spike(torch.autograd.Function):
    """H(x) forward, fast-sigmoid derivative 1/(k|x| + 1)^2 backward."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (ctx.k * x.abs() + 1.0) ** 2, None


def legendre_zoh(d, theta):
    q = torch.arange(d, dtype=torch.float64)
    i, j = q[:, None], q[None, :]
    sign = torch.where(i < j, -torch.ones(d, d, dtype=torch.float64), (-1.0) ** (i - j + 1))
    A = (2 * i + 1) * sign
    B = (2 * q + 1) * (-1.0) ** q
    M = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    M[:d, :d] = A / theta
    M[:d, d] = B / theta
    E = torch.matrix_exp(M)
    return E[:d, :d].float(), E[:d, d].float()


class L2MU(torch.nn.Module):
    def __init__(self, n, d, theta, k=25.0, beta=0.9):
        super().__init__()
        self.k, self.beta = k, beta
        lecun = math.sqrt(3.0 / n)
        self.e_x = torch.nn.Parameter(torch.empty(n).uniform_(-lecun, lecun))
        self.e_h = torch.nn.Parameter(torch.empty(n).uniform_(-lecun, lecun))
        self.e_m = torch.nn.Parameter(torch.zeros(d))
        xh, xm = math.sqrt(6.0 / (2 * n)), math.sqrt(6.0 / (n + d))
        self.W_h = torch.nn.Parameter(torch.empty(n, n).uniform_(-xh, xh))
        self.W_m = torch.nn.Parameter(torch.empty(n, d).uniform_(-xm, xm))
        Ab, Bb = legendre_zoh(d, theta)
        self.register_buffer("AbT", Ab.t().contiguous())
        self.register_buffer("Bb", Bb)

    def forward(self, inp):  # inp [T, B, n] -> spikes [T, B, n]
        T, B, n = inp.shape
        d = self.Bb.shape[0]
        vh = inp.new_zeros(B, n)
        vu = inp.new_zeros(B)
        vm = inp.new_zeros(B, d)
        hs = inp.new_zeros(B, n)
        ms = inp.new_zeros(B, d)
        out = []
        for t in range(T):
            x = inp[t]
            u = x @ self.e_x + hs @ self.e_h + ms @ self.e_m
            vu = self.beta * vu + u - (vu > 1).to(x.dtype)
            us = Spike.apply(vu - 1, self.k)
            vm = self.beta * vm + ms @ self.AbT + us[:, None] * self.Bb - (vm > 1).to(x.dtype)
            ms = Spike.apply(vm - 1, self.k)
            vh = self.beta * vh + x + hs @ self.W_h.t() + ms @ self.W_m.t() - (vh > 1).to(x.dtype)
            hs = Spike.apply(vh - 1, self.k)
            out.append(hs)
        return torch.stack(out)


class Net(torch.nn.Module):
    def __init__(self, inputs, hidden, order, theta, classes):
        super().__init__()
        self.fc1 = torch.nn.Linear(inputs, hidden)
        self.cell = L2MU(hidden, order, theta)
        self.fc2 = torch.nn.Linear(hidden, classes)

    def forward(self, x):  # x [T, B, inputs] -> readout membrane [T, B, classes]
        return self.fc2(self.cell(self.fc1(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--order", type=int, default=16)
    ap.add_argument("--theta", type=float, default=40.0)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--inputs", type=int, default=6)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net(a.inputs, a.hidden, a.order, a.theta, a.classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(a.steps, a.batch, a.inputs) * 2 - 1
    y = torch.arange(a.batch) % a.classes

    def step():
        opt.zero_grad()
        z = net(x)
        loss = torch.nn.functional.cross_entropy(z.reshape(-1, a.classes), y.repeat(a.steps))
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.batches):
        loss = step()
    dt = time.perf_counter() - t0
    print(json.dumps({"train_samples_per_s": round(a.batches * a.batch / dt, 1), "loss": round(loss, 4),
                      "hidden": a.hidden, "order": a.order, "steps": a.steps, "batch": a.batch,
                      "threads": a.threads}))


if __name__ == "__main__":
    main()
