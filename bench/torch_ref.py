#!/usr/bin/env python3
"""torch_ref.py: a PyTorch reference of examples/fmnist-lif.yaml, used by
bench/bench_train.py to compare soma's training and inference throughput and
accuracy with PyTorch on the same cores.

The network (snnTorch tutorial 5 on Fashion-MNIST), written out here without
snnTorch:

    x (784, pixels / 255, fed as current at every step, T = 25)
    -> Linear(784, 1000) -> LIF(beta 0.95, threshold 1, reset by subtraction)
    -> Linear(1000, 10)  -> LIF(beta 0.95, threshold 1, reset by subtraction)

    LIF:   R[t] = H(U[t-1] - 1) (detached)
           U[t] = beta * U[t-1] + I[t] - R[t] * threshold,  U[-1] = 0
           S[t] = H(U[t] - threshold), surrogate dS/dU = 1 / (25 |U - threshold| + 1)^2
    loss:  ce_rate = mean over t of CrossEntropy(S_out[t], y)
    train: Adam(lr 5e-4), batch 128, reshuffled every epoch, nn.Linear's default init
    predict: argmax over classes of sum_t S_out[t] (ties go to the lowest index)

Implementations of the same maths ("--impl"); "auto" (the default) times a
few batches of each on a throw-away copy of the model and trains with the
fastest, so the comparison is against PyTorch's fastest form here:

    step        fc1 once per batch, then a Python loop over t of LIF + fc2 + CE,
                autograd through everything (spike = custom autograd.Function)
    batched     fc1 once; hidden LIF loop; fc2 as ONE matmul over all T steps
                ([T*B, 1000] x [1000, 10]); output LIF loop; one CE over T*B rows
    fused       as batched, but each LIF layer over all T steps is one custom
                autograd.Function with a hand-written BPTT backward (in-place
                ops into preallocated [T, B, N] buffers, no per-step graph)
    fused_jit   fused with its forward and backward loops in TorchScript

Inference (test set) runs under torch.inference_mode() with the fused forward
(no tape, no graph), plain or TorchScript, whichever is faster.

Threads: Debian's torch does its GEMMs in OpenBLAS (pthreads), a pool apart
from torch's OpenMP pool, and torch.set_num_threads does not size it. With
both pools at N threads on N cores they fight (OpenBLAS workers spin while
torch's OpenMP threads run the elementwise ops, and the reverse): on 2 cores
that is ~1.6x slower than 1 torch thread + 2 OpenBLAS threads. "auto" sizes
both pools (each 1 or --threads, through openblas_set_num_threads) and keeps
the fastest plan for training and for inference; an explicit --impl runs with
both pools at --threads.

Data: the IDX .gz files of Fashion-MNIST read with gzip + numpy.

Usage:
    python3 bench/torch_ref.py [--epochs 1] [--max-batches N] [--threads 2]
                               [--seed 42] [--eval-limit N] [--impl auto]
                               [--json OUT]
    python3 bench/torch_ref.py --check   # the implementations agree (grads)
"""
import argparse
import copy
import ctypes
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
BETA = 0.95
THRESHOLD = 1.0
SLOPE = 25.0
STEPS = 25
HIDDEN = 1000
CLASSES = 10
LR = 5e-4
BATCH = 128


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def read_idx(path):
    """An IDX file (.gz or plain) as a numpy array of its dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims)


def load_fashion_mnist(data_dir=DATA_DIR):
    def pair(split):
        x = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % split))
        y = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % split))
        x = torch.from_numpy(x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255.0))
        y = torch.from_numpy(y.astype(np.int64))
        return x, y
    return pair("train"), pair("t10k")


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, HIDDEN)
        self.fc2 = torch.nn.Linear(HIDDEN, CLASSES)


class SpikeFS(torch.autograd.Function):
    """Heaviside spike of x = U - threshold; fast-sigmoid surrogate gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (SLOPE * x.abs() + 1.0) ** 2


spike = SpikeFS.apply


def lif_step(mem, cur):
    """One LIF step with autograd; the reset term is detached (comparison)."""
    reset = (mem > THRESHOLD).to(mem.dtype)
    mem = BETA * mem + cur - reset * THRESHOLD
    return mem, spike(mem - THRESHOLD)


