#!/usr/bin/env python3
"""torch_elm.py: a PyTorch implementation of soma's `elm` cell (src/models/elm.c)
for training-throughput comparisons.

Network, as a soma experiment would build it:

    x [T, B, inputs] -> Linear(inputs, hidden)          (soma's incoming projection: in_t)
    -> ELM(hidden = d_m):  s = kappa_s s + in_t                     (kappa = exp(-dt/tau))
                           b = s (v1) or per-branch sums of s (--branches d_b)
                           dm = 1.7159 tanh(2/3 MLP([b, kappa_m m])), MLP: Linear, ReLU, Linear
                           m = kappa_m m + lambda (1 - kappa_m) dm
    -> Linear(hidden, classes) on the last step's m, cross-entropy (soma's
       ce_last with a linear ann readout), Adam.

Learned as in soma: both projections, the MLP, ln tau_m (log-spaced over
[ln 1, ln 1000] at init); tau_s (5) and lambda (5) fixed. Every Linear uses
torch's default init (U(+-1/sqrt(fan_in))), as soma does. The data are random
(inputs uniform in [-1, 1), random labels): only the speed is measured. One
warm-up batch is not timed. Plain autograd over a Python time loop.

Usage:
  python3 bench/torch_elm.py --hidden 64 --steps 200 --inputs 4 --classes 8 \
      --batch 64 --batches 10 --threads 2 [--branches 0] [--mlp-hidden 0]
Prints one JSON line: {"train_samples_per_s": ..., ...}.
"""
import argparse
import json
import math
import time

import torch


class ELMNet(torch.nn.Module):
    def __init__(self, inputs, hidden, classes, branches=0, mlp_hidden=0, lam=5.0, tau_s=5.0, dt=1.0):
        super().__init__()
        self.N, self.D = hidden, branches
        H = mlp_hidden if mlp_hidden > 0 else 2 * hidden
        self.proj = torch.nn.Linear(inputs, hidden)
        self.l1 = torch.nn.Linear((branches if branches else hidden) + hidden, H)
        self.l2 = torch.nn.Linear(H, hidden)
        self.readout = torch.nn.Linear(hidden, classes)
        self.log_tau_m = torch.nn.Parameter(torch.linspace(0.0, math.log(1000.0), hidden))
        self.lam, self.dt = lam, dt
        self.register_buffer("kappa_s", torch.full((hidden,), math.exp(-dt / tau_s)))
        if branches:  # channel j in branch floor(j d_b / N): a [N, d_b] 0/1 matrix
            idx = torch.arange(hidden) * branches // hidden
            self.register_buffer("route", torch.nn.functional.one_hot(idx, branches).float())

    def forward(self, x):  # x: [T, B, inputs]
        T, B, _ = x.shape
        inp = self.proj(x)  # all steps at once, as soma's projection does
        kappa_m = torch.exp(-self.dt * torch.exp(-self.log_tau_m))
        gain = self.lam * (1.0 - kappa_m)
        s = x.new_zeros(B, self.N)
        m = x.new_zeros(B, self.N)
        for t in range(T):
            s = self.kappa_s * s + inp[t]
            b = s @ self.route if self.D else s
            mk = kappa_m * m
            dm = 1.7159 * torch.tanh(2.0 / 3.0 * self.l2(torch.relu(self.l1(torch.cat([b, mk], 1)))))
            m = mk + gain * dm
        return self.readout(m)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--branches", type=int, default=0)
    ap.add_argument("--mlp-hidden", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    net = ELMNet(a.inputs, a.hidden, a.classes, a.branches, a.mlp_hidden)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    xs = [torch.rand(a.steps, a.batch, a.inputs) * 2 - 1 for _ in range(a.batches + 1)]
    ys = [torch.randint(0, a.classes, (a.batch,)) for _ in range(a.batches + 1)]

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    step(xs[-1], ys[-1])  # warm-up, not timed
    t0 = time.perf_counter()
    loss = 0.0
    for k in range(a.batches):
        loss = step(xs[k], ys[k])
    dt = time.perf_counter() - t0
    print(json.dumps({"train_samples_per_s": a.batches * a.batch / dt, "seconds": dt, "last_loss": loss,
                      "hidden": a.hidden, "mlp_hidden": a.mlp_hidden or 2 * a.hidden, "branches": a.branches,
                      "steps": a.steps, "batch": a.batch, "batches": a.batches, "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
