#!/usr/bin/env python3
"""bench_sim.py: the simulator benchmarks (`make bench-sim`), in one invocation.

Sections (--only picks some; each updates its own part of the results JSON):
  cuba        examples/cuba.yaml at 4000 neurons (10 s of model time) and
              100,000 neurons (1 s), 80 synapses per neuron, soma
              `--threads 1 --no-record` against Brian2's C++ standalone mode on
              one thread (bench/brian_cuba.py, the same network). Simulation
              time only, build excluded, both on the same clock
              (CLOCK_MONOTONIC around the run; soma's sim_seconds, Brian's
              timer inserted into main.cpp around run()). Target: Brian / soma
              >= 3. Runs alternate soma, Brian, soma, ... and the best of
              --repeat counts.
  coba        examples/coba.yaml on one thread, 10 s: real-time factor (target
              <= 0.07); a second run with 1 s of warm-up checks that the
              activity sustains itself after the 50 ms kick.
  microcircuit examples/microcircuit.yaml at scale 1 (--quick: 0.1), 0.5 s
              warm-up then 1 s, no spike recording: real-time factor on 2 and
              on 1 thread (speed-up target >= 1.7), the same spikes on both,
              rates per population against Potjans & Diesmann's (target
              within 15 %). Once each: the scale-1 build takes ~3 GB and a
              minute or two.
  brunel      examples/brunel.yaml --set ai and --set sr, 2 threads, spikes
              recorded: mean CV of ISI (target > 0.8 for ai) and synchrony
              (Golomb's chi, strong for sr).
  scale       examples/cuba.yaml with 1,000,000 neurons (80 synapses each),
              1 s, 2 threads, once: builds and runs, peak RSS < 24 GB, bytes per
              synapse <= 8.

The CUBA file's p is the expression 80/n; the runs pass p explicitly with n
(`--param n=N --param p=80/N`) so that the number of synapses per neuron is 80
whether or not a --param override of n re-evaluates the params that depend on
it.

The machine's load average and available memory are recorded before each
section; --max-load L waits (up to --max-wait seconds) for the 1-minute load
to fall below L before the heavy sections (microcircuit, scale), since other
work on the same cores skews the timings.

Results: a table on stdout and bench/results/sim.json (--json).

Usage:
  python3 bench/bench_sim.py [--soma build/soma] [--quick] [--only cuba,coba,...]
                             [--repeat 3] [--max-load L] [--python PY]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EX = os.path.join(ROOT, "examples")

SECTIONS = ["cuba", "coba", "microcircuit", "brunel", "scale"]
# Potjans & Diesmann (2014) rates, Hz (BENCHMARKS.md; NEST's example).
PD_RATES = {"L23E": 0.903, "L23I": 2.965, "L4E": 4.414, "L4I": 5.876,
            "L5E": 7.569, "L5I": 8.633, "L6E": 1.105, "L6I": 7.829}
TARGETS = {"cuba_ratio": 3.0, "coba_rtf": 0.07, "mc_speedup": 1.7, "mc_rate_rel": 0.15, "brunel_ai_cv": 0.8,
           "scale_rss_bytes": 24e9, "scale_bytes_per_synapse": 8.0}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_state():
    return {"load1": round(os.getloadavg()[0], 2), "mem_available_bytes": mem_available(),
            "time": datetime.datetime.now().isoformat(timespec="seconds")}


def wait_quiet(a, what):
    """Wait until the 1-minute load average is below --max-load (if set)."""
    if not a.max_load:
        return
    t0 = time.time()
    while os.getloadavg()[0] >= a.max_load and time.time() - t0 < a.max_wait:
        time.sleep(10)
    l1 = os.getloadavg()[0]
    if l1 >= a.max_load:
        print("  [%s: load still %.2f after %.0f s; going on]" % (what, l1, time.time() - t0), flush=True)


def find_brian_python(explicit=None):
    cands = [explicit] if explicit else [sys.executable, "/usr/bin/python3", shutil.which("python3")]
    for py in cands:
        if not py or not os.path.exists(py):
            continue
        r = subprocess.run([py, "-c", "import brian2; print(brian2.__version__)"], capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip().splitlines()[-1]
    return None, None


def sources_modified():
    """Whether tracked files differ from the commit (git status, untracked files ignored)."""
    r = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                       text=True)
    return r.returncode != 0 or bool(r.stdout.strip())


def repo_commit():
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def soma_sim(a, yaml, args, tag):
    """Run `soma sim`, return its metrics.json (plus the process's wall time)."""
    out = os.path.join(a.tmp, tag)
    cmd = [a.soma, "sim", os.path.join(EX, yaml), "--out", out, "--seed", str(a.seed)] + args
    print("  $ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd), flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError("soma sim failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-2000:]))
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    m["process_seconds"] = wall
    line = r.stdout.splitlines()[0] if r.stdout else ""
    print("    " + line, flush=True)
    return m