# --- step: the textbook loop ------------------------------------------------
def run_step(model, x, y, T):
    cur1 = model.fc1(x)  # same input at every step: once per batch
    B = x.shape[0]
    mem1 = torch.zeros(B, HIDDEN, dtype=x.dtype)
    mem2 = torch.zeros(B, CLASSES, dtype=x.dtype)
    loss = 0.0
    counts = torch.zeros(B, CLASSES, dtype=x.dtype)
    for _ in range(T):
        mem1, spk1 = lif_step(mem1, cur1)
        mem2, spk2 = lif_step(mem2, model.fc2(spk1))
        loss = loss + F.cross_entropy(spk2, y)
        counts += spk2.detach()
    return loss / T, counts


# --- batched: fc2 and CE over all steps at once -----------------------------
def run_batched(model, x, y, T):
    cur1 = model.fc1(x)
    B = x.shape[0]
    mem1 = torch.zeros(B, HIDDEN, dtype=x.dtype)
    spk1 = []
    for _ in range(T):
        mem1, s = lif_step(mem1, cur1)
        spk1.append(s)
    cur2 = model.fc2(torch.stack(spk1))  # [T, B, 10]
    mem2 = torch.zeros(B, CLASSES, dtype=x.dtype)
    spk2 = []
    for t in range(T):
        mem2, s = lif_step(mem2, cur2[t])
        spk2.append(s)
    spk2 = torch.stack(spk2)
    loss = F.cross_entropy(spk2.reshape(T * B, CLASSES), y.repeat(T))
    return loss, spk2.detach().sum(0)


# --- fused: one autograd.Function per LIF layer over all steps --------------
def lif_seq_forward(cur, mem, spk, beta: float, th: float, const_in: bool):
    """U[t] = beta U[t-1] + I[t] - th S[t-1]; S[t] = U[t] > th, into the
    preallocated mem/spk [T, B, N]. cur is [B, N] when const_in, else [T, B, N]."""
    T = mem.shape[0]
    for t in range(T):
        c = cur if const_in else cur[t]
        m = mem[t]
        if t == 0:
            m.copy_(c)
        else:
            torch.add(c, mem[t - 1], alpha=beta, out=m)
            m.sub_(spk[t - 1], alpha=th)
        torch.gt(m, th, out=spk[t])


def lif_seq_backward(mem, gspk, beta: float, th: float, slope: float, const_in: bool):
    """BPTT of lif_seq_forward with the reset detached: with
    g[t] = gspk[t] * 1/(slope |U[t] - th| + 1)^2, dI[t] = g[t] + beta dI[t+1].
    Overwrites mem; returns dI ([B, N] summed over t when const_in)."""
    sg = mem.sub_(th).abs_().mul_(slope).add_(1.0)
    sg.square_()
    d = torch.div(gspk, sg, out=sg)
    T = d.shape[0]
    for t in range(T - 2, -1, -1):
        d[t].add_(d[t + 1], alpha=beta)
    if const_in:
        return d.sum(0)
    return d


_JIT = {}
_BUF = {}


def buffers(key, T, B, N, dtype):
    """Preallocated [T, B, N] (mem, spk) pair for one layer, reused by every
    batch (the graph of the previous batch is gone when the next one runs)."""
    k = (key, T, B, N, dtype)
    if k not in _BUF:
        _BUF[k] = (torch.empty(T, B, N, dtype=dtype), torch.empty(T, B, N, dtype=dtype))
    return _BUF[k]


def jit_fns():
    if not _JIT:
        _JIT["fwd"] = torch.jit.script(lif_seq_forward)
        _JIT["bwd"] = torch.jit.script(lif_seq_backward)
    return _JIT["fwd"], _JIT["bwd"]


class LIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cur, T, const_in, use_jit, key):
        fwd = jit_fns()[0] if use_jit else lif_seq_forward
        B, N = cur.shape[-2], cur.shape[-1]
        mem, spk = buffers(key, T, B, N, cur.dtype)
        fwd(cur, mem, spk, BETA, THRESHOLD, const_in)
        ctx.save_for_backward(mem)
        ctx.const_in, ctx.use_jit = const_in, use_jit
        return spk

    @staticmethod
    def backward(ctx, gspk):
        (mem,) = ctx.saved_tensors
        bwd = jit_fns()[1] if ctx.use_jit else lif_seq_backward
        gspk = gspk.contiguous()
        return bwd(mem, gspk, BETA, THRESHOLD, SLOPE, ctx.const_in), None, None, None, None


