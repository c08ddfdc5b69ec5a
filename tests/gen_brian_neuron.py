#!/usr/bin/python3
"""gen_brian_neuron.py — Brian2 reference spike trains of single neurons for
tests/test_sim_models.c (lif_cuba and lif_coba).

Runs Brian2 itself (runtime target numpy, float64, dt 0.1 ms, 1 s) on a few
independent neurons of Brian2's CUBA and COBA models, each driven by its own
random train of excitatory and inhibitory input spikes (a SpikeGeneratorGroup
through Synapses with on_pre 'ge += w', delay 0), and writes the input
events and the output spike steps to tests/fixtures/brian_<model>.txt. CI only
reads the committed fixtures; Brian2 is needed only to regenerate them:

    /usr/bin/python3 tests/gen_brian_neuron.py   (Debian: apt-get install python3-brian)

Every parameter, weight and initial value is a float32 number, so the
float32 C model and float64 Brian2 start from identical values. Input trains
are re-drawn until no neuron's v, after the update of a step in which the
threshold is tested, lies within MARGIN of v_th (so float32 rounding cannot
flip a spike); the margin reached is written into the fixture. Regenerating
is deterministic.

Fixture format (text, whitespace separated, '#' starts a comment line):
    soma_brian_fixture 1
    model NAME                 lif_cuba or lif_coba
    dt_ms 0.1
    steps 10000
    neurons N
    param NAME VALUE           soma's parameter names and units (mV, ms, nS, pF, pA)
    v0 V_1 ... V_N             initial v (mV)
    inputs K                   then K lines: STEP NEURON PORT WEIGHT
                               (Brian2's step in which the input spike was
                               emitted and added to ge/gi; soma feels it in
                               STEP + 1; PORT 0 = e, 1 = i; WEIGHT in the
                               model's weight unit)
    spikes M                   then M lines: STEP NEURON (Brian2's spike steps)
    end
"""
import os
import sys

import numpy as np

import brian2 as b2
from brian2 import ms, mV, nS, pF, pA, second

b2.prefs.codegen.target = 'numpy'
b2.prefs.core.default_float_dtype = np.float64

DT_MS = 0.1
STEPS = 10000
MARGIN = 2e-4  # mV; float32 rounding of v is ~1e-5 mV
HERE = os.path.dirname(os.path.abspath(__file__))


def f32(x):
    return float(np.float32(x))


CASES = {
    'lif_cuba': dict(
        params=dict(tau_m=20.0, tau_e=5.0, tau_i=10.0, v_th=-50.0, v_reset=-60.0, e_l=-49.0, t_ref=5.0),
        eqs='''dv/dt = (ge + gi - (v - e_l)) / tau_m : volt (unless refractory)
               dge/dt = -ge / tau_e : volt
               dgi/dt = -gi / tau_i : volt''',
        method='exact', threshold='v > v_th', units=dict(tau_m=ms, tau_e=ms, tau_i=ms, v_th=mV, v_reset=mV,
                                                         e_l=mV, t_ref=ms),
        vars=('ge', 'gi'), wunit=mV,
        # per neuron: (exc rate Hz, inh rate Hz, exc weight, inh weight), weights in mV
        drive=[(2000.0, 150.0, 1.62, -9.0), (2500.0, 250.0, 1.62, -9.0), (1000.0, 80.0, 1.62, -9.0),
               (4000.0, 100.0, 0.8, -4.5)],
        v0=[-60.0, -55.0, -50.5, -58.25]),
    'lif_coba': dict(
        params=dict(C=200.0, g_L=10.0, E_L=-60.0, E_ex=0.0, E_in=-80.0, tau_ex=5.0, tau_in=10.0, V_th=-50.0,
                    V_reset=-60.0, t_ref=5.0, I_e=0.0),
        eqs='''dv/dt = (g_L * (E_L - v) + g_ex * (E_ex - v) + g_in * (E_in - v) + I_e) / C : volt (unless refractory)
               dg_ex/dt = -g_ex / tau_ex : siemens
               dg_in/dt = -g_in / tau_in : siemens''',
        method='exponential_euler', threshold='v > V_th',
        units=dict(C=pF, g_L=nS, E_L=mV, E_ex=mV, E_in=mV, tau_ex=ms, tau_in=ms, V_th=mV, V_reset=mV, t_ref=ms,
                   I_e=pA),
        vars=('g_ex', 'g_in'), wunit=nS,
        drive=[(2000.0, 300.0, 4.0, 51.0), (3500.0, 400.0, 4.0, 51.0), (1500.0, 50.0, 6.0, 67.0),
               (5000.0, 300.0, 2.0, 20.0)],
        v0=[-60.0, -52.0, -50.5, -57.75]),
}


