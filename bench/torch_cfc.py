#!/usr/bin/env python3
"""torch_cfc.py: a PyTorch implementation of soma's `cfc` cell (src/models/cfc.c)
for training-throughput comparisons.

Network, as a soma experiment would build it:

    x [T, B, inputs] -> Linear(inputs, hidden)        (soma's incoming projection)
    -> CfC(hidden): z   = lecun_tanh(in_t + U h + b_u),  lecun_tanh(x) = 1.7159 tanh(0.666 x)
                    ff1 = tanh(W1 z + b1), ff2 = tanh(W2 z + b2)
                    g   = sigmoid((Wa z + ba) dt + Wb z + bb)
                    default: h = ff1 (1 - g) + g ff2;  no_gate: h = ff1 + g ff2
                    minimal: h = A - A exp(-dt (|w_tau| + |f|)) f,  f = W1 z + b1
    -> Linear(hidden, classes) on the last step's h, cross-entropy (soma's
       ce_last with a linear ann readout), Adam.

With --mixed-memory (soma's `mixed_memory: yes`, ncps' CfC(mixed_memory=True))
an LSTM cell as ncps' LSTMCell runs first on the projected input in_t:
    g, i, f, o = chunk4(Linear(hidden, 4 hidden)(in_t) + Linear(hidden, 4 hidden, bias=False)(h))
    c = sigmoid(f + 1) c + sigmoid(i) tanh(g),  h_lstm = sigmoid(o) tanh(c)
and the CfC step above reads h_lstm in place of h (ncps' init: xavier,
orthogonal, biases U(+-0.1)).

Every Linear uses torch's default init (U(+-1/sqrt(fan_in))), as soma does.
The data are random (inputs uniform in [-1, 1), random labels): only the
speed is measured. One warm-up batch is not timed.

Usage:
  python3 bench/torch_cfc.py --hidden 64 --steps 200 --inputs 4 --classes 8 \
      --batch 64 --batches 20 --threads 2 [--mode default|no_gate|minimal] [--dt 1] [--mixed-memory]
Prints one JSON line: {"train_samples_per_s": ..., ...}.
"""
import argparse
import json
import time

import torch


class LSTMCell(torch.nn.Module):
    """ncps' LSTMCell (gate order g, i, f, o; one bias; forget gate + 1)."""

    def __init__(self, hidden):
        super().__init__()
        self.input_map = torch.nn.Linear(hidden, 4 * hidden)
        self.recurrent_map = torch.nn.Linear(hidden, 4 * hidden, bias=False)
        torch.nn.init.xavier_uniform_(self.input_map.weight)
        torch.nn.init.uniform_(self.input_map.bias, -0.1, 0.1)
        torch.nn.init.orthogonal_(self.recurrent_map.weight)

    def forward(self, x, h, c):
        g, i, f, o = (self.input_map(x) + self.recurrent_map(h)).chunk(4, dim=1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class CfC(torch.nn.Module):
    def __init__(self, inputs, hidden, classes, mode="default", dt=1.0, mixed_memory=False):
        super().__init__()
        self.proj = torch.nn.Linear(inputs, hidden)
        self.U = torch.nn.Linear(hidden, hidden)  # its bias is b_u
        heads = 1 if mode == "minimal" else 4
        # W1, W2, Wa, Wb stacked: one product for all heads (soma fuses them too)
        self.heads = torch.nn.Linear(hidden, heads * hidden)
        bound = 1.0 / hidden ** 0.5  # each head is a Linear(hidden, hidden)
        torch.nn.init.uniform_(self.heads.weight, -bound, bound)
        torch.nn.init.uniform_(self.heads.bias, -bound, bound)
        if mode == "minimal":
            self.A = torch.nn.Parameter(torch.ones(hidden))
            self.w_tau = torch.nn.Parameter(torch.zeros(hidden))
        self.lstm = LSTMCell(hidden) if mixed_memory else None
        self.readout = torch.nn.Linear(hidden, classes)
        self.mode, self.dt, self.hidden = mode, dt, hidden

    def forward(self, x):  # x: [T, B, inputs]
        T, B, _ = x.shape
        inp = self.proj(x)  # all steps at once, as soma's batch-wide input projection
        h = x.new_zeros(B, self.hidden)
        c = x.new_zeros(B, self.hidden)
        for t in range(T):
            if self.lstm is not None:
                h, c = self.lstm(inp[t], h, c)
            z = 1.7159 * torch.tanh(0.666 * (inp[t] + self.U(h)))
            q = self.heads(z)
            if self.mode == "minimal":
                h = self.A - self.A * torch.exp(-self.dt * (self.w_tau.abs() + q.abs())) * q
                continue
            p1, p2, ta, tb = q.chunk(4, dim=1)
            ff1, ff2 = torch.tanh(p1), torch.tanh(p2)
            g = torch.sigmoid(ta * self.dt + tb)
            h = ff1 + g * ff2 if self.mode == "no_gate" else ff1 * (1 - g) + g * ff2
        return self.readout(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=["default", "no_gate", "minimal"], default="default")
    ap.add_argument("--dt", type=float, default=1.0)
    ap.add_argument("--mixed-memory", action="store_true", help="ncps' mixed memory: an LSTM cell feeds the CfC")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    net = CfC(a.inputs, a.hidden, a.classes, a.mode, a.dt, a.mixed_memory)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n = a.batches + 1
    xs = torch.rand(n, a.steps, a.batch, a.inputs) * 2 - 1
    ys = torch.randint(0, a.classes, (n, a.batch))
    loss = None
    for k in range(n):
        if k == 1:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(xs[k]), ys[k])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sec = time.perf_counter() - t0
    print(json.dumps({"train_samples_per_s": a.batches * a.batch / sec, "seconds": sec, "batches": a.batches,
                      "batch": a.batch, "steps": a.steps, "hidden": a.hidden, "mode": a.mode,
                      "mixed_memory": a.mixed_memory,
                      "threads": a.threads, "last_loss": float(loss), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
