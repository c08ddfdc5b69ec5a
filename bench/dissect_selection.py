#!/usr/bin/env python3
"""dissect_selection.py — issue 12's "selection beats chance" table.

For a trained model, runs (unless --from gives earlier runs)

    soma dissect MODEL ablate classes --by METHOD --top-pct 1 --select-on train:N --draws R --seed 1

for METHOD in ap and attribution: each class's top 1 % of hidden neurons is
chosen on N train samples and zeroed; its class's accuracy on the test split
is compared with R random sets of the same size (the same R draws for every
class). Prints, per class, the drop of the selected set and of the control
(mean and sd over draws, in points) and their ratio, and whether the
selected drop is at least 5x the control's. A control that does not drop
(mean drop <= 0) gives no ratio; the criterion then reads "selected drop
>= 5 x max(control drop, 0)" and is also reported in units of the
control's sd. Stores the raw result.json of each run with the commit,
whether sources were modified, the machine and the command in
bench/results/dissect-selection-NAME.json.

    bench/dissect_selection.py --soma build/soma --model runs/fmnist-lif8/model.soma --name fmnist-lif
"""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git(*args):
    r = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def machine():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2)}


def table(res, method):
    abl = res["ablations"]
    C = len(abl)
    rows, met = [], 0
    for k in range(C):
        r = abl[k]["result"]
        before, after = r["class_before"][k], r["class_after"][k]
        ctrl, sd = r["class_control"][k], r["class_control_sd"][k]
        drop, cdrop = 100 * (before - after), 100 * (before - ctrl)
        ok = drop >= 5 * max(cdrop, 0.0) and drop > 0
        met += ok
        ratio = "%.0fx" % (drop / cdrop) if cdrop > 0 else "control did not drop"
        z = (100 * (ctrl - after)) / (100 * sd) if sd > 0 else float("inf")
        rows.append((k, 100 * before, 100 * after, drop, cdrop, 100 * sd, ratio, z, ok))
    return rows, met, C


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soma", default=os.path.join(ROOT, "build", "soma"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True, help="short name of the network (file name of the stored result)")
    ap.add_argument("--select-samples", type=int, default=10000)
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/soma-dissect-selection")
    ap.add_argument("--soma-commit", help="the commit --soma was built from, when not this checkout's HEAD")
    ap.add_argument("--from", dest="frm", help="tabulate earlier runs: DIR/NAME-ap/result.json and DIR/NAME-attribution/")
    a = ap.parse_args()
    stored = {"commit": git("rev-parse", "--short", "HEAD"),
              "sources_modified": bool(git("status", "--porcelain", "--untracked-files=no")),
              "machine": machine(), "time": datetime.datetime.now().isoformat(timespec="seconds"),
              "model": a.model, "soma": a.soma, "soma_commit": a.soma_commit or git("rev-parse", "--short", "HEAD"),
              "soma_sha256": hashlib.sha256(open(a.soma, "rb").read()).hexdigest(), "runs": {}}
    for method in ("ap", "attribution"):
        d = os.path.join(a.frm or a.out, "%s-%s" % (a.name, method))
        cmd = [a.soma, "dissect", a.model, "ablate", "classes", "--by", method, "--top-pct", "1",
               "--select-on", "train:%d" % a.select_samples, "--draws", str(a.draws), "--seed", "1",
               "--threads", str(a.threads), "--out", d]
        if not a.frm:
            print("$ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "result.json")) as f:
            res = json.load(f)
        stored["runs"][method] = {"command": " ".join(cmd[1:]), "result": res}
    print("%s (%s): test accuracy %.2f %%, top 1 %% of hidden neurons per class chosen on train:%d, "
          "control: %d random sets" % (a.name, a.model, 100 * stored["runs"]["ap"]["result"]["accuracy"],
                                       a.select_samples, a.draws))
    print("| class | before | AP: after | drop | attribution: after | drop | control drop (mean ± sd) | "
          "ratio AP | ratio attribution | ≥ 5× (AP / attr.) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ta, ma, C = table(stored["runs"]["ap"]["result"], "ap")
    tb, mb, _ = table(stored["runs"]["attribution"]["result"], "attribution")
    for x, y in zip(ta, tb):
        print("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %+.2f ± %.2f | %s | %s | %s / %s |" % (
            x[0], x[1], x[2], x[3], y[2], y[3], x[4], x[5], x[6], y[6], "yes" if x[8] else "no",
            "yes" if y[8] else "no"))
    print("criterion (selected drop >= 5 x max(control drop, 0)) met for %d/%d classes by AP, %d/%d by attribution"
          % (ma, C, mb, C))
    stored["summary"] = {"classes": C, "met_ap": ma, "met_attribution": mb}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "dissect-selection-%s.json" % a.name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(stored, f, indent=1)
    os.replace(tmp, path)
    print("stored " + os.path.relpath(path, ROOT))


if __name__ == "__main__":
    sys.exit(main())