def draw_inputs(rng, drive):
    """Poisson input events (step, neuron, port, weight), several sources per
    (neuron, port) so that a step may carry more than one event."""
    ev = []
    p_src = 8  # sources per (neuron, port)
    for n, (re, ri, we, wi) in enumerate(drive):
        for port, rate, w in ((0, re, we), (1, ri, wi)):
            for _ in range(p_src):
                k = rng.random(STEPS) < rate / p_src * DT_MS * 1e-3
                for s in np.nonzero(k)[0]:
                    ev.append((int(s), n, port, f32(w)))
    ev.sort()
    return ev


def run(name, case, ev):
    b2.start_scope()
    b2.defaultclock.dt = DT_MS * ms
    ns = {k: f32(v) * case['units'][k] for k, v in case['params'].items()}
    n = len(case['drive'])
    G = b2.NeuronGroup(n, case['eqs'], threshold=case['threshold'],
                       reset=('v = %s' % ('v_reset' if name == 'lif_cuba' else 'V_reset')),
                       refractory=ns['t_ref'], method=case['method'], namespace=ns)
    G.v = np.array([f32(v) for v in case['v0']]) * mV
    # One generator neuron per event source: index = event number (each fires once).
    idx = np.arange(len(ev))
    times = np.array([e[0] for e in ev]) * DT_MS * ms
    S = b2.SpikeGeneratorGroup(len(ev), idx, times)
    syn = [None, None]
    for port in (0, 1):
        var = case['vars'][port]
        sy = b2.Synapses(S, G, 'w : %s' % ('volt' if name == 'lif_cuba' else 'siemens'),
                         on_pre='%s += w' % var)
        pre = [i for i, e in enumerate(ev) if e[2] == port]
        post = [ev[i][1] for i in pre]
        if pre:
            sy.connect(i=np.array(pre), j=np.array(post))
            sy.w = np.array([ev[i][3] for i in pre]) * case['wunit']
        syn[port] = sy
    sm = b2.SpikeMonitor(G)
    # v after the update of each step, where the threshold looks at it.
    vm = b2.StateMonitor(G, ['v', 'not_refractory'], record=True, when='thresholds', order=-1)
    net = b2.Network(G, S, sm, vm, *[s for s in syn if s is not None])
    net.run(STEPS * DT_MS * ms)
    spikes = sorted((int(round(float(t / ms) / DT_MS)), int(i)) for i, t in zip(sm.i, sm.t))
    th = f32(case['params']['V_th' if name == 'lif_coba' else 'v_th'])
    v = vm.v / mV
    active = vm.not_refractory.astype(bool)
    margin = float(np.min(np.abs(v[active] - th)))
    return spikes, margin


def main():
    for name, case in CASES.items():
        for seed in range(1, 200):
            rng = np.random.default_rng(seed)
            ev = draw_inputs(rng, case['drive'])
            spikes, margin = run(name, case, ev)
            if margin >= MARGIN:
                break
            print('%s: seed %d margin %.2e, redraw' % (name, seed, margin), file=sys.stderr)
        else:
            sys.exit('%s: no input draw kept v %g mV from the threshold' % (name, MARGIN))
        counts = [sum(1 for s in spikes if s[1] == n) for n in range(len(case['drive']))]
        path = os.path.join(HERE, 'fixtures', 'brian_%s.txt' % name)
        with open(path, 'w') as f:
            f.write('soma_brian_fixture 1\n')
            f.write('# generated by tests/gen_brian_neuron.py: Brian2 %s, numpy target, float64, seed %d\n'
                    % (b2.__version__, seed))
            f.write('# closest approach of v to the threshold in a tested step: %.3e mV\n' % margin)
            f.write('# spikes per neuron: %s\n' % ' '.join(map(str, counts)))
            f.write('model %s\n' % name)
            f.write('dt_ms %g\nsteps %d\nneurons %d\n' % (DT_MS, STEPS, len(case['drive'])))
            for k, v in case['params'].items():
                f.write('param %s %.9g\n' % (k, f32(v)))
            f.write('v0 %s\n' % ' '.join('%.9g' % f32(v) for v in case['v0']))
            f.write('inputs %d\n' % len(ev))
            for s, n, p, w in ev:
                f.write('%d %d %d %.9g\n' % (s, n, p, w))
            f.write('spikes %d\n' % len(spikes))
            for s, n in spikes:
                f.write('%d %d\n' % (s, n))
            f.write('end\n')
        print('%s: %d inputs, spikes per neuron %s, margin %.2e mV -> %s' % (name, len(ev), counts, margin, path))


if __name__ == '__main__':
    main()
