#!/usr/bin/env python3
"""bench_prune.py — inference speed of a pruned model against its dense one.

Trains nothing: takes a trained model file, prunes a fraction of each hidden
population (`soma dissect MODEL prune`, no fine-tuning), then times `soma
eval` (test-set evaluation, samples/s as soma_train_evaluate reports it) of
the dense and the pruned model, interleaved (dense, pruned, dense, ...) so
that a change of the machine's load hits both alike, and reports the medians
of --repeats runs each, with the commit, whether sources were modified, the
CPU and the load before and after.

    python3 bench/bench_prune.py /tmp/prune-runs/lif/model.soma --fraction 0.5 --by wina \\
        --threads 2 --out bench/results/prune.json
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sim import cpu_model, machine_state, repo_commit, sources_modified  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    print("  $ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("bench_prune: %s failed:\n%s%s" % (cmd[1], r.stdout, r.stderr))
    return r.stdout


def eval_sps(a, model):
    cmd = [a.soma, "eval", model, "--threads", str(a.threads)] + (["--limit", str(a.limit)] if a.limit else [])
    out = run(cmd)
    m = re.search(r"test accuracy: ([0-9.]+)% \(([0-9]+) samples.*?([0-9.]+) samples/s\)", out)
    if not m:
        sys.exit("bench_prune: cannot read soma eval's output: " + out)
    return float(m.group(1)), float(m.group(3))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--fraction", default="0.5")
    p.add_argument("--by", default="wina")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="test samples evaluated (0: all)")
    p.add_argument("--soma", default=os.path.join(ROOT, "build", "soma"))
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args()
    before = machine_state()
    modified_before = sources_modified()
    tmp = tempfile.mkdtemp(prefix="bench-prune-")
    run([a.soma, "dissect", a.model, "prune", "--fraction", a.fraction, "--by", a.by, "--repeats", "1",
         "--threads", str(a.threads), "--out", tmp] + (["--limit", str(a.limit)] if a.limit else []))
    with open(os.path.join(tmp, "result.json")) as f:
        pr = json.load(f)["results"][0]
    pruned = os.path.join(tmp, "pruned.soma")
    dense_sps, pruned_sps, acc = [], [], {}
    for _ in range(a.repeats):
        acc["dense"], s = eval_sps(a, a.model)
        dense_sps.append(s)
        acc["pruned"], s = eval_sps(a, pruned)
        pruned_sps.append(s)
    res = {
        "meta": {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
                 "cpus": os.cpu_count(), "commit": repo_commit(), "sources_modified": modified_before or sources_modified(),
                 "soma": os.path.relpath(a.soma, ROOT), "machine_before": before, "machine_after": machine_state()},
        "model": a.model, "fraction": float(a.fraction), "by": a.by, "threads": a.threads, "repeats": a.repeats,
        "limit": a.limit, "hidden_before": pr["hidden_before"], "hidden_after": pr["hidden_after"],
        "params_before": pr["params_before"], "params_after": pr["params_after"],
        "accuracy_dense": acc["dense"], "accuracy_pruned": acc["pruned"],
        "dense_samples_per_second": dense_sps, "pruned_samples_per_second": pruned_sps,
        "dense_median": statistics.median(dense_sps), "pruned_median": statistics.median(pruned_sps),
    }
    res["speedup"] = res["pruned_median"] / res["dense_median"]
    print("%s, fraction %s by %s: %d -> %d hidden neurons, %d -> %d parameters; accuracy %.2f%% -> %.2f%%"
          % (a.model, a.fraction, a.by, pr["hidden_before"], pr["hidden_after"], pr["params_before"],
             pr["params_after"], acc["dense"], acc["pruned"]))
    print("eval samples/s, median of %d (%d threads): dense %.0f, pruned %.0f, %.2fx  [commit %s%s, %s, load %.1f -> %.1f]"
          % (a.repeats, a.threads, res["dense_median"], res["pruned_median"], res["speedup"], res["meta"]["commit"],
             ", sources modified" if res["meta"]["sources_modified"] else "", res["meta"]["cpu"],
             before["load1"], res["meta"]["machine_after"]["load1"]))
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(a.out + ".tmp", a.out)
        print("wrote " + a.out)


if __name__ == "__main__":
    main()
