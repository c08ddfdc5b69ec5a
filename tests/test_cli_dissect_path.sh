#!/bin/bash
# test_cli_dissect_path.sh — `soma dissect MODEL path --class K` on a small
# Fashion-MNIST model trained here (two hidden LIF layers of 24, 2000
# training samples): one neuron per hidden layer on each path, result.json
# with both paths and the accuracies, path.png; a missing or bad --class is
# named.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-dissect-path-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
cat > "$DIR/net.yaml" <<'YAML'
network:
  populations:
    in:  {model: input, size: 784}
    h1:  {model: lif, size: 24, beta: 0.9}
    h2:  {model: lif, size: 24, beta: 0.9}
    out: {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: h1, kind: dense}
    - {from: h1, to: h2, kind: dense}
    - {from: h2, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 8, limit_train: 2000, limit_test: 400}
train: {epochs: 2, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/net.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; exit 1; }
M="$DIR/run/model.soma"

"$BIN" dissect "$M" path --class 1 --limit 150 --threads 2 --out "$DIR/path" > "$DIR/path.log" 2> "$DIR/path.err" \
    || { echo "FAIL: dissect path"; cat "$DIR/path.log" "$DIR/path.err"; fail=1; }
check "[ -s $DIR/path/path.png ]" "path wrote no path.png"
check "grep -q 'path .*48/48 samples' $DIR/path.err" "path showed no progress over the 48 hidden neurons: $(tail -c 300 $DIR/path.err)"
check "json $DIR/path/result.json '[p[\"pop\"] for p in r[\"influential_path\"]] == [\"h1\", \"h2\"] and [p[\"pop\"] for p in r[\"most_active_path\"]] == [\"h1\", \"h2\"] and r[\"class\"] == 1 and r[\"ig_steps\"] == 20 and 0 <= r[\"influential_ablated\"][\"class_accuracy\"] <= 1' | grep -q True" \
      "path result.json: $(cat $DIR/path/result.json)"
check "grep -q 'influential path' $DIR/path.log" "path printed no path: $(cat $DIR/path.log)"
"$BIN" dissect "$M" path > /dev/null 2> "$DIR/bad.err"
rc=$?
check "[ $rc -eq 2 ] && grep -q -- '--class K is needed' $DIR/bad.err" "path without --class: $(cat $DIR/bad.err)"
"$BIN" dissect "$M" path --class 10 > /dev/null 2> "$DIR/bad2.err"
rc=$?
check "[ $rc -eq 2 ] && grep -q -- 'expected 0 to 9' $DIR/bad2.err" "path --class 10: $(cat $DIR/bad2.err)"
exit $fail