def brian_cuba(a, n, t, f32=False):
    """One run of bench/brian_cuba.py (compiled once per (n, t, precision) into a cached folder)."""
    d = os.path.join(a.brian_cache, "cuba_n%d_t%g%s" % (n, t, "_f32" if f32 else ""))
    cmd = [a.py, os.path.join(HERE, "brian_cuba.py"), "--n", str(n), "--time", str(t), "--repeat", "1",
           "--seed", str(a.seed), "--dir", d] + (["--float32"] if f32 else [])
    print("  $ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("brian_cuba.py failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-2000:]))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print("    brian2: %d neurons, %d synapses, %d spikes; run %.4f s wall (Brian's own clock %.4f s)%s"
          % (res["n"], res["synapses"], res["spikes"], res["runs"][0]["wall_run_seconds"],
             res["runs"][0]["brian_run_seconds"],
             ", compiled in %.0f s" % res["compile_seconds"] if res["compile_seconds"] > 2 else ""), flush=True)
    return res


def spread(xs):
    return {"best": min(xs), "worst": max(xs), "all": xs, "spread_pct": 100.0 * (max(xs) - min(xs)) / min(xs)}


# ------------------------------------------------------------------ sections

def sec_cuba(a):
    res = {"threads": 1, "repeat": a.repeat, "brian2": a.brian_version, "cases": []}
    for n, t in ((4000, 10.0), (100000, 1.0)):
        args = ["--threads", "1", "--no-record", "--time", "%gs" % t, "--param", "n=%d" % n,
                "--param", "p=80/%d" % n]
        soma_runs, brian_runs, brian32 = [], [], []
        for i in range(a.repeat):
            soma_runs.append(soma_sim(a, "cuba.yaml", args, "cuba_%d_%d" % (n, i)))
            if a.py:
                brian_runs.append(brian_cuba(a, n, t))
                brian32.append(brian_cuba(a, n, t, f32=True))
        s_sim = [m["sim_seconds"] for m in soma_runs]
        case = {"n": n, "time_s": t, "synapses": soma_runs[0]["synapses"],
                "soma": {"sim_seconds": spread(s_sim), "rate_hz": soma_runs[0]["rate_hz"],
                         "spikes": soma_runs[0]["spikes"], "build_seconds": soma_runs[0]["build_seconds"],
                         "peak_rss_bytes": soma_runs[0]["peak_rss_bytes"]}}
        if brian_runs:
            b_wall = [b["runs"][0]["wall_run_seconds"] for b in brian_runs]
            b_cpu = [b["runs"][0]["brian_run_seconds"] for b in brian_runs]
            b0 = brian_runs[0]
            case["brian"] = {"sim_seconds": spread(b_wall), "brian_clock_seconds": spread(b_cpu),
                             "rate_hz": b0["rate_hz"], "spikes": b0["spikes"], "synapses": b0["synapses"],
                             "binary_seconds": [b["runs"][0]["binary_seconds"] for b in brian_runs]}
            case["ratio"] = min(b_wall) / min(s_sim)
            case["ratio_brian_clock"] = min(b_cpu) / min(s_sim)
            case["pass"] = case["ratio"] >= TARGETS["cuba_ratio"]
            # Brian2 at soma's precision (float32), beside its default float64.
            b32 = [b["runs"][0]["wall_run_seconds"] for b in brian32]
            case["brian_float32"] = {"sim_seconds": spread(b32), "rate_hz": brian32[0]["rate_hz"],
                                     "spikes": brian32[0]["spikes"]}
            case["ratio_float32"] = min(b32) / min(s_sim)
        res["cases"].append(case)
    return res


