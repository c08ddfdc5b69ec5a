#!/usr/bin/env python3
"""bench_train.py: soma against PyTorch on examples/fmnist-lif.yaml, on the
same cores, in one invocation.

Modes:
  (default) throughput: both train for --max-batches batches (150) of one
            epoch, then run inference over the whole test set; reports
            training samples/s (training loop only), inference samples/s
            (forward only, full test set) and the test accuracy reached.
  --accuracy: both train --epochs-long full epochs (5); reports the test
            accuracy after epoch 1 and after the last epoch, and the
            throughput of those full epochs. Prints an estimate of the
            remaining time once the first epoch of each is done.

PyTorch side: bench/torch_ref.py (see its header), run by a Python that can
import torch (this one, else /usr/bin/python3: Debian's python3-torch).
soma side: `SOMA train CONFIG --max-batches N --threads T --seed S --out DIR`,
then DIR/metrics.json.

Results: a markdown table with the ratios soma/torch on stdout, and
bench/results/train.json (each mode updates its own section, so the numbers
of both modes can be kept side by side). The environment is left as it is for
both (OPENBLAS_CORETYPE and friends are recorded in the JSON, not changed);
the machine's load average before and after is recorded too, since other
work on the same cores skews throughput.

Usage:
  python3 bench/bench_train.py [--soma build/soma] [--threads 2]
                               [--max-batches 150] [--repeat 3] [--accuracy]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def find_torch_python(explicit=None):
    cands = [explicit] if explicit else [sys.executable, "/usr/bin/python3", shutil.which("python3")]
    for py in cands:
        if not py or not os.path.exists(py):
            continue
        r = subprocess.run([py, "-c", "import torch, numpy; print(torch.__version__)"], capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip()
    return None, None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_streaming(cmd, on_line=None, env=None):
    """Run cmd, echo its stdout lines (indented) as they come; return (rc, text, seconds)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    out = []
    for line in p.stdout:
        out.append(line)
        sys.stdout.write("    " + line)
        sys.stdout.flush()
        if on_line:
            on_line(line)
    rc = p.wait()
    return rc, "".join(out), time.perf_counter() - t0


def eta_printer(name, epochs):
    """Print an estimate of the remaining time after the first epoch line."""
    state = {"done": False}

    def on_line(line):
        if state["done"]:
            return
        m = re.search(r"epoch 1/(\d+).*?([\d.]+)s\b", line)
        if m and int(m.group(1)) == epochs and epochs > 1:
            sec = float(m.group(2))
            state["done"] = True
            print("    [%s: one epoch took %.0f s; about %.1f min left for the remaining %d epoch(s), "
                  "plus evaluation]" % (name, sec, sec * (epochs - 1) / 60.0, epochs - 1), flush=True)
    return on_line


SOMA_EVAL_BATCH = 512  # soma_train_evaluate's batch for direct input (examples/fmnist-lif.yaml)


def run_torch(py, a, epochs, max_batches, impl, json_out):
    cmd = [py, os.path.join(HERE, "torch_ref.py"), "--epochs", str(epochs), "--threads", str(a.threads),
           "--seed", str(a.seed), "--json", json_out, "--impl", impl]
    if max_batches:
        cmd += ["--max-batches", str(max_batches)]
    if a.eval_limit:
        cmd += ["--eval-limit", str(a.eval_limit)]
    # Inference in the batches soma evaluates in (soma_train_evaluate: 512
    # for a time-constant input, else the training batch), so that both
    # sides do the same work.
    cmd += ["--eval-batch", str(SOMA_EVAL_BATCH)]
    print("$ " + " ".join(cmd), flush=True)
    rc, out, sec = run_streaming(cmd, eta_printer("torch", epochs))
    if rc != 0:
        raise SystemExit("torch_ref.py failed (exit %d)" % rc)
    with open(json_out) as f:
        res = json.load(f)
    res["wall_seconds"] = sec
    return res


def run_soma(a, epochs, max_batches, outdir):
    cmd = [a.soma, "train", a.config, "--epochs", str(epochs), "--threads", str(a.threads), "--seed", str(a.seed),
           "--out", outdir]
    if max_batches:
        cmd += ["--max-batches", str(max_batches)]
    print("$ " + " ".join(cmd), flush=True)
    rc, out, sec = run_streaming(cmd, eta_printer("soma", epochs))
    if rc != 0:
        raise SystemExit("soma train failed (exit %d)" % rc)
    with open(os.path.join(outdir, "metrics.json")) as f:
        m = json.load(f)
    m["wall_seconds"] = sec
    mt = re.search(r"(\d+) training and (\d+) test samples", out)
    if mt:
        m["test_samples"] = int(mt.group(2))
    return m


