#!/usr/bin/env python3
"""brian_cuba.py: Brian2's CUBA example (brian2/examples/CUBA.py) in C++
standalone mode on one thread, the reference for soma's examples/cuba.yaml in
bench/bench_sim.py.

The network is the example's: N LIF neurons (80 % excitatory), exact
integration, voltage jumps we = 1.62 mV and wi = -9 mV, 5 ms refractory, and
connection probability 80/N so that every neuron has 80 targets on average
(the example's p = 0.02 at N = 4000). Two deviations, both for a like-for-like
timing against `soma sim --no-record`:
  - no SpikeMonitor that stores spikes; a SpikeMonitor(record=False) counts
    them (one increment per spike), so the rates can still be compared;
  - no network operation or Python-side work inside the run.

Timing (build excluded). The generated code is compiled once, then the binary
runs --repeat times. Each run reports
  - wall_run_seconds: CLOCK_MONOTONIC around `run()` in main.cpp (inserted
    with device.insert_code), the same clock soma's sim_seconds uses. Synapse
    creation, array loading and result writing lie outside it.
  - brian_run_seconds: Brian's own `device._last_run_time`, read from
    results/last_run_info.txt. Without OpenMP, Brian measures it with
    std::clock(), i.e. the process's CPU time, not wall time; on a loaded
    machine it is lower than the wall time (time spent waiting for a core is
    not counted), so it is recorded but the ratio uses wall_run_seconds.
  - binary_seconds: wall time of the whole binary (includes synapse creation).

Prints one JSON object on the last line of stdout.

Usage: /usr/bin/python3 bench/brian_cuba.py [--n 4000] [--time 1] [--repeat 3]
                                            [--seed 1] [--dir DIR] [--float32] [--profile]

--float32 runs Brian2 in single precision (soma's): the state variables and
constants become float32, as in soma; the default is Brian2's float64.
"""
import argparse
import json
import os
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000, help="total neurons (80 %% excitatory)")
    ap.add_argument("--time", type=float, default=1.0, help="model time, seconds")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the compiled binary")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default=None, help="standalone project folder (default: a temporary one)")
    ap.add_argument("--float32", action="store_true",
                    help="single precision (prefs.core.default_float_dtype = float32), soma's precision")
    ap.add_argument("--profile", action="store_true",
                    help="Brian2's per-code-object profile (adds timers around every object: not for timing)")
    a = ap.parse_args()

    import brian2
    from brian2 import (NeuronGroup, Synapses, SpikeMonitor, ms, mV, second, set_device, device, prefs, seed,
                        run, defaultclock)

    d = a.dir or tempfile.mkdtemp(prefix="brian_cuba_")
    set_device("cpp_standalone", directory=d, build_on_run=False)
    prefs.devices.cpp_standalone.openmp_threads = 0  # no OpenMP: one thread
    if a.float32:
        import numpy
        prefs.core.default_float_dtype = numpy.float32
    defaultclock.dt = 0.1 * ms
    seed(a.seed)

    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    n = a.n
    ne = int(round(0.8 * n))
    p = 80.0 / n
    P = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact")
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    we = (60 * 0.27 / 10) * mV  # excitatory synaptic weight (voltage)
    wi = (-20 * 4.5 / 10) * mV  # inhibitory synaptic weight
    Ce = Synapses(P, P, on_pre="ge += we")
    Ci = Synapses(P, P, on_pre="gi += wi")
    Ce.connect("i<%d" % ne, p=p)
    Ci.connect("i>=%d" % ne, p=p)
    mon = SpikeMonitor(P, record=False)

    device.insert_code("main", "struct timespec _bench_t0, _bench_t1; clock_gettime(CLOCK_MONOTONIC, &_bench_t0);")
    run(a.time * second, profile=a.profile)
    device.insert_code("main", "clock_gettime(CLOCK_MONOTONIC, &_bench_t1);\n"
                       "{ std::ofstream _f(\"results/wall_run_time.txt\"); _f.precision(9);\n"
                       "  _f << (double)(_bench_t1.tv_sec - _bench_t0.tv_sec)"
                       " + 1e-9 * (double)(_bench_t1.tv_nsec - _bench_t0.tv_nsec) << std::endl; }")

    t0 = time.perf_counter()
    device.build(directory=d, compile=True, run=False)
    compile_s = time.perf_counter() - t0

    runs = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        device.run(d, False, [])
        binary_s = time.perf_counter() - t0
        with open(os.path.join(d, "results", "wall_run_time.txt")) as f:
            wall = float(f.read())
        runs.append({"wall_run_seconds": wall, "brian_run_seconds": float(device._last_run_time),
                     "binary_seconds": binary_s})
        print("brian_cuba: n=%d run %.4f s wall (Brian's own clock %.4f s), binary %.2f s"
              % (n, wall, device._last_run_time, binary_s), file=sys.stderr, flush=True)

    if a.profile:
        from brian2 import profiling_summary
        print(profiling_summary(show=12), file=sys.stderr)
    # Spike counts and synapse numbers are read back from the last run.
    counts = mon.count[:]
    tot = float(a.time)
    res = {
        "brian2_version": brian2.__version__,
        "n": n,
        "time_s": tot,
        "synapses": int(len(Ce) + len(Ci)),
        "spikes": int(mon.num_spikes),
        "rate_hz": {"exc": float(counts[:ne].sum()) / (ne * tot), "inh": float(counts[ne:].sum()) / ((n - ne) * tot)},
        "compile_seconds": compile_s,
        "runs": runs,
        "sim_seconds": min(r["wall_run_seconds"] for r in runs),
        "directory": d,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
