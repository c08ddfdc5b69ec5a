#!/bin/bash
# test_cli_models.sh — every trainable neuron model (and a convolution) trains
# from the command line and round-trips through model.soma: `soma train` on the
# generated recall data set (no files needed) writes model.soma and
# metrics.json, its training loss falls from the first epoch to the last by
# more than 0.2 % (each epoch sees the whole training set, so with weights
# that never move the epoch means would be equal; the smallest fall
# measured, conv's, is 0.6 %), and `soma eval` of the saved model gives
# the same test accuracy as the training run reported.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-models-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
run() { # name, hidden spec, projection kind spec, input spec
    local name=$1 hidden=$2 proj=$3 input=$4
    cat > "$DIR/$name.yaml" <<YAML
network:
  populations:
    in:     {$input}
    hidden: {$hidden}
    out:    {model: ann, size: 8, activation: linear}
  projections:
    - {from: in, to: hidden, $proj}
    - {from: hidden, to: out, kind: dense}
data: {dataset: recall, encoding: sequence, steps: 12, readout: last, limit_train: 512, limit_test: 200}
train: {epochs: 4, batch: 16, loss: ce_last, optimizer: {name: adam, lr: 3e-3}, threads: 2}
YAML
    if ! "$BIN" train "$DIR/$name.yaml" --out "$DIR/$name" > "$DIR/$name.log" 2>&1; then
        echo "FAIL $name: soma train failed:"; tail -5 "$DIR/$name.log"; fail=1; return
    fi
    if [ ! -s "$DIR/$name/model.soma" ] || [ ! -s "$DIR/$name/metrics.json" ]; then
        echo "FAIL $name: model.soma or metrics.json missing"; fail=1; return
    fi
    local losses
    losses=$(grep -o '"loss": *\[[^]]*\]' "$DIR/$name/metrics.json" | sed 's/.*\[//; s/\]//; s/,/ /g')
    if ! echo "$losses" | awk '{ exit !(NF >= 2 && $NF < 0.998 * $1) }'; then
        echo "FAIL $name: the training loss did not fall over the epochs: [$losses]"; fail=1; return
    fi
    local want got
    want=$(grep -o '"test_accuracy": *[0-9.eE+-]*' "$DIR/$name/metrics.json" | head -1 | sed 's/.*: *//')
    got=$("$BIN" eval "$DIR/$name/model.soma" --threads 1 2>&1 | grep -o 'test accuracy: [0-9.]*%' | sed 's/test accuracy: //; s/%//')
    if [ -z "$got" ] || ! awk -v a="$want" -v b="$got" 'BEGIN { exit !((a * 100 - b) < 0.006 && (b - a * 100) < 0.006) }'; then
        echo "FAIL $name: soma eval of the saved model gives '$got' %, training reported $want"; fail=1; return
    fi
    echo "ok $name: test accuracy $got %, loss per epoch [$losses]"
}
run lif       "model: lif, size: 16, recurrent: true, learn: {beta: neuron}" "kind: dense" "model: input, size: 9"
run synaptic  "model: synaptic, size: 16" "kind: dense" "model: input, size: 9"
run alif      "model: alif, size: 16, recurrent: true" "kind: dense" "model: input, size: 9"
run meta_lif  "model: meta_lif, size: 16, learn: [beta, threshold, u_reset]" "kind: dense" "model: input, size: 9"
run ann       "model: ann, size: 16, activation: gelu" "kind: dense" "model: input, size: 9"
run ultralif  "model: ultralif, size: 16, learn: {log_tau: neuron, log_eps: layer}" "kind: dense" "model: input, size: 9"
run ultradlif "model: ultradlif, size: 16, learn: {log_kappa: layer}" "kind: dense" "model: input, size: 9"
run cfc       "model: cfc, size: 16" "kind: dense" "model: input, size: 9"
run cfc_mm    "model: cfc, size: 16, mixed_memory: yes" "kind: dense" "model: input, size: 9"
run cfc_min   "model: cfc, size: 16, mode: minimal, learn: [A]" "kind: dense" "model: input, size: 9"
run ltc       "model: ltc, size: 8, unfolds: 3" "kind: dense" "model: input, size: 9"
run elm       "model: elm, size: 16" "kind: dense" "model: input, size: 9"
run elm_v2    "model: elm, size: 16, branches: 4, mlp_hidden: 24" "kind: dense" "model: input, size: 9"
run l2mu      "model: l2mu, size: 16, order: 6, theta: 12" "kind: dense" "model: input, size: 9"
# physical models (mV, pA; the net's dt 0.1 ms): thresholds near rest so the data drive them
run iaf_psc_delta "model: iaf_psc_delta, size: 16, V_th: -68, t_ref: 0.2" "kind: dense" "model: input, size: 9"
run iaf_psc_exp "model: iaf_psc_exp, size: 16, C_m: 2, V_th: -68, t_ref: 0.2" "kind: dense" "model: input, size: 9"
run lif_cuba  "model: lif_cuba, size: 16, e_l: -60, v_th: -58, v_reset: -62, t_ref: 0.2, tau_m: 1" "kind: dense" "model: input, size: 9"
run conv      "model: lif, shape: [4, 2, 2]" "kind: conv, kernel: 2" "model: input, shape: [1, 3, 3]"
# soma info names the convolution and the shapes
if ! "$BIN" info "$DIR/conv/model.soma" 2>&1 | grep -q "in -> hidden  conv 2x2, stride 1, padding 0 + bias" ||
   ! "$BIN" info "$DIR/conv/model.soma" 2>&1 | grep -q "shape \[4, 2, 2\]"; then
    echo "FAIL soma info does not describe the convolution:"; "$BIN" info "$DIR/conv/model.soma"; fail=1
fi
exit $fail