def run_fused(model, x, y, T, use_jit=False):
    B = x.shape[0]
    cur1 = model.fc1(x)
    spk1 = LIFSeq.apply(cur1, T, True, use_jit, "train1")  # [T, B, 1000]
    cur2 = model.fc2(spk1)  # [T, B, 10]: one GEMM over all steps
    spk2 = LIFSeq.apply(cur2, T, False, use_jit, "train2")
    loss = F.cross_entropy(spk2.reshape(T * B, CLASSES), y.repeat(T))
    return loss, spk2.detach().sum(0)


def run_fused_jit(model, x, y, T):
    return run_fused(model, x, y, T, use_jit=True)


IMPLS = {"step": run_step, "batched": run_batched, "fused": run_fused, "fused_jit": run_fused_jit}


@torch.inference_mode()
def predict(model, x, T, use_jit=False):
    """Class with the most output spikes over T (argmax: ties -> lowest index)."""
    fwd = jit_fns()[0] if use_jit else lif_seq_forward
    B = x.shape[0]
    cur1 = model.fc1(x)
    mem, spk1 = buffers("infer1", T, B, HIDDEN, cur1.dtype)
    fwd(cur1, mem, spk1, BETA, THRESHOLD, True)
    cur2 = model.fc2(spk1)
    mem2, spk2 = buffers("infer2", T, B, CLASSES, cur2.dtype)
    fwd(cur2, mem2, spk2, BETA, THRESHOLD, False)
    return spk2.sum(0).argmax(1)


def evaluate(model, x, y, T, batch, use_jit=False):
    """(accuracy, samples/s) of forward-only inference over x."""
    n = x.shape[0]
    correct = 0
    t0 = time.perf_counter()
    for b0 in range(0, n, batch):
        pred = predict(model, x[b0:b0 + batch], T, use_jit)
        correct += int((pred == y[b0:b0 + batch]).sum())
    dt = time.perf_counter() - t0
    return correct / n, n / dt if dt > 0 else 0.0


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------
def train_batch(model, opt, fn, xb, yb, T):
    opt.zero_grad(set_to_none=True)
    loss, counts = fn(model, xb, yb, T)
    loss.backward()
    opt.step()
    return loss.detach(), (counts.argmax(1) == yb).sum()


def make_opt(model):
    return torch.optim.Adam(model.parameters(), lr=LR)


_BLAS = []


def blas_lib():
    """OpenBLAS as loaded by torch (Debian's torch does its GEMMs through
    libblas.so.3 = OpenBLAS-pthreads, whose thread pool torch.set_num_threads
    does not size), or None."""
    if not _BLAS:
        lib = None
        for name in ("libopenblas.so.0", "libblas.so.3"):
            try:
                cand = ctypes.CDLL(name)
                cand.openblas_set_num_threads
                lib = cand
                break
            except (OSError, AttributeError):
                continue
        _BLAS.append(lib)
    return _BLAS[0]


def set_threads(torch_threads, blas_threads):
    """Size torch's intra-op (OpenMP) pool and OpenBLAS's pool; returns the
    (torch, blas) counts in force (blas None when OpenBLAS is not found)."""
    torch.set_num_threads(torch_threads)
    lib = blas_lib()
    if lib is None:
        return torch.get_num_threads(), None
    lib.openblas_set_num_threads(ctypes.c_int(blas_threads))
    return torch.get_num_threads(), int(lib.openblas_get_num_threads())


def thread_plans(n):
    """(torch threads, OpenBLAS threads) pairs using at most n threads per pool.
    Both pools at n can oversubscribe the cores: torch's OpenMP workers spin
    while an OpenBLAS call runs its own threads."""
    counts = sorted({1, n})
    return [(t, b) for t in counts for b in counts]


