#!/bin/bash
# test_cli_dissect_patch.sh — `soma dissect MODEL patch SITE --from-sample J`
# on a small Fashion-MNIST model trained here (64 hidden LIF neurons, a few
# seconds): patching all hidden spikes gives every target the source's
# output (effect 1, all predictions the source's); a neuron list and
# --class are taken; result.json and patch.png are written; bad arguments
# are named.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-patch-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
cat > "$DIR/net.yaml" <<'YAML'
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: lif, size: 64, beta: 0.9}
    out:    {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 10, limit_train: 2000, limit_test: 400}
train: {epochs: 2, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/net.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; exit 1; }
M="$DIR/run/model.soma"

"$BIN" dissect "$M" patch hidden.spikes --from-sample 3 --samples 40 --threads 2 --out "$DIR/full" > "$DIR/full.log" 2>&1 \
    || { echo "FAIL: dissect patch"; cat "$DIR/full.log"; fail=1; }
check "[ -s $DIR/full/patch.png ]" "patch wrote no patch.png"
check "json $DIR/full/result.json 'r[\"command\"] == \"patch\" and r[\"targets\"] == 40 and r[\"mean_effect\"] == 1 and r[\"to_source\"] == 40 and all(s[\"patched\"] == r[\"source\"][\"output\"] for s in r[\"samples\"])' | grep -q True" \
      "full patch result.json: $(head -c 600 $DIR/full/result.json)"

"$BIN" dissect "$M" patch hidden.spikes:0,1,2,3 --from-sample 0 --class 2 --threads 2 --out "$DIR/sub" > "$DIR/sub.log" 2>&1 \
    || { echo "FAIL: dissect patch with a neuron list"; cat "$DIR/sub.log"; fail=1; }
check "json $DIR/sub/result.json 'r[\"neurons\"] == [0,1,2,3] and r[\"class\"] == 2 and all(s[\"label\"] == 2 for s in r[\"samples\"])' | grep -q True" \
      "neuron-list patch result.json: $(head -c 600 $DIR/sub/result.json)"

"$BIN" dissect "$M" patch nope.spikes --from-sample 0 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: an unknown site was accepted"; fail=1; }
check "grep -q \"'nope.spikes'\" $DIR/bad.log" "unknown site not named: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" patch hidden.spikes --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: no --from-sample was accepted"; fail=1; }
check "grep -q 'from-sample' $DIR/bad.log" "missing --from-sample not named"
"$BIN" dissect "$M" patch hidden.spikes --from-sample 0 --samples 3 --class 1 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --samples with --class was accepted"; fail=1; }
[ $fail = 0 ] && echo "ok: soma dissect patch"
exit $fail
