#!/usr/bin/env bash
# bench_record.sh — what recording one site costs against an unrecorded
# eval (issue 12's overhead criterion: < 20 %), by bench_record (see its
# header for the variants). Builds it, runs it, prints the table and stores
# it in bench/results/record.json with the commit, whether sources were
# modified, the machine and its load.
#   bench/bench_record.sh [REPEATS] [THREADS]
set -eu
cd "$(dirname "$0")/.."
R=${1:-9}
TH=${2:-1}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_record >/dev/null
load_before=$(cut -d' ' -f1 /proc/loadavg)
txt=$(build/bench_record all "$R" "$TH" 256)
echo "$txt"
load_after=$(cut -d' ' -f1 /proc/loadavg)
mod=false
[ -n "$(git status --porcelain --untracked-files=no)" ] && mod=true
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
tmp=$(mktemp bench/results/.record.XXXXXX)
/usr/bin/python3 - "$tmp" "$(git rev-parse --short HEAD)" "$mod" "$cpu" "$(nproc)" "$load_before" "$load_after" "$R" "$TH" <<PY
import json, sys, re, datetime
path, commit, mod, cpu, ncpu, lb, la, reps, th = sys.argv[1:]
txt = """$txt"""
runs, cur = [], None
for line in txt.splitlines():
    if not line.startswith("  "):
        cur = {"what": line, "variants": {}}
        runs.append(cur)
        continue
    m = re.match(r"\s+([ABC]) (.*?)\s+([0-9.]+) ms \(\s*([0-9.]+)\)", line)
    if m:
        cur["variants"][m.group(1)] = {"name": m.group(2).strip(), "wall_ms": float(m.group(3)), "cpu_ms": float(m.group(4))}
for r in runs:
    a = r["variants"].get("A")
    for k in ("B", "C"):
        v = r["variants"].get(k)
        if a and v:
            v["wall_ratio"] = round(v["wall_ms"] / a["wall_ms"], 4)
            v["cpu_ratio"] = round(v["cpu_ms"] / a["cpu_ms"], 4)
json.dump({"command": "bench/bench_record.sh %s %s" % (reps, th), "commit": commit, "sources_modified": mod == "true",
           "machine": {"cpu": cpu, "cpus": int(ncpu), "load1_before": float(lb), "load1_after": float(la)},
           "time": datetime.datetime.now().isoformat(timespec="seconds"), "runs": runs}, open(path, "w"), indent=1)
PY
mv "$tmp" bench/results/record.json
echo "stored bench/results/record.json"
