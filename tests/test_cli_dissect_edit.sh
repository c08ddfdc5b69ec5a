#!/bin/bash
# test_cli_dissect_edit.sh — `soma dissect MODEL edit` on a small
# Fashion-MNIST model trained here (64 hidden LIF neurons, 2000 training
# samples, a few seconds): suppressing class 1 through its output neuron
# lowers class 1's test accuracy; result.json's parameter counts are the
# set's by hand (65 for out:1; 785 per hidden neuron) with nothing outside
# it changed; edited.soma loads and `soma eval` gives the accuracy
# result.json reports; edit.png is written; bad arguments are refused
# naming the option or the neuron, and leave an earlier result alone.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-edit-XXXXXX)
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

"$BIN" dissect "$M" edit --neurons out:1 --group class=1 --goal suppress --threads 2 --out "$DIR/sup" > "$DIR/sup.log" 2> "$DIR/sup.err" \
    || { echo "FAIL: dissect edit"; cat "$DIR/sup.log" "$DIR/sup.err"; fail=1; }
check "[ -s $DIR/sup/edited.soma ] && [ -s $DIR/sup/edit.png ] && [ -s $DIR/sup/result.json ]" "files: $(ls $DIR/sup)"
check "grep -q 'edit ' $DIR/sup.err" "no training progress on stderr"
check "json $DIR/sup/result.json 'r[\"command\"] == \"edit\" and r[\"goal\"] == \"suppress\" and r[\"class\"] == 1 and r[\"neurons\"] == [\"out:1\"] and r[\"params_total\"] == 50890 and r[\"params_selected\"] == 65 and 0 < r[\"params_changed\"] <= 65 and r[\"params_changed_outside\"] == 0 and len(r[\"class_accuracy_after\"]) == 10' | grep -q True" \
      "result.json: $(cat $DIR/sup/result.json)"
check "json $DIR/sup/result.json 'r[\"target_accuracy_after\"] < r[\"target_accuracy_before\"] - 0.1 and r[\"target_accuracy_before\"] == r[\"class_accuracy_before\"][1] and r[\"others_mean_abs_change\"] < 0.1' | grep -q True" \
      "suppress did not lower class 1 alone: $(cat $DIR/sup.log)"
"$BIN" eval "$DIR/sup/edited.soma" --threads 2 > "$DIR/eval.log" 2>&1 || { echo "FAIL: soma eval of edited.soma"; cat "$DIR/eval.log"; fail=1; }
acc=$(json $DIR/sup/result.json '"%.2f" % (100 * r["accuracy_after"])')
check "grep -q \"test accuracy: $acc%\" $DIR/eval.log" "soma eval of edited.soma ($(cat $DIR/eval.log)) is not result.json's $acc%"

# two hidden neurons, enhance: 2 x (784 + 1) parameters learn
"$BIN" dissect "$M" edit --neurons hidden:3,9 --group class=6 --goal enhance --epochs 1 --lr 1e-3 --train-limit 500 --limit 200 --threads 2 --out "$DIR/enh" > "$DIR/enh.log" 2>&1 \
    || { echo "FAIL: dissect edit enhance"; cat "$DIR/enh.log"; fail=1; }
check "json $DIR/enh/result.json 'r[\"params_selected\"] == 1570 and r[\"params_changed_outside\"] == 0 and r[\"train_samples\"] == 500 and r[\"enhance_weight\"] == 4 and r[\"lr\"] == 0.001' | grep -q True" \
      "enhance result.json: $(cat $DIR/enh/result.json)"

# refusals: named, exit 2 (usage) or 1, the earlier result untouched
cp "$DIR/sup/result.json" "$DIR/before.json"
bad() { # expected-text args...
    local want="$1"; shift
    "$BIN" dissect "$M" edit "$@" --threads 2 --out "$DIR/sup" > "$DIR/bad.log" 2>&1 && { echo "FAIL: accepted: $*"; fail=1; }
    check "grep -q -- \"$want\" $DIR/bad.log" "'$*' did not say '$want': $(cat $DIR/bad.log)"
}
bad "index 64 of hidden" --neurons hidden:64 --group class=1
bad "in\[3\] is an input neuron" --neurons in:3 --group class=1
bad "listed twice" --neurons hidden:2,2 --group class=1
bad "neurons POP:I,J" --group class=1
bad "group 'class=x'" --neurons hidden:1 --group class=x
bad "class=10: expected a class from 0 to 9" --neurons hidden:1 --group class=10
bad "goal 'erase'" --neurons hidden:1 --group class=1 --goal erase
bad "lr '-1'" --neurons hidden:1 --group class=1 --lr -1
bad "epochs" --neurons hidden:1 --group class=1 --epochs 0
check "cmp -s $DIR/sup/result.json $DIR/before.json" "a refused run changed result.json"
"$BIN" dissect "$M" edit --help | grep -q -- "--goal" || { echo "FAIL: edit --help"; fail=1; }
exit $fail