def repo_state():
    """The checkout's commit and whether src/ cli/ include/ have local changes
    (the soma binary measured need not be built from it: see soma_binary)."""
    def git(*args):
        r = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "src", "cli", "include", "CMakeLists.txt")
    return {"commit": commit, "sources_modified": bool(dirty) if dirty is not None else None}


def ratio(s, t):
    return s / t if t else float("nan")


def fmt_sps(v):
    return "%.0f" % v


def fmt_acc(v):
    return "%.2f %%" % (100.0 * v)


def table(rows, torch_label):
    """rows: (label, torch, soma, fmt, show_ratio)"""
    lines = ["| | %s | soma | soma / torch |" % torch_label, "|---|---:|---:|---:|"]
    for label, tv, sv, fmt, show_ratio in rows:
        r = "%.2fx" % ratio(sv, tv) if show_ratio else "%+.2f pt" % (100.0 * (sv - tv))
        lines.append("| %s | %s | %s | %s |" % (label, fmt(tv), fmt(sv), r))
    return "\n".join(lines)


def median_of(runs, key):
    v = sorted(r[key] for r in runs)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def throughput_mode(a, py, tmp):
    torch_runs, soma_runs = [], []
    impl = a.impl
    for i in range(a.repeat):
        if a.repeat > 1:
            print("\n== repeat %d/%d" % (i + 1, a.repeat), flush=True)
        # Alternate the order so that a drifting machine load hits both alike.
        order = ["soma", "torch"] if i % 2 == 0 else ["torch", "soma"]
        for who in order:
            if who == "torch":
                torch_runs.append(run_torch(py, a, 1, a.max_batches, impl, os.path.join(tmp, "torch_%d.json" % i)))
            else:
                soma_runs.append(run_soma(a, 1, a.max_batches, os.path.join(tmp, "soma_%d" % i)))
    t = {
        "impl": torch_runs[0]["impl"],
        "tuning": torch_runs[0]["tuning"],
        "torch_version": torch_runs[0]["torch_version"],
        "train_samples_per_second": median_of(torch_runs, "train_samples_per_second"),
        "infer_samples_per_second": median_of(torch_runs, "infer_samples_per_second"),
        "test_accuracy": torch_runs[0]["test_accuracy"],
        "test_samples": torch_runs[0]["test_samples"],
        "runs": [{k: r[k] for k in ("impl", "train_samples_per_second", "infer_samples_per_second",
                                    "test_accuracy", "wall_seconds")} for r in torch_runs],
    }
    s = {
        "train_samples_per_second": median_of(soma_runs, "train_samples_per_second"),
        "infer_samples_per_second": median_of(soma_runs, "infer_samples_per_second"),
        "test_accuracy": soma_runs[0]["test_accuracy"],
        "test_samples": soma_runs[0].get("test_samples"),
        "peak_rss_bytes": soma_runs[0].get("peak_rss_bytes"),
        "runs": [{k: r.get(k) for k in ("train_samples_per_second", "infer_samples_per_second", "test_accuracy",
                                        "wall_seconds")} for r in soma_runs],
    }
    rows = [
        ("training samples/s", t["train_samples_per_second"], s["train_samples_per_second"], fmt_sps, True),
        ("inference samples/s (test set)", t["infer_samples_per_second"], s["infer_samples_per_second"], fmt_sps,
         True),
        ("test accuracy after %d batches" % a.max_batches, t["test_accuracy"], s["test_accuracy"], fmt_acc, False),
    ]
    res = {
        "max_batches": a.max_batches,
        "batch": 128,
        "repeat": a.repeat,
        "aggregate": "median of repeats" if a.repeat > 1 else "single run",
        "torch": t,
        "soma": s,
        "ratio": {
            "train_samples_per_second": ratio(s["train_samples_per_second"], t["train_samples_per_second"]),
            "infer_samples_per_second": ratio(s["infer_samples_per_second"], t["infer_samples_per_second"]),
        },
    }
    return res, rows