def sec_coba(a):
    runs = [soma_sim(a, "coba.yaml", ["--threads", "1", "--no-record", "--time", "10s"], "coba_%d" % i)
            for i in range(a.repeat)]
    rtf = [m["real_time_factor"] for m in runs]
    # Activity after the kick (0-50 ms): rates over 1-2 s.
    late = soma_sim(a, "coba.yaml", ["--threads", "1", "--no-record", "--time", "1s", "--warmup", "1s"], "coba_late")
    sustained = all(v > 1.0 for v in late["rate_hz"].values())
    return {"threads": 1, "time_s": 10, "real_time_factor": spread(rtf), "rate_hz": runs[0]["rate_hz"],
            "rate_hz_1s_to_2s": late["rate_hz"], "self_sustained": sustained, "synapses": runs[0]["synapses"],
            "spikes": runs[0]["spikes"], "pass": min(rtf) <= TARGETS["coba_rtf"] and sustained}


def sec_microcircuit(a):
    scale = 0.1 if a.quick else 1.0
    res = {"scale": scale, "warmup_s": 0.5, "time_s": 1.0, "runs": {}}
    for th in (2, 1):
        wait_quiet(a, "microcircuit, %d thread(s)" % th)
        res["machine_before_%dt" % th] = machine_state()
        m = soma_sim(a, "microcircuit.yaml", ["--threads", str(th), "--no-record", "--param", "scale=%g" % scale,
                                              "--time", "1s", "--warmup", "500ms"], "mc_%dt" % th)
        res["runs"][str(th)] = {k: m[k] for k in ("neurons", "synapses", "spikes", "build_seconds", "sim_seconds",
                                                  "real_time_factor", "bytes_per_synapse", "peak_rss_bytes",
                                                  "spikes_sha256", "rate_hz")}
    r2, r1 = res["runs"]["2"], res["runs"]["1"]
    res["speedup_2_vs_1"] = r1["sim_seconds"] / r2["sim_seconds"]
    res["same_spikes_1_and_2_threads"] = r1["spikes_sha256"] == r2["spikes_sha256"]
    rel = {p: (r2["rate_hz"][p] - v) / v for p, v in PD_RATES.items() if p in r2["rate_hz"]}
    res["rates"] = {p: {"soma": r2["rate_hz"][p], "published": PD_RATES[p], "rel_diff": rel[p]} for p in rel}
    res["max_abs_rel_rate_diff"] = max(abs(v) for v in rel.values())
    res["pass_speedup"] = res["speedup_2_vs_1"] >= TARGETS["mc_speedup"]
    res["pass_rates"] = res["max_abs_rel_rate_diff"] <= TARGETS["mc_rate_rel"]
    return res


def sec_brunel(a):
    res = {"threads": 2}
    for s in ("ai", "sr"):
        m = soma_sim(a, "brunel.yaml", ["--threads", "2", "--set", s], "brunel_" + s)
        pops = list(m["rate_hz"])
        size = {"exc": 10000, "inh": 2500}
        wmean = lambda d: sum(d[p] * size.get(p, 1) for p in pops) / sum(size.get(p, 1) for p in pops)
        res[s] = {"rate_hz": m["rate_hz"], "cv_isi": m["cv_isi"], "fano": m["fano"], "synchrony": m["synchrony"],
                  "mean_cv_isi": wmean(m["cv_isi"]), "mean_synchrony": wmean(m["synchrony"]),
                  "real_time_factor": m["real_time_factor"], "synapses": m["synapses"]}
    res["pass_ai_cv"] = res["ai"]["mean_cv_isi"] > TARGETS["brunel_ai_cv"]
    res["sr_more_synchronous"] = res["sr"]["mean_synchrony"] > 2 * res["ai"]["mean_synchrony"]
    return res


