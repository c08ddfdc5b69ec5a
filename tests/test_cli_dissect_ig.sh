#!/bin/bash
# test_cli_dissect_ig.sh — `soma dissect MODEL select --by ig` (and --by wina),
# `ablate class=K --by ig` on a small Fashion-MNIST model trained here
# (64 hidden LIF neurons, a rate penalty, 2000 training samples): the
# selection is written by IG (result.json's "by", "ig" values best first,
# ig.png) although the model has a rate penalty (the CLI takes IG's
# gradients without it), and ablating the IG-selected neurons runs.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-dissect-ig-XXXXXX)
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
train: {epochs: 2, batch: 64, loss: ce_rate, rate_penalty: 0.05, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/net.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; exit 1; }
M="$DIR/run/model.soma"

"$BIN" dissect "$M" select --by ig --group class=1 --top 3 --limit 200 --threads 2 --out "$DIR/ig" > "$DIR/ig.log" 2> "$DIR/ig.err" \
    || { echo "FAIL: dissect select --by ig"; cat "$DIR/ig.log" "$DIR/ig.err"; fail=1; }
check "[ -s $DIR/ig/ig.png ]" "select --by ig wrote no ig.png"
check "grep -q 'ig .*/.* samples' $DIR/ig.err" "ig showed no progress on stderr"
check "json $DIR/ig/result.json 'r[\"by\"] == \"ig\" and r[\"count\"] == 3 and r[\"neurons\"][0][\"ig\"] >= r[\"neurons\"][2][\"ig\"] > 0 and r[\"neurons\"][0][\"pop\"] == \"hidden\"' | grep -q True" \
      "select --by ig result.json: $(cat $DIR/ig/result.json)"
"$BIN" dissect "$M" ablate class=1 --by ig --top 3 --draws 1 --limit 200 --threads 2 --out "$DIR/abl" > "$DIR/abl.log" 2>&1 \
    || { echo "FAIL: dissect ablate --by ig"; cat "$DIR/abl.log"; fail=1; }
check "json $DIR/abl/result.json 'r[\"ablations\"][0][\"result\"][\"selected_by\"] == \"ig\"' | grep -q True" "ablate --by ig result.json: $(head -c 600 $DIR/abl/result.json)"
"$BIN" dissect "$M" select --by wina --group class=1 --top 3 --limit 200 --threads 2 --out "$DIR/wina" > "$DIR/wina.log" 2>&1 \
    || { echo "FAIL: dissect select --by wina"; cat "$DIR/wina.log"; fail=1; }
check "[ -s $DIR/wina/wina.png ]" "select --by wina wrote no wina.png"
check "json $DIR/wina/result.json 'r[\"by\"] == \"wina\" and r[\"count\"] == 3 and r[\"neurons\"][0][\"wina\"] >= r[\"neurons\"][2][\"wina\"] > 0' | grep -q True" \
      "select --by wina result.json: $(cat $DIR/wina/result.json)"
"$BIN" dissect "$M" select --by nope --group class=1 > /dev/null 2> "$DIR/bad.err"
rc=$?
check "[ $rc -eq 2 ] && grep -q 'expected ap or attribution, or ig' $DIR/bad.err" "bad --by: $(cat $DIR/bad.err)"
exit $fail
