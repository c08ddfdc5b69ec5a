#!/usr/bin/python3
"""gen_brian_fidelity.py — Brian2 reference data for tests/test_sim_fidelity.c:
soma's simulator against Brian2 on whole networks.

Two parts (both by default; name one to run only it):

  net100  The 100-neuron network tests/fidelity/net100.yaml (50 input spike
          trains -> 80 exc + 20 inh lif_cuba neurons, recurrent, per-synapse
          weights, delays 1-3 ms). soma builds the network and writes its
          connectivity (`soma sim --write-connectivity`); Brian2 gets the same
          synapses (i, j, w, delay = soma's delay - dt, since soma counts a
          delay from the emitting step to the first step that feels it and
          Brian2 applies a delay-0 spike within the emitting step), the same
          input spikes (SpikeGeneratorGroup), the same equations and the same
          initial v, and runs 1 s. Writes
            tests/fixtures/fid_input.csv        the input spikes (neuron,time_ms),
                                                 drawn here with a fixed seed
            tests/fixtures/fid_conn.csv         soma's connectivity, sorted by (pre, post)
            tests/fixtures/fid_brian_spikes.csv Brian2's spikes (step,neuron; soma's global ids)
  cuba    Brian2's CUBA example (examples/cuba.yaml: 4000 neurons, 1 s) for
          seeds 1..NSEEDS: for each seed Brian2 runs on soma's connectivity of
          that seed, with initial v drawn as in the Brian2 example
          (Vr + rand()*(Vt - Vr), numpy seed = the seed). Writes the
          per-seed rates to tests/fixtures/fid_cuba_rates.csv. It also runs
          Brian2 with its own connectivity (Synapses.connect(p=0.02)) for
          the same seeds and prints those rates (not stored; they show that
          soma's connector is not what sets the rate).

Brian2: runtime target numpy, float64, dt 0.1 ms. Only this script needs
Brian2 (Debian: apt-get install python3-brian); CI reads the fixtures.

    /usr/bin/python3 tests/gen_brian_fidelity.py [net100|cuba] [--soma build/soma]

Regenerating is deterministic.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import brian2 as b2
from brian2 import ms, mV

b2.prefs.codegen.target = 'numpy'
b2.prefs.core.default_float_dtype = np.float64
b2.BrianLogger.log_level_warn()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(HERE, 'fixtures')
DT_MS = 0.1
STEPS = 10000  # 1 s
NSEEDS = 10

# The lif_cuba equations, exactly as Brian2's CUBA example writes them.
EQS = '''dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
         dge/dt = -ge / taue : volt
         dgi/dt = -gi / taui : volt'''


def soma_connectivity(soma, yaml, seed, params=()):
    """Build the network in soma (no simulation) and read its synapses."""
    with tempfile.TemporaryDirectory() as d:
        conn = os.path.join(d, 'conn.csv')
        cmd = [soma, 'sim', yaml, '--time', '0.1ms', '--seed', str(seed), '--threads', '1', '--no-record',
               '--out', d, '--write-connectivity', conn]
        for p in params:
            cmd += ['--param', p]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = np.loadtxt(conn, delimiter=',', skiprows=1, ndmin=2)
    pre, post = c[:, 0].astype(np.int64), c[:, 1].astype(np.int64)
    order = np.lexsort((post, pre))
    return pre[order], post[order], c[order, 2], c[order, 3]


def delay_steps(d_ms):
    """soma's delay in steps (it writes steps * float32 dt)."""
    return np.rint(d_ms / DT_MS).astype(np.int64)


def connect(src, dst, var, pre, post, w, dsteps, src_first, dst_first):
    """Synapses src -> dst adding w to var, from soma's global ids, with
    Brian2's delay = soma's delay - dt."""
    S = b2.Synapses(src, dst, 'w : volt', on_pre='%s += w' % var)
    S.connect(i=pre - src_first, j=post - dst_first)
    S.w = w * mV
    S.delay = (dsteps - 1) * DT_MS * ms
    return S


# ------------------------------------------------------------------ net100

N_IN, N_EXC, N_INH = 50, 80, 20
INPUT_HZ = 20.0
NET100 = dict(taum=20.0, taue=5.0, taui=10.0, Vt=-50.0, Vr=-60.0, El=-60.0, tref=5.0)  # net100.yaml