def autotune(model, xtr, ytr, xte, T, batch, threads, impls, block=4, rounds=4, log=print):
    """Pick PyTorch's fastest form here on throw-away copies of the model:
    1. the thread plan for training (with impl 'fused'),
    2. the implementation for training (at that plan),
    3. the thread plan and jit/no-jit for inference.
    Candidates take turns in blocks of `block` consecutive batches, one
    warm-up round and then `rounds` timed ones; a candidate's score is its
    best block mean (a short burst of other work on the machine spoils one
    block, while stalls a plan causes itself show in every block)."""
    g = torch.Generator().manual_seed(12345)
    perm = torch.randperm(xtr.shape[0], generator=g)
    plans = thread_plans(threads)

    def race(cands, setup, run):
        ts = {c: [] for c in cands}
        k = 0
        for r in range(rounds + 1):
            for c in cands:
                setup(c)
                t0 = time.perf_counter()
                for _ in range(block):
                    run(c, k)
                    k += 1
                if r > 0:
                    ts[c].append((time.perf_counter() - t0) / block)
        return {c: min(v) for c, v in ts.items()}

    def trainer(impl_of, plan_of, cands):
        state = {}
        for c in cands:
            m = copy.deepcopy(model)
            state[c] = (m, make_opt(m))
        nb = xtr.shape[0] // batch

        def setup(c):
            set_threads(*plan_of(c))

        def run(c, k):
            k %= nb
            idx = perm[k * batch:(k + 1) * batch]
            m, o = state[c]
            train_batch(m, o, IMPLS[impl_of(c)], xtr[idx], ytr[idx], T)
        return setup, run

    ref_impl = "fused" if "fused" in impls else impls[0]
    t_plan = race(plans, *trainer(lambda c: ref_impl, lambda c: c, plans))
    train_plan = min(t_plan, key=t_plan.get)
    for c in plans:
        log("torch: train %-9s torch %d / OpenBLAS %d thread(s): %.1f ms/batch"
            % (ref_impl, c[0], c[1], 1e3 * t_plan[c]))
    t_impl = race(impls, *trainer(lambda c: c, lambda c: train_plan, impls))
    impl = min(t_impl, key=t_impl.get)
    for c in impls:
        log("torch: train %-9s torch %d / OpenBLAS %d thread(s): %.1f ms/batch"
            % (c, train_plan[0], train_plan[1], 1e3 * t_impl[c]))

    m = copy.deepcopy(model)
    icands = [(p, j) for p in plans for j in (False, True)]

    def run_infer(c, k):
        k %= max(1, xte.shape[0] // batch)
        predict(m, xte[k * batch:(k + 1) * batch], T, c[1])
    t_inf = race(icands, lambda c: set_threads(*c[0]), run_infer)
    infer = min(t_inf, key=t_inf.get)
    for c in icands:
        log("torch: infer %-9s torch %d / OpenBLAS %d thread(s): %.2f ms/batch"
            % ("fused_jit" if c[1] else "fused", c[0][0], c[0][1], 1e3 * t_inf[c]))
    return {
        "impl": impl,
        "train_threads": {"torch": train_plan[0], "openblas": train_plan[1]},
        "infer_threads": {"torch": infer[0][0], "openblas": infer[0][1]},
        "infer_jit": infer[1],
        "train_ms_per_batch_by_threads": {"torch %d / openblas %d" % c: 1e3 * v for c, v in t_plan.items()},
        "train_ms_per_batch_by_impl": {c: 1e3 * v for c, v in t_impl.items()},
        "infer_ms_per_batch": {"%s, torch %d / openblas %d" % ("jit" if c[1] else "plain", c[0][0], c[0][1]):
                               1e3 * v for c, v in t_inf.items()},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-batches", type=int, default=0, help="batches per epoch (0: all)")
    ap.add_argument("--threads", type=int, default=2, help="at most this many threads per pool")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval-limit", type=int, default=0, help="test samples to evaluate (0: all)")
    ap.add_argument("--eval-batch", type=int, default=BATCH)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--impl", default="auto", choices=["auto"] + list(IMPLS),
                    help="auto (default): tune threads and implementation, then use the fastest")
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--check", action="store_true", help="check that the implementations agree, then exit")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)

    def log(*args):
        if not a.quiet:
            print(*args, flush=True)

    set_threads(a.threads, a.threads)
    torch.manual_seed(a.seed)
    t_load = time.perf_counter()
    (xtr, ytr), (xte, yte) = load_fashion_mnist(a.data)
    t_load = time.perf_counter() - t_load
    if a.eval_limit > 0:
        xte, yte = xte[:a.eval_limit], yte[:a.eval_limit]
    T, B = a.steps, a.batch
    model = Net()

    if a.check:
        return check(model, xtr, ytr, T)

    log("torch %s: %d training and %d test samples, T = %d, batch %d, up to %d thread(s)%s"
        % (torch.__version__, xtr.shape[0], xte.shape[0], T, B, a.threads,
           "" if blas_lib() else " (OpenBLAS not found: GEMM threads not controlled)"))
    if a.impl == "auto":
        t0 = time.perf_counter()
        tune = autotune(model, xtr, ytr, xte, T, B, a.threads, list(IMPLS), log=log)
        tune["seconds"] = time.perf_counter() - t0
    else:
        tune = {"impl": a.impl, "train_threads": {"torch": a.threads, "openblas": a.threads},
                "infer_threads": {"torch": a.threads, "openblas": a.threads}, "infer_jit": a.impl == "fused_jit"}
    impl = tune["impl"]
    tt, it = tune["train_threads"], tune["infer_threads"]
    log("torch: training with '%s', torch %d / OpenBLAS %d thread(s); inference %s, torch %d / OpenBLAS %d"
        % (impl, tt["torch"], tt["openblas"], "jit" if tune["infer_jit"] else "plain", it["torch"], it["openblas"]))
    fn = IMPLS[impl]

    opt = make_opt(model)
    gen = torch.Generator().manual_seed(a.seed)
    n = xtr.shape[0]
    nb = (n + B - 1) // B
    if a.max_batches > 0:
        nb = min(nb, a.max_batches)
    per_epoch = []
    train_seconds, train_samples = 0.0, 0
    for e in range(a.epochs):
        set_threads(tt["torch"], tt["openblas"])
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        seen = 0
        for b in range(nb):
            idx = perm[b * B:(b + 1) * B]
            xb, yb = xtr[idx], ytr[idx]
            l, c = train_batch(model, opt, fn, xb, yb, T)
            loss_sum += l * xb.shape[0]
            correct += c
            seen += xb.shape[0]
        dt = time.perf_counter() - t0
        train_seconds += dt
        train_samples += seen
        model.eval()
        set_threads(it["torch"], it["openblas"])
        acc, infer_sps = evaluate(model, xte, yte, T, a.eval_batch, tune["infer_jit"])
        rec = {"epoch": e + 1, "loss": float(loss_sum) / seen, "train_accuracy": int(correct) / seen,
               "test_accuracy": acc, "train_samples_per_second": seen / dt, "train_seconds": dt,
               "batches": nb, "infer_samples_per_second": infer_sps}
        per_epoch.append(rec)
        log("torch epoch %d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  %.0f samples/s  %.1fs  "
            "(inference %.0f samples/s)" % (e + 1, a.epochs, rec["loss"], 100 * rec["train_accuracy"],
                                           100 * acc, rec["train_samples_per_second"], dt, infer_sps))
    res = {
        "framework": "torch",
        "torch_version": torch.__version__,
        "impl": impl,
        "tuning": tune,
        "threads": a.threads,
        "epochs": a.epochs,
        "batches_per_epoch": nb,
        "batch": B,
        "steps": T,
        "seed": a.seed,
        "test_samples": int(xte.shape[0]),
        "load_seconds": t_load,
        "train_samples_per_second": train_samples / train_seconds if train_seconds > 0 else 0.0,
        "infer_samples_per_second": per_epoch[-1]["infer_samples_per_second"] if per_epoch else 0.0,
        "test_accuracy": per_epoch[-1]["test_accuracy"] if per_epoch else 0.0,
        "test_accuracy_per_epoch": [r["test_accuracy"] for r in per_epoch],
        "per_epoch": per_epoch,
    }
    if a.json:
        d = os.path.dirname(a.json)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


def check(model, xtr, ytr, T):
    """The implementations give the same loss, spike counts and gradients (float64)."""
    m = copy.deepcopy(model).double()
    x, y = xtr[:64].double(), ytr[:64]
    ref = None
    ok = True
    for name, fn in IMPLS.items():
        m.zero_grad(set_to_none=True)
        loss, counts = fn(m, x, y, T)
        loss.backward()
        got = [float(loss), counts.clone()] + [p.grad.clone() for p in m.parameters()]
        if ref is None:
            ref = got
            print("check: %-9s loss %.10f, %d output spikes" % (name, float(loss), int(counts.sum())))
            continue
        dl = abs(got[0] - ref[0])
        dc = float((got[1] - ref[1]).abs().max())
        dg = max(float((g - r).abs().max() / (r.abs().max() + 1e-30)) for g, r in zip(got[2:], ref[2:]))
        good = dl < 1e-9 and dc == 0 and dg < 1e-9
        ok &= good
        print("check: %-9s |dloss| %.2e  |dcounts| %g  max rel |dgrad| %.2e  %s"
              % (name, dl, dc, dg, "ok" if good else "MISMATCH"))
    with torch.no_grad():
        mf = copy.deepcopy(model)
        _, counts = run_step(mf, xtr[:256], ytr[:256], T)
        agree = bool((predict(mf, xtr[:256], T) == counts.argmax(1)).all())
    print("check: inference predict() agrees with the training forward: %s" % agree)
    ok &= agree
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