def sec_scale(a):
    n = a.scale_n
    wait_quiet(a, "scale")
    before = machine_state()
    m = soma_sim(a, "cuba.yaml", ["--threads", "2", "--no-record", "--time", "1s", "--param", "n=%d" % n,
                                  "--param", "p=80/%d" % n], "scale")
    res = {k: m[k] for k in ("neurons", "synapses", "spikes", "build_seconds", "sim_seconds", "real_time_factor",
                             "bytes_per_synapse", "connectivity_bytes", "peak_rss_bytes", "rate_hz")}
    res["threads"] = 2
    res["process_seconds"] = m["process_seconds"]
    res["machine_before"] = before
    res["synapses_per_neuron"] = m["synapses"] / m["neurons"]
    res["pass"] = m["peak_rss_bytes"] < TARGETS["scale_rss_bytes"] and \
        m["bytes_per_synapse"] <= TARGETS["scale_bytes_per_synapse"]
    return res


# ------------------------------------------------------------------ report

def fmt(v, f="%.3g"):
    return "-" if v is None else f % v


def table(R):
    rows = []
    c = R.get("cuba")
    if c:
        for case in c["cases"]:
            b = case.get("brian")
            rows.append(("CUBA %d, 1 thread, %g s: sim s" % (case["n"], case["time_s"]),
                         fmt(case["soma"]["sim_seconds"]["best"], "%.3f"),
                         "Brian2 %s" % fmt(b["sim_seconds"]["best"], "%.3f") if b else "-",
                         "%s (>= 3)" % fmt(case.get("ratio"), "%.2fx")))
            b32 = case.get("brian_float32")
            if b32:
                rows.append(("CUBA %d, 1 thread, %g s: Brian2 in float32" % (case["n"], case["time_s"]),
                             fmt(case["soma"]["sim_seconds"]["best"], "%.3f"),
                             "Brian2 float32 %s" % fmt(b32["sim_seconds"]["best"], "%.3f"),
                             fmt(case.get("ratio_float32"), "%.2fx")))
    c = R.get("coba")
    if c:
        rows.append(("COBA 4000, 1 thread: real-time factor", fmt(c["real_time_factor"]["best"], "%.4f"), "-",
                     "<= 0.07" + ("" if c["self_sustained"] else " (activity died)")))
    c = R.get("microcircuit")
    if c:
        r2, r1 = c["runs"]["2"], c["runs"]["1"]
        rows.append(("Microcircuit x%g: RTF 2 threads / 1 thread" % c["scale"],
                     "%.2f / %.2f" % (r2["real_time_factor"], r1["real_time_factor"]), "-",
                     "speed-up %.2f (>= 1.7)%s" % (c["speedup_2_vs_1"],
                                                   "" if c["same_spikes_1_and_2_threads"] else ", SPIKES DIFFER")))
        rows.append(("Microcircuit x%g: rates, max |rel. diff|" % c["scale"],
                     " ".join("%.2f" % v["soma"] for v in c["rates"].values()),
                     "P&D " + " ".join("%.2f" % v for v in PD_RATES.values()),
                     "%.0f %% (<= 15 %%)" % (100 * c["max_abs_rel_rate_diff"])))
    c = R.get("brunel")
    if c:
        rows.append(("Brunel ai: mean CV ISI / synchrony", "%.3f / %.3f" % (c["ai"]["mean_cv_isi"],
                                                                         c["ai"]["mean_synchrony"]), "-", "CV > 0.8"))
        rows.append(("Brunel sr: mean CV ISI / synchrony", "%.3f / %.3f" % (c["sr"]["mean_cv_isi"],
                                                                         c["sr"]["mean_synchrony"]), "-",
                     "synchrony >> ai"))
    c = R.get("scale")
    if c:
        rows.append(("CUBA %gM, 2 threads: peak RSS GB / B per syn" % (c["neurons"] / 1e6),
                     "%.2f / %g" % (c["peak_rss_bytes"] / 1e9, c["bytes_per_synapse"]), "-", "< 24 / <= 8"))
        rows.append(("CUBA %gM: build s / sim s (= RTF)" % (c["neurons"] / 1e6), "%.1f / %.1f" % (c["build_seconds"], c["sim_seconds"]), "-",
                     "runs"))
    w = [max(len(r[i]) for r in rows + [("what", "soma", "reference", "ratio / target")]) for i in range(4)]
    line = lambda r: "| " + " | ".join(s.ljust(w[i]) for i, s in enumerate(r)) + " |"
    out = [line(("what", "soma", "reference", "ratio / target")), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soma", default=os.path.join(ROOT, "build", "soma"))
    ap.add_argument("--quick", action="store_true", help="microcircuit at scale 0.1")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each small timing (best counts)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale-n", type=int, default=1000000, help="neurons of the scale section's CUBA")
    ap.add_argument("--python", default=None, help="a Python that can import brian2")
    ap.add_argument("--brian-cache", default=os.path.join(ROOT, "build", "bench-brian"),
                    help="Brian2 standalone projects, kept so that reruns skip the C++ compile")
    ap.add_argument("--max-load", type=float, default=0, help="wait for the load to fall below this (heavy parts)")
    ap.add_argument("--max-wait", type=float, default=600, help="seconds to wait for --max-load at most")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "sim.json"))
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        raise SystemExit("unknown section(s): %s" % ", ".join(bad))
    if not os.path.exists(a.soma):
        raise SystemExit("no soma binary at %s (make build)" % a.soma)
    a.soma = os.path.abspath(a.soma)
    a.py, a.brian_version = find_brian_python(a.python)
    if "cuba" in only and not a.py:
        print("bench_sim: no Python with brian2 (Debian python3-brian); CUBA runs without its reference",
              flush=True)
    os.makedirs(a.brian_cache, exist_ok=True)

    R = {}
    if os.path.exists(a.json):
        with open(a.json) as f:
            R = json.load(f)
    R["meta"] = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
                 "cpus": os.cpu_count(), "commit": repo_commit(), "sources_modified": sources_modified(), "soma": os.path.relpath(a.soma, ROOT),
                 "brian2": a.brian_version, "python": a.py, "quick": a.quick, "repeat": a.repeat,
                 "sections_run": only, "targets": TARGETS}
    print("bench_sim: %s, %d CPU(s); Brian2 %s; load %.2f; sections %s"
          % (cpu_model(), os.cpu_count(), a.brian_version, os.getloadavg()[0], ",".join(only)), flush=True)
    fns = {"cuba": sec_cuba, "coba": sec_coba, "microcircuit": sec_microcircuit, "brunel": sec_brunel,
           "scale": sec_scale}
    with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
        a.tmp = tmp
        for s in SECTIONS:
            if s not in only:
                continue
            print("== %s" % s, flush=True)
            before = machine_state()
            t0 = time.perf_counter()
            try:
                r = fns[s](a)
            except RuntimeError as e:
                print("  FAILED: %s" % e, flush=True)
                r = {"error": str(e)}
            r["machine_before"] = r.get("machine_before", before)
            r["machine_after"] = machine_state()
            r["section_seconds"] = time.perf_counter() - t0
            R[s] = r
            os.makedirs(os.path.dirname(a.json), exist_ok=True)
            with open(a.json + ".tmp", "w") as f:
                json.dump(R, f, indent=1)
            os.replace(a.json + ".tmp", a.json)
    print()
    print(table({k: v for k, v in R.items() if k in SECTIONS and "error" not in v}))
    print("\nwrote %s" % os.path.relpath(a.json, os.getcwd()))


if __name__ == "__main__":
    main()