def draw_input():
    """Input spikes: N_IN independent Bernoulli trains at INPUT_HZ on the step
    grid (at most one spike per neuron and step, as SpikeGeneratorGroup needs)."""
    rng = np.random.default_rng(20240601)
    rows = []
    for n in range(N_IN):
        for s in np.nonzero(rng.random(STEPS) < INPUT_HZ * DT_MS * 1e-3)[0]:
            rows.append((int(s), n))
    rows.sort()
    with open(os.path.join(FIX, 'fid_input.csv'), 'w') as f:
        f.write('neuron,time_ms\n')
        for s, n in rows:
            f.write('%d,%.1f\n' % (n, s * DT_MS))
    return rows


def net100(soma):
    rows = draw_input()
    yaml = os.path.join(HERE, 'fidelity', 'net100.yaml')
    seed = 7  # net100.yaml's simulate.seed
    pre, post, wt, d = soma_connectivity(soma, yaml, seed)
    ds = delay_steps(d)
    with open(os.path.join(FIX, 'fid_conn.csv'), 'w') as f:
        f.write('pre,post,weight,delay_steps\n')
        for a, b, ww, dd in zip(pre, post, wt, ds):
            f.write('%d,%d,%.9g,%d\n' % (a, b, ww, dd))

    b2.start_scope()
    b2.defaultclock.dt = DT_MS * ms
    p = NET100
    ns = dict(taum=p['taum'] * ms, taue=p['taue'] * ms, taui=p['taui'] * ms, Vt=p['Vt'] * mV, Vr=p['Vr'] * mV,
              El=p['El'] * mV)
    G = b2.NeuronGroup(N_EXC + N_INH, EQS, threshold='v > Vt', reset='v = Vr', refractory=p['tref'] * ms,
                       method='exact', namespace=ns)
    # net100.yaml: v = -60mV + 10mV*i/N per population (exact in float32).
    G.v = np.concatenate([-60.0 + 10.0 * np.arange(N_EXC) / N_EXC, -60.0 + 10.0 * np.arange(N_INH) / N_INH]) * mV
    G.ge = 0 * mV
    G.gi = 0 * mV
    steps = np.array([r[0] for r in rows])
    I = b2.SpikeGeneratorGroup(N_IN, np.array([r[1] for r in rows]), steps * DT_MS * ms)
    first_exc, first_inh = N_IN, N_IN + N_EXC
    sin = pre < first_exc
    sexc = (pre >= first_exc) & (pre < first_inh)
    sinh = pre >= first_inh
    assert np.all(post >= first_exc), 'a synapse onto an input neuron'
    syn = [connect(I, G, 'ge', pre[sin], post[sin], wt[sin], ds[sin], 0, first_exc),
           connect(G, G, 'ge', pre[sexc], post[sexc], wt[sexc], ds[sexc], first_exc, first_exc),
           connect(G, G, 'gi', pre[sinh], post[sinh], wt[sinh], ds[sinh], first_exc, first_exc)]
    sm = b2.SpikeMonitor(G)
    vm = b2.StateMonitor(G, ['v', 'not_refractory'], record=True, when='thresholds', order=-1)
    net = b2.Network(G, I, sm, vm, *syn)
    net.run(STEPS * DT_MS * ms)
    spikes = sorted((int(round(float(t / ms) / DT_MS)), int(i) + first_exc) for i, t in zip(sm.i, sm.t))
    v = vm.v / mV
    act = vm.not_refractory.astype(bool)
    margin = float(np.min(np.abs(v[act] - p['Vt'])))
    with open(os.path.join(FIX, 'fid_brian_spikes.csv'), 'w') as f:
        f.write('# Brian2 %s, numpy target, float64, dt %g ms, %d steps: tests/fidelity/net100.yaml '
                '(seed %d) on soma\'s connectivity (fid_conn.csv)\n' % (b2.__version__, DT_MS, STEPS, seed))
        f.write('# closest approach of v to the threshold in a tested step: %.3e mV\n' % margin)
        f.write('step,neuron\n')
        for s, n in spikes:
            f.write('%d,%d\n' % (s, n))
    ne = sum(1 for s in spikes if s[1] < first_inh)
    print('net100: %d inputs, %d synapses, %d Brian2 spikes (exc %.2f Hz, inh %.2f Hz), closest approach to '
          'threshold %.2e mV' % (len(rows), len(pre), len(spikes), ne / N_EXC, (len(spikes) - ne) / N_INH, margin))
    return spikes


# -------------------------------------------------------------------- cuba

CUBA = dict(taum=20.0, taue=5.0, taui=10.0, Vt=-50.0, Vr=-60.0, El=-49.0, tref=5.0)
N_CUBA, NE_CUBA = 4000, 3200


