#!/bin/bash
# test_cli_dissect_prune.sh — `soma dissect MODEL prune` on a small
# Fashion-MNIST model trained here (64 hidden LIF neurons, 2000 training
# samples, a few seconds): half the hidden neurons go (32 left, the
# parameter count by hand), pruned.soma loads and `soma eval` gives the
# accuracy result.json reports; a sweep with fine-tuning writes one model
# per fraction, prune.png, and fraction 0 changes nothing; every score
# runs; bad arguments are named and leave an earlier result alone.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-prune-XXXXXX)
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

# 784*64 + 64 + 64*10 + 10 = 50890 parameters before; 784*32 + 32 + 32*10 + 10 = 25450 after
"$BIN" dissect "$M" prune --fraction 0.5 --by rate --calib 500 --limit 300 --repeats 1 --threads 2 --out "$DIR/half" > "$DIR/half.log" 2> "$DIR/half.err" \
    || { echo "FAIL: dissect prune"; cat "$DIR/half.log" "$DIR/half.err"; fail=1; }
check "[ -s $DIR/half/pruned.soma ] && [ ! -e $DIR/half/finetuned.soma ] && [ ! -e $DIR/half/prune.png ]" "one fraction, no fine-tuning: pruned.soma only"
check "grep -q 'fraction 0.5: 32 hidden neurons, 25450 parameters' $DIR/half.log" "stdout summary: $(cat $DIR/half.log)"
check "json $DIR/half/result.json '(lambda a: r[\"command\"] == \"prune\" and r[\"by\"] == \"rate\" and a[\"hidden_before\"] == 64 and a[\"hidden_after\"] == 32 and a[\"params_before\"] == 50890 and a[\"params_after\"] == 25450 and a[\"accuracy_finetuned\"] is None and a[\"samples_per_second_after\"] > 0)(r[\"results\"][0])' | grep -q True" \
      "result.json: $(cat $DIR/half/result.json)"
"$BIN" info "$DIR/half/pruned.soma" > "$DIR/info.log" 2>&1
check "grep -q 'hidden' $DIR/info.log && grep -q '32' $DIR/info.log" "soma info of the pruned model: $(cat $DIR/info.log)"
"$BIN" eval "$DIR/half/pruned.soma" --limit 300 --threads 2 > "$DIR/eval.log" 2>&1 || { echo "FAIL: soma eval of pruned.soma"; cat "$DIR/eval.log"; fail=1; }
acc=$(json $DIR/half/result.json '"%.2f" % (100 * r["results"][0]["accuracy_pruned"])')
check "grep -q \"test accuracy: $acc%\" $DIR/eval.log" "soma eval of pruned.soma ($(cat $DIR/eval.log)) is not result.json's $acc%"

"$BIN" dissect "$M" prune --fraction 0,0.5 --by wina --finetune 0.25 --calib 500 --limit 300 --repeats 1 --threads 2 --out "$DIR/sweep" > "$DIR/sweep.log" 2> "$DIR/sweep.err" \
    || { echo "FAIL: dissect prune sweep"; cat "$DIR/sweep.log" "$DIR/sweep.err"; fail=1; }
check "[ -s $DIR/sweep/prune.png ] && [ -s $DIR/sweep/pruned-0.5.soma ] && [ -s $DIR/sweep/finetuned-0.5.soma ] && [ -s $DIR/sweep/pruned-0.soma ]" \
      "sweep files: $(ls $DIR/sweep)"
check "grep -q 'finetune' $DIR/sweep.err" "fine-tuning showed no progress on stderr"
check "json $DIR/sweep/result.json '(lambda a, b: len(r[\"results\"]) == 2 and a[\"accuracy_pruned\"] == a[\"accuracy_before\"] and a[\"params_after\"] == 50890 and b[\"hidden_after\"] == 32 and b[\"accuracy_finetuned\"] is not None and r[\"finetune_epochs\"] == 0.25)(*r[\"results\"])' | grep -q True" \
      "sweep result.json: $(cat $DIR/sweep/result.json)"

"$BIN" dissect "$M" prune --fraction 0.25 --by attribution --calib 300 --limit 100 --repeats 1 --threads 2 --out "$DIR/attr" > "$DIR/attr.log" 2>&1 \
    || { echo "FAIL: dissect prune --by attribution"; cat "$DIR/attr.log"; fail=1; }
check "json $DIR/attr/result.json 'r[\"by\"] == \"attribution\" and r[\"results\"][0][\"hidden_after\"] == 48' | grep -q True" "attribution result.json"

cp "$DIR/half/result.json" "$DIR/before.json"
"$BIN" dissect "$M" prune --fraction 1 --out "$DIR/half" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --fraction 1 was accepted"; fail=1; }
check "grep -q 'expected up to 32 fractions in \[0, 1)' $DIR/bad.log" "bad fraction: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" prune --fraction 0.5 --by ap --out "$DIR/half" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --by ap was accepted"; fail=1; }
check "grep -q \"'ap': expected rate, wina or attribution\" $DIR/bad.log" "bad --by: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" prune --out "$DIR/half" > "$DIR/bad.log" 2>&1 && { echo "FAIL: no --fraction was accepted"; fail=1; }
check "grep -q -- '--fraction F is needed' $DIR/bad.log" "missing --fraction: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" prune --fraction 0.5 --finetune -1 --out "$DIR/half" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --finetune -1 was accepted"; fail=1; }
check "grep -q -- '--finetune' $DIR/bad.log" "bad --finetune: $(cat $DIR/bad.log)"
check "cmp -s $DIR/before.json $DIR/half/result.json" "a refused run changed an earlier result.json"
[ $fail = 0 ] && echo "ok: soma dissect prune"
exit $fail
