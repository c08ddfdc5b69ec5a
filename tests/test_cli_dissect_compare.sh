#!/bin/bash
# test_cli_dissect_compare.sh — two models in `soma dissect`: `MODEL compare
# MODEL2` and `MODEL patch SITE --from-model MODEL2`, on small Fashion-MNIST
# models trained here (a few seconds each): a model against itself gives
# RMS 0 everywhere and equal accuracies, against one trained from another
# seed some RMS > 0; result.json and compare.png are written; a model of
# another shape, or with another encoding, is refused by name; patching
# from the model itself changes nothing.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-compare-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
net() { # net HIDDEN STEPS EPOCHS > yaml
cat <<YAML
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: lif, size: $1, beta: 0.9}
    out:    {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: $2, limit_train: 2000, limit_test: 300}
train: {epochs: $3, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
}
train() { # train NAME HIDDEN STEPS EPOCHS SEED
    net "$2" "$3" "$4" > "$DIR/$1.yaml"
    "$BIN" train "$DIR/$1.yaml" --threads 2 --seed "$5" --out "$DIR/$1" > "$DIR/$1.log" 2>&1 \
        || { echo "FAIL: soma train $1"; cat "$DIR/$1.log"; exit 1; }
}
train a 48 8 2 1
train b 48 8 2 2
train shape 32 8 1 1
train steps 48 9 1 1
A="$DIR/a/model.soma" B="$DIR/b/model.soma"

"$BIN" dissect "$A" compare "$A" --threads 2 --out "$DIR/self" > "$DIR/self.log" 2>&1 || { echo "FAIL: compare a a"; cat "$DIR/self.log"; fail=1; }
check "json $DIR/self/result.json 'r[\"command\"] == \"compare\" and r[\"samples\"] == 300 and r[\"accuracy\"] == r[\"accuracy2\"] and all(v == 0 for p in r[\"populations\"] for v in p[\"rms\"] + [p[\"mean_rms\"]])' | grep -q True" \
      "a against itself: $(head -c 400 $DIR/self/result.json)"
check "[ -s $DIR/self/compare.png ]" "compare wrote no compare.png"

"$BIN" dissect "$A" compare "$B" --top 7 --threads 2 --out "$DIR/ab" > "$DIR/ab.log" 2>&1 || { echo "FAIL: compare a b"; cat "$DIR/ab.log"; fail=1; }
check "json $DIR/ab/result.json 'len(r[\"top\"]) == 7 and r[\"top\"][0][\"rms\"] > 0 and [p[\"name\"] for p in r[\"populations\"]] == [\"hidden\", \"out\"] and len(r[\"populations\"][0][\"rms\"]) == 48 and 0.3 < r[\"accuracy2\"] <= 1' | grep -q True" \
      "a against b: $(head -c 400 $DIR/ab/result.json)"
check "grep -q 'accuracy' $DIR/ab.log" "compare printed no accuracies: $(cat $DIR/ab.log)"

"$BIN" dissect "$A" compare "$DIR/shape/model.soma" --out "$DIR/bad" > "$DIR/bad.log" 2>&1; rc=$?
check "[ $rc = 2 ] && grep -q \"'hidden'\" $DIR/bad.log" "a hidden layer of another size not refused by name (rc $rc): $(cat $DIR/bad.log)"
"$BIN" dissect "$A" compare "$DIR/steps/model.soma" --out "$DIR/bad" > "$DIR/bad.log" 2>&1; rc=$?
check "[ $rc = 2 ] && grep -q \"'steps'\" $DIR/bad.log" "another encoding (steps) not refused by name (rc $rc): $(cat $DIR/bad.log)"
"$BIN" dissect "$A" compare --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: compare without MODEL2 was accepted"; fail=1; }

"$BIN" dissect "$A" patch hidden.spikes --from-model "$A" --samples 50 --threads 2 --out "$DIR/pself" > "$DIR/pself.log" 2>&1 \
    || { echo "FAIL: patch --from-model a"; cat "$DIR/pself.log"; fail=1; }
check "json $DIR/pself/result.json 'r[\"targets\"] == 50 and r[\"changed\"] == 0 and r[\"source\"][\"sample\"] == \"each target\" and all(s[\"patched\"] == s[\"clean\"] == s[\"source\"] for s in r[\"samples\"])' | grep -q True" \
      "patch from itself: $(head -c 600 $DIR/pself/result.json)"
"$BIN" dissect "$A" patch hidden.spikes:0,1,2 --from-model "$B" --class 3 --threads 2 --out "$DIR/pb" > "$DIR/pb.log" 2>&1 \
    || { echo "FAIL: patch --from-model b"; cat "$DIR/pb.log"; fail=1; }
check "json $DIR/pb/result.json 'r[\"neurons\"] == [0,1,2] and r[\"class\"] == 3 and r[\"source\"][\"model\"].endswith(\"b/model.soma\") and all(s[\"label\"] == 3 for s in r[\"samples\"])' | grep -q True" \
      "patch from b: $(head -c 600 $DIR/pb/result.json)"
check "[ -s $DIR/pb/patch.png ]" "patch --from-model wrote no patch.png"
"$BIN" dissect "$A" patch hidden.spikes --from-model "$B" --from-sample 0 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --from-model with --from-sample was accepted"; fail=1; }
"$BIN" dissect "$A" patch hidden.spikes --from-model "$DIR/shape/model.soma" --out "$DIR/bad" > "$DIR/bad.log" 2>&1; rc=$?
check "[ $rc = 2 ] && grep -q \"'hidden.spikes'\" $DIR/bad.log" "patch from another shape not refused by site (rc $rc): $(cat $DIR/bad.log)"
[ $fail = 0 ] && echo "ok: soma dissect compare, patch --from-model"
exit $fail