def cuba_run(seed, conn):
    """One Brian2 CUBA run of 1 s; conn = soma's (pre, post, w, d) or None
    for Brian2's own connectivity. Returns (exc Hz, inh Hz)."""
    b2.start_scope()
    b2.seed(seed)
    b2.defaultclock.dt = DT_MS * ms
    p = CUBA
    ns = dict(taum=p['taum'] * ms, taue=p['taue'] * ms, taui=p['taui'] * ms, Vt=p['Vt'] * mV, Vr=p['Vr'] * mV,
              El=p['El'] * mV)
    P = b2.NeuronGroup(N_CUBA, EQS, threshold='v > Vt', reset='v = Vr', refractory=p['tref'] * ms,
                       method='exact', namespace=ns)
    P.v = 'Vr + rand() * (Vt - Vr)'
    P.ge = 0 * mV
    P.gi = 0 * mV
    if conn is None:
        we, wi = (60 * 0.27 / 10) * mV, (-20 * 4.5 / 10) * mV
        Ce = b2.Synapses(P, P, on_pre='ge += we', namespace=dict(we=we))
        Ci = b2.Synapses(P, P, on_pre='gi += wi', namespace=dict(wi=wi))
        Ce.connect('i<3200', p=0.02)
        Ci.connect('i>=3200', p=0.02)
    else:
        pre, post, wt, d = conn
        ds = delay_steps(d)
        assert np.all(ds == 1), 'cuba.yaml has delay dt (Brian2 delay 0)'
        e = pre < NE_CUBA
        Ce = connect(P, P, 'ge', pre[e], post[e], wt[e], ds[e], 0, 0)
        Ci = connect(P, P, 'gi', pre[~e], post[~e], wt[~e], ds[~e], 0, 0)
    sm = b2.SpikeMonitor(P)
    net = b2.Network(P, Ce, Ci, sm)
    net.run(STEPS * DT_MS * ms)
    i = np.asarray(sm.i)
    return float(np.sum(i < NE_CUBA)) / NE_CUBA, float(np.sum(i >= NE_CUBA)) / (N_CUBA - NE_CUBA)


def cuba(soma):
    yaml = os.path.join(ROOT, 'examples', 'cuba.yaml')
    rows, own = [], []
    for seed in range(1, NSEEDS + 1):
        t0 = time.time()
        re, ri = cuba_run(seed, soma_connectivity(soma, yaml, seed))
        oe, oi = cuba_run(seed, None)
        rows.append((seed, re, ri))
        own.append((oe, oi))
        print('cuba seed %2d: soma connectivity exc %.3f inh %.3f Hz; Brian2 connectivity exc %.3f inh %.3f Hz '
              '(%.0f s)' % (seed, re, ri, oe, oi, time.time() - t0), flush=True)
    r = np.array([x[1:] for x in rows])
    o = np.array(own)
    for name, a in (('soma connectivity', r), ('Brian2 connectivity', o)):
        print('cuba %s: mean exc %.3f Hz (sd %.3f), inh %.3f Hz (sd %.3f) over %d seeds'
              % (name, a[:, 0].mean(), a[:, 0].std(ddof=1), a[:, 1].mean(), a[:, 1].std(ddof=1), len(a)))
    with open(os.path.join(FIX, 'fid_cuba_rates.csv'), 'w') as f:
        f.write('# Brian2 %s, numpy target, float64, dt %g ms, 1 s: Brian2\'s CUBA example (examples/cuba.yaml)\n'
                % (b2.__version__, DT_MS))
        f.write('# on soma\'s connectivity of each seed (soma sim examples/cuba.yaml --seed S '
                '--write-connectivity), initial v = Vr + rand()*(Vt - Vr) with brian2.seed(S)\n')
        f.write('# mean over seeds: exc %.4f Hz, inh %.4f Hz; Brian2\'s own connectivity, same seeds: '
                'exc %.4f Hz, inh %.4f Hz\n' % (r[:, 0].mean(), r[:, 1].mean(), o[:, 0].mean(), o[:, 1].mean()))
        f.write('seed,exc_hz,inh_hz\n')
        for s, a, b in rows:
            f.write('%d,%.6f,%.6f\n' % (s, a, b))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('part', nargs='?', choices=('net100', 'cuba', 'all'), default='all')
    ap.add_argument('--soma', default=os.path.join(ROOT, 'build', 'soma'))
    a = ap.parse_args()
    if not os.access(a.soma, os.X_OK):
        sys.exit('no soma binary at %s (build first, or pass --soma)' % a.soma)
    if a.part in ('net100', 'all'):
        net100(a.soma)
    if a.part in ('cuba', 'all'):
        cuba(a.soma)


if __name__ == '__main__':
    main()
