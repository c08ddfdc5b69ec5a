#!/usr/bin/env python3
"""seeds.py: test accuracy of soma and of the PyTorch reference (bench/torch_ref.py)
on examples/fmnist-lif.yaml over several seeds, with the raw per-seed results
stored, so that the README's "mean of seeds" figures can be reproduced.

Both sides train --epochs full epochs (default 1) for each seed 1..--seeds
(default 10) with the same threads, then evaluate on the whole test set.
Accuracy does not depend on timing, so other work on the machine does not
change these figures (only how long they take).

Usage:
  /usr/bin/python3 bench/seeds.py [--seeds 10] [--epochs 1] [--threads 2] [--soma build/soma]
Writes bench/results/seeds.json (each seed's accuracies, the means and sds,
the commit, whether sources were modified, the machine) and prints a table.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def git(*args):
    r = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soma", default=os.path.join(ROOT, "build", "soma"))
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "fmnist-lif.yaml"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default="/usr/bin/python3", help="a Python that can import torch (Debian's)")
    ap.add_argument("--no-torch", action="store_true", help="soma only")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "seeds.json"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="soma-seeds-") as tmp:
        for seed in range(1, a.seeds + 1):
            out = os.path.join(tmp, "soma_%d" % seed)
            cmd = [a.soma, "train", a.config, "--epochs", str(a.epochs), "--threads", str(a.threads),
                   "--seed", str(seed), "--out", out]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("soma train failed for seed %d:\n%s" % (seed, r.stderr[-2000:]))
            with open(os.path.join(out, "metrics.json")) as f:
                s_acc = json.load(f)["test_accuracy"]
            t_acc = None
            if not a.no_torch:
                js = os.path.join(tmp, "torch_%d.json" % seed)
                cmd = [a.python, os.path.join(HERE, "torch_ref.py"), "--epochs", str(a.epochs), "--threads",
                       str(a.threads), "--seed", str(seed), "--json", js]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit("torch_ref.py failed for seed %d:\n%s" % (seed, r.stderr[-2000:]))
                with open(js) as f:
                    t_acc = json.load(f)["test_accuracy"]
            rows.append({"seed": seed, "soma": s_acc, "torch": t_acc})
            print("seed %2d: soma %.2f %%%s" % (seed, 100 * s_acc,
                                                "" if t_acc is None else ", PyTorch %.2f %%" % (100 * t_acc)),
                  flush=True)

    def stats(key):
        v = [r[key] for r in rows if r[key] is not None]
        if not v:
            return None
        return {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}

    res = {"config": os.path.relpath(a.config, ROOT), "epochs": a.epochs, "threads": a.threads, "seeds": rows,
           "soma": stats("soma"), "torch": stats("torch"),
           "repo": {"commit": git("rev-parse", "--short", "HEAD"),
                    "sources_modified": bool(git("status", "--porcelain", "--untracked-files=no"))},
           "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
           "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp_out, a.out)
    for k in ("soma", "torch"):
        if res[k]:
            print("%s: mean %.2f %%, sd %.2f over %d seeds" % (k, 100 * res[k]["mean"], 100 * res[k]["sd"], res[k]["n"]))
    print("wrote %s" % os.path.relpath(a.out, ROOT))


if __name__ == "__main__":
    main()
