#!/usr/bin/env python3
"""torch_ltc.py: the PyTorch reference of soma's `ltc` cell (src/models/ltc.c)
for throughput comparisons: input -> Linear -> LTC -> Linear on the last step,
cross-entropy, Adam (lr 5e-4, soma's default), on random sequences and labels.

Same maths as ltc.c, which is ncps' LTCCell with implicit_param_constraints=True
(softplus on w, sensory_w, cm, gleak) and fully connected N x N sensory
synapses fed by the Linear projection; K = --unfolds fused semi-implicit
solver steps per time step, dt = 1:
  sa = softplus(sw) * sigmoid(ssigma * (x_i - smu)),  ns = sum_i sa serev, ds = sum_i sa
  cm_t = softplus(cm) * K / dt
  K times: a = softplus(w) * sigmoid(sigma * (v_i - mu))
           v = (cm_t v + gleak vleak + sum_i a erev + ns) / (cm_t + gleak + sum_i a + ds + 1e-8)
Plain autograd, batched over samples: how such a cell is written in PyTorch.

Usage: python3 bench/torch_ltc.py --hidden 32 --steps 100 --inputs 4 --classes 8
           --batch 64 --batches 10 --threads 2 [--unfolds 6]
Prints one JSON line {"train_samples_per_s": ...} (the first batch, a
warm-up, is not timed).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


class LTC(torch.nn.Module):
    def __init__(self, n, unfolds=6, dt=1.0):
        super().__init__()

        def u(shape, lo, hi):
            return torch.nn.Parameter(torch.rand(*shape) * (hi - lo) + lo)

        def sign(shape):  # ncps' FullyConnected wiring: -1 with probability 1/3
            return torch.nn.Parameter(torch.where(torch.rand(*shape) < 1 / 3, -1.0, 1.0))

        self.smu, self.ssigma, self.sw, self.serev = u((n, n), 0.3, 0.8), u((n, n), 3, 8), u((n, n), 0.001, 1), sign((n, n))
        self.mu, self.sigma, self.w, self.erev = u((n, n), 0.3, 0.8), u((n, n), 3, 8), u((n, n), 0.001, 1), sign((n, n))
        self.gleak, self.vleak, self.cm = u((n,), 0.001, 1), u((n,), -0.2, 0.2), u((n,), 0.4, 0.6)
        self.unfolds, self.dt = unfolds, dt

    def forward(self, x, v):  # x, v: [B, N]
        sa = F.softplus(self.sw) * torch.sigmoid(self.ssigma * (x.unsqueeze(-1) - self.smu))
        ns, ds = (sa * self.serev).sum(1), sa.sum(1)
        cm_t = F.softplus(self.cm) * (self.unfolds / self.dt)
        gl = F.softplus(self.gleak)
        w = F.softplus(self.w)
        num0, den0 = gl * self.vleak + ns, cm_t + gl + ds
        for _ in range(self.unfolds):
            a = w * torch.sigmoid(self.sigma * (v.unsqueeze(-1) - self.mu))
            v = (cm_t * v + num0 + (a * self.erev).sum(1)) / (den0 + a.sum(1) + 1e-8)
        return v


class Net(torch.nn.Module):
    def __init__(self, inputs, hidden, classes, unfolds):
        super().__init__()
        self.fc1 = torch.nn.Linear(inputs, hidden)
        self.cell = LTC(hidden, unfolds)
        self.fc2 = torch.nn.Linear(hidden, classes)

    def forward(self, x):  # x: [T, B, inputs]
        v = torch.zeros(x.shape[1], self.fc1.out_features)
        for t in range(x.shape[0]):
            v = self.cell(self.fc1(x[t]), v)
        return self.fc2(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--unfolds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    net = Net(a.inputs, a.hidden, a.classes, a.unfolds)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    x = torch.rand(a.batches + 1, a.steps, a.batch, a.inputs)
    y = torch.randint(0, a.classes, (a.batches + 1, a.batch))
    for k in range(a.batches + 1):
        if k == 1:
            t0 = time.perf_counter()
        loss = F.cross_entropy(net(x[k]), y[k])
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print(json.dumps({"train_samples_per_s": a.batches * a.batch / dt, "loss": loss.item(),
                      "hidden": a.hidden, "steps": a.steps, "unfolds": a.unfolds, "threads": a.threads}))


if __name__ == "__main__":
    main()