def accuracy_mode(a, py, tmp):
    E = a.epochs_long
    s = run_soma(a, E, 0, os.path.join(tmp, "soma_acc"))
    t = run_torch(py, a, E, 0, a.impl, os.path.join(tmp, "torch_acc.json"))
    tacc, sacc = t["test_accuracy_per_epoch"], s["test_accuracy_per_epoch"]
    rows = [
        ("training samples/s (%d full epochs)" % E, t["train_samples_per_second"], s["train_samples_per_second"],
         fmt_sps, True),
        ("inference samples/s (test set)", t["infer_samples_per_second"], s["infer_samples_per_second"], fmt_sps,
         True),
        ("test accuracy after epoch 1", tacc[0], sacc[0], fmt_acc, False),
        ("test accuracy after epoch %d" % E, tacc[-1], sacc[-1], fmt_acc, False),
    ]
    res = {
        "epochs": E,
        "batch": 128,
        "torch": {
            "impl": t["impl"],
            "tuning": t["tuning"],
            "torch_version": t["torch_version"],
            "train_samples_per_second": t["train_samples_per_second"],
            "infer_samples_per_second": t["infer_samples_per_second"],
            "test_accuracy_per_epoch": tacc,
            "loss_per_epoch": [r["loss"] for r in t["per_epoch"]],
            "wall_seconds": t["wall_seconds"],
        },
        "soma": {
            "train_samples_per_second": s["train_samples_per_second"],
            "infer_samples_per_second": s["infer_samples_per_second"],
            "test_accuracy_per_epoch": sacc,
            "loss_per_epoch": s.get("loss"),
            "wall_seconds": s["wall_seconds"],
        },
        "ratio": {
            "train_samples_per_second": ratio(s["train_samples_per_second"], t["train_samples_per_second"]),
            "infer_samples_per_second": ratio(s["infer_samples_per_second"], t["infer_samples_per_second"]),
        },
    }
    return res, rows


CELL_YAML = """network:
  populations:
    in:     {model: input, size: 9}
    hidden: {model: %(model)s, size: %(hidden)d%(extra)s}
    out:    {model: ann, size: 8, activation: linear}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data: {dataset: recall, encoding: sequence, steps: %(steps)d, readout: %(readout)s, limit_train: 4096, limit_test: 512}
train: {epochs: 1, batch: 64, loss: %(loss)s, optimizer: {name: adam, lr: 1e-3}}
"""

# Per-model comparisons: (key, label, torch script and its arguments, soma
# experiment: an example file or a CELL_YAML fill-in, torch batches, soma batches).
# Both sides leave their first (warm-up) batch untimed: the torch scripts
# run one batch before the timed ones, soma reports
# train_samples_per_second_after_first. Each side runs --repeat times and
# its median is taken. The cells run fewer PyTorch batches than soma's
# (its plain autograd loop takes seconds a batch); the throughput of the
# batches after the first is steady, so the counts do not bias the rates.
# Cells run on the generated "recall" data (9 inputs, 8 classes); the torch
# scripts draw random data of the same shape: only speed is compared.
MODELS = [
    ("ultraplif_t1_h64", "UltraPLIF, T = 1, hidden 64, Fashion-MNIST", "torch_ultralif.py", [], "fmnist-ultralif-t1.yaml",
     None, 300, 300),
    ("conv_fmnist_t6", "conv SNN 32c3-mp2-64c3-mp2-10, T = 6, Fashion-MNIST", "torch_conv.py", [], "fmnist-conv.yaml",
     None, 40, 40),
    ("cfc_h64_t200", "CfC, 64 units, T = 200", "torch_cfc.py", ["--hidden", "64", "--steps", "200", "--inputs", "9",
                                                                  "--classes", "8", "--batch", "64"], None,
     {"model": "cfc", "hidden": 64, "steps": 200, "extra": "", "loss": "ce_last", "readout": "last"}, 5, 40),
    ("ltc_h32_t100", "LTC, 32 units, 6 unfolds, T = 100", "torch_ltc.py", ["--hidden", "32", "--steps", "100",
                                                                            "--inputs", "9", "--classes", "8",
                                                                            "--batch", "64"], None,
     {"model": "ltc", "hidden": 32, "steps": 100, "extra": "", "loss": "ce_last", "readout": "last"}, 3, 30),
    ("elm_h64_t200", "ELM v1, 64 memory units, T = 200", "torch_elm.py", ["--hidden", "64", "--steps", "200",
                                                                          "--inputs", "9", "--classes", "8",
                                                                          "--batch", "64"], None,
     {"model": "elm", "hidden": 64, "steps": 200, "extra": "", "loss": "ce_last", "readout": "last"}, 20, 60),
    ("l2mu_h64_d16_t40", "L2MU, 64 neurons, order 16, T = 40", "torch_l2mu.py", ["--hidden", "64", "--order", "16",
                                                                                "--steps", "40", "--inputs", "9",
                                                                                "--classes", "8", "--batch", "64"],
     None, {"model": "l2mu", "hidden": 64, "steps": 40, "extra": ", order: 16, theta: 40", "loss": "ce_mem",
            "readout": "membrane"}, 30, 60),
]


def models_mode(a, py, tmp):
    """Per-model training throughput against a PyTorch implementation of the
    same model, both on the same cores in this invocation (PyTorch at its
    best of 1 and a.threads threads)."""
    res, rows = {"models": {}}, []
    only = set(a.only.split(",")) if a.only else None
    for key, label, script, targs, example, cell, tb, sb in MODELS:
        if only and key not in only:
            continue
        best = None
        for th in sorted({1, a.threads}):
            out = os.path.join(tmp, "torch_%s_%d.json" % (key, th))
            cmd = [py, os.path.join(HERE, script)] + targs + ["--batches", str(tb), "--threads", str(th)]
            if script in ("torch_ultralif.py", "torch_conv.py"):
                cmd += ["--json", out]
            reps = []
            for _ in range(a.repeat):
                print("$ " + " ".join(cmd), flush=True)
                rc, text, _ = run_streaming(cmd)
                if rc != 0:
                    raise SystemExit("%s failed (exit %d)" % (script, rc))
                line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
                r = json.loads(line)
                r["train_samples_per_second"] = r.get("train_samples_per_second", r.get("train_samples_per_s"))
                reps.append(r)
            reps.sort(key=lambda r: r["train_samples_per_second"])
            r = reps[len(reps) // 2]
            r["runs"] = [x["train_samples_per_second"] for x in reps]
            r["threads"] = th
            if best is None or r["train_samples_per_second"] > best["train_samples_per_second"]:
                best = r
        if example:
            cfg = os.path.join(ROOT, "examples", example)
        else:
            cfg = os.path.join(tmp, key + ".yaml")
            with open(cfg, "w") as f:
                f.write(CELL_YAML % cell)
        saved = a.config
        a.config = cfg
        try:
            ms = [run_soma(a, 1, sb, os.path.join(tmp, "soma_%s_%d" % (key, k))) for k in range(a.repeat)]
        finally:
            a.config = saved
        for x in ms:
            x["train_samples_per_second"] = x.get("train_samples_per_second_after_first") or x["train_samples_per_second"]
        ms.sort(key=lambda x: x["train_samples_per_second"])
        m = ms[len(ms) // 2]
        entry = {"label": label, "torch": best,
                 "soma": {"train_samples_per_second": m["train_samples_per_second"],
                          "runs": [x["train_samples_per_second"] for x in ms],
                          "infer_samples_per_second": m.get("infer_samples_per_second")},
                 "ratio": {"train_samples_per_second": ratio(m["train_samples_per_second"],
                                                             best["train_samples_per_second"])}}
        res["models"][key] = entry
        rows.append(entry)
    print("\n## per model: training samples/s, medians of %d runs, first batch untimed on both sides (PyTorch: plain autograd loop, float32, at its faster of 1 and %d threads)\n" % (a.repeat, a.threads))
    print("| model | PyTorch train | soma train | soma / PyTorch |")
    print("|---|---:|---:|---:|")
    for e in rows:
        print("| %s | %s | %s | %.2fx |" % (e["label"], fmt_sps(e["torch"]["train_samples_per_second"]),
                                          fmt_sps(e["soma"]["train_samples_per_second"]),
                                          e["ratio"]["train_samples_per_second"]))
    return res, rows


def main():
    ap = argparse.ArgumentParser(description="soma vs PyTorch on examples/fmnist-lif.yaml")
    ap.add_argument("--soma", default=os.path.join(ROOT, "build", "soma"), help="the soma binary")
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "fmnist-lif.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-batches", type=int, default=150, help="throughput mode: batches trained (default 150)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each side, alternating order, median kept (default 3)")
    ap.add_argument("--accuracy", action="store_true", help="full epochs: test accuracy after epoch 1 and the last")
    ap.add_argument("--models", action="store_true", help="per-model training throughput against PyTorch")
    ap.add_argument("--only", help="--models: comma-separated keys to run (default: all)")
    ap.add_argument("--epochs-long", type=int, default=5, help="--accuracy: epochs (default 5)")
    ap.add_argument("--eval-limit", type=int, default=0, help="torch: test samples to evaluate (0: all)")
    ap.add_argument("--impl", default="auto", help="torch_ref.py implementation (default: auto, the fastest)")
    ap.add_argument("--python", help="a Python that can import torch and numpy")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "train.json"))
    a = ap.parse_args()

    a.soma = os.path.abspath(a.soma)
    if not os.access(a.soma, os.X_OK):
        raise SystemExit("bench_train: no soma binary at %s (build first: cmake -S . -B build && "
                         "cmake --build build)" % a.soma)
    py, tv = find_torch_python(a.python)
    if not py:
        raise SystemExit("bench_train: no Python here can import torch and numpy; install Debian's "
                         "python3-torch python3-numpy (scripts/deps.sh --bench)")
    os.chdir(ROOT)
    env_notes = {k: v for k, v in sorted(os.environ.items())
                 if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "MKL_", "KMP_"))}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    print("bench_train: %s, %d CPU(s), %d thread(s) each; torch %s (%s); load average %.2f"
          % (cpu_model(), os.cpu_count(), a.threads, tv, py, load0[0]), flush=True)
    if env_notes:
        print("bench_train: environment left as is: %s"
              % " ".join("%s=%s" % kv for kv in env_notes.items()), flush=True)
    if load0[0] > 0.5 * (os.cpu_count() or 1):
        print("bench_train: warning: the machine is busy (load %.2f); throughput numbers will be low and noisy"
              % load0[0], flush=True)

    tmp = tempfile.mkdtemp(prefix="soma-bench-")
    try:
        if a.models:
            res, rows = models_mode(a, py, tmp)
            mode = "models"
        elif a.accuracy:
            res, rows = accuracy_mode(a, py, tmp)
            mode = "accuracy"
        else:
            res, rows = throughput_mode(a, py, tmp)
            mode = "throughput"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    elapsed = time.perf_counter() - t0
    res["seconds"] = elapsed
    res["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    res["machine"] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "threads": a.threads,
        "load_average_before": load0[0],
        "load_average_after": load1[0],
        "env": env_notes,
        "python": py,
    }
    res["config"] = os.path.relpath(a.config, ROOT)
    res["eval_batch"] = SOMA_EVAL_BATCH  # both sides infer in batches of this size
    res["soma_binary"] = a.soma
    res["repo"] = repo_state()

    if mode == "models":
        print("(%.0f s in all; load average %.2f -> %.2f)" % (elapsed, load0[0], load1[0]))
    else:
        print_summary(a, res, rows, mode, elapsed, load0, load1)
    write_results(a, res, mode)
    return 0


def print_summary(a, res, rows, mode, elapsed, load0, load1):
    tt = res["torch"]["tuning"]["train_threads"]
    torch_label = "PyTorch %s (%s; %d+%d threads)" % (res["torch"]["torch_version"], res["torch"]["impl"],
                                                      tt["torch"], tt["openblas"])
    print()
    print("## soma vs PyTorch, %s, %d thread(s), %s mode" % (res["config"], a.threads, mode))
    print()
    print(table(rows, torch_label))
    print()
    print("soma/torch: training %.2fx, inference %.2fx   (%.0f s in all; load average %.2f -> %.2f)"
          % (res["ratio"]["train_samples_per_second"], res["ratio"]["infer_samples_per_second"], elapsed,
             load0[0], load1[0]))



def write_results(a, res, mode):
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    doc = {}
    if os.path.exists(a.out):
        try:
            with open(a.out) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {}
    doc[mode] = res
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp_out, a.out)
    shown = os.path.relpath(a.out, ROOT) if os.path.abspath(a.out).startswith(ROOT + os.sep) else a.out
    print("wrote %s (%s)" % (shown, mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
