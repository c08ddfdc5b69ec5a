#!/bin/bash
# test_cli_dissect.sh — `soma dissect MODEL stats|select|ablate` on a small
# Fashion-MNIST model trained here (64 hidden LIF neurons, 2000 training
# samples, a few seconds): each command writes result.json with its fields
# and its PNG (select --by attribution too, and ablate --by attribution
# ablates the neurons select chose); scale:1 changes no accuracy; bad
# arguments are named.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-dissect-XXXXXX)
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

"$BIN" dissect "$M" stats --limit 300 --threads 2 --out "$DIR/stats" > "$DIR/stats.log" 2> "$DIR/stats.err" \
    || { echo "FAIL: dissect stats"; cat "$DIR/stats.log" "$DIR/stats.err"; fail=1; }
check "[ -s $DIR/stats/selectivity.png ]" "stats wrote no selectivity.png"
check "grep -q 'stats *300/300 samples' $DIR/stats.err" "stats showed no progress on stderr"
check "[ \"\$(json $DIR/stats/result.json '\" \".join(map(str, (r[\"command\"], r[\"samples\"], len(r[\"populations\"]), r[\"populations\"][0][\"name\"], len(r[\"populations\"][0][\"rate\"]), len(r[\"populations\"][0][\"selectivity\"]))))')\" = \"stats 300 2 hidden 64 10\" ]" \
      "stats result.json: $(json $DIR/stats/result.json 'list(r.keys())' 2>&1)"
check "json $DIR/stats/result.json 'r[\"populations\"][0][\"dead_count\"] == len(r[\"populations\"][0][\"dead\"]) and \"top_samples\" in r[\"populations\"][0]' | grep -q True" "stats: dead list and count"

"$BIN" dissect "$M" select --by ap --group class=1 --top 3 --limit 300 --threads 2 --out "$DIR/select" > "$DIR/select.log" 2>&1 \
    || { echo "FAIL: dissect select"; cat "$DIR/select.log"; fail=1; }
check "[ -s $DIR/select/ap.png ]" "select wrote no ap.png"
check "json $DIR/select/result.json 'r[\"count\"] == 3 and r[\"group\"] == \"class=1\" and r[\"neurons\"][0][\"ap\"] >= r[\"neurons\"][2][\"ap\"] and r[\"neurons\"][0][\"pop\"] == \"hidden\"' | grep -q True" \
      "select result.json: $(cat $DIR/select/result.json)"

"$BIN" dissect "$M" select --by attribution --group class=1 --top 3 --limit 300 --threads 2 --out "$DIR/attr" > "$DIR/attr.log" 2> "$DIR/attr.err" \
    || { echo "FAIL: dissect select --by attribution"; cat "$DIR/attr.log" "$DIR/attr.err"; fail=1; }
check "[ -s $DIR/attr/attribution.png ]" "select --by attribution wrote no attribution.png"
check "grep -q 'attribute' $DIR/attr.err" "attribution showed no progress on stderr"
check "json $DIR/attr/result.json 'r[\"by\"] == \"attribution\" and r[\"count\"] == 3 and r[\"neurons\"][0][\"attribution\"] >= r[\"neurons\"][2][\"attribution\"] > 0 and r[\"neurons\"][0][\"pop\"] == \"hidden\"' | grep -q True" \
      "select --by attribution result.json: $(cat $DIR/attr/result.json)"
"$BIN" dissect "$M" ablate class=1 --by attribution --top 3 --draws 1 --limit 300 --threads 2 --out "$DIR/attrabl" > "$DIR/attrabl.log" 2>&1 \
    || { echo "FAIL: dissect ablate --by attribution"; cat "$DIR/attrabl.log"; fail=1; }
check "json $DIR/attrabl/result.json '(lambda a: a[\"result\"][\"selected_by\"] == \"attribution\" and [n[\"index\"] for n in a[\"neurons\"]] == [n[\"index\"] for n in json.load(open(\"$DIR/attr/result.json\"))[\"neurons\"]])(r[\"ablations\"][0])' | grep -q True" \
      "ablate --by attribution did not ablate select's neurons: $(head -c 900 $DIR/attrabl/result.json)"

"$BIN" dissect "$M" ablate class=1 --top-pct 10 --draws 2 --seed 3 --limit 300 --threads 2 --out "$DIR/ablate" > "$DIR/ablate.log" 2>&1 \
    || { echo "FAIL: dissect ablate"; cat "$DIR/ablate.log"; fail=1; }
check "[ -s $DIR/ablate/ablate.png ]" "ablate wrote no ablate.png"
check "json $DIR/ablate/result.json '(lambda a: a[\"neurons\"] == 7 and a[\"selected_by\"] == \"ap\" and a[\"draws\"] == 2 and len(a[\"class_after\"]) == 10 and r[\"mode\"] == \"zero\" and a[\"accuracy_control\"] is not None)(r[\"ablations\"][0][\"result\"])' | grep -q True" \
      "ablate result.json: $(head -c 600 $DIR/ablate/result.json)"

"$BIN" dissect "$M" ablate classes --top 2 --draws 1 --limit 200 --threads 2 --out "$DIR/matrix" > "$DIR/matrix.log" 2>&1 \
    || { echo "FAIL: dissect ablate classes"; cat "$DIR/matrix.log"; fail=1; }
check "json $DIR/matrix/result.json 'len(r[\"effect_matrix\"]) == 10 and len(r[\"effect_matrix\"][3]) == 10 and len(r[\"ablations\"]) == 10' | grep -q True" \
      "ablate classes: no 10 x 10 effect matrix"

"$BIN" dissect "$M" ablate hidden:0,1,2,3 --mode scale:1 --draws 0 --limit 200 --threads 2 --out "$DIR/same" > "$DIR/same.log" 2>&1 \
    || { echo "FAIL: dissect ablate scale:1"; cat "$DIR/same.log"; fail=1; }
check "json $DIR/same/result.json '(lambda a: a[\"selected_by\"] is None and a[\"accuracy_before\"] == a[\"accuracy_after\"] and a[\"class_before\"] == a[\"class_after\"])(r[\"ablations\"][0][\"result\"])' | grep -q True" \
      "scale:1 changed the accuracy: $(head -c 600 $DIR/same/result.json)"

# --select-on train:N: a second statistics pass over N train samples picks the
# neurons; the ablation is measured on the test split's --limit samples.
"$BIN" dissect "$M" ablate class=1 --top 3 --draws 1 --select-on train:300 --limit 200 --threads 2 --out "$DIR/seltrain" \
    > "$DIR/seltrain.log" 2> "$DIR/seltrain.err" || { echo "FAIL: ablate --select-on train:300"; cat "$DIR/seltrain.log" "$DIR/seltrain.err"; fail=1; }
check "grep -q 'stats *300/300 samples' $DIR/seltrain.err && grep -q 'stats *200/200 samples' $DIR/seltrain.err" \
      "--select-on train:300 made no 300-sample pass beside the 200 test samples: $(tr '\r' '\n' < $DIR/seltrain.err | grep -v '^ *$' | tail -5)"
check "json $DIR/seltrain/result.json 'r[\"ablations\"][0][\"result\"][\"neurons\"] == 3 and r[\"ablations\"][0][\"result\"][\"selected_on\"] == \"train:300\" and r[\"samples\"] == 200' | grep -q True" \
      "--select-on train: $(head -c 400 $DIR/seltrain/result.json)"
"$BIN" dissect "$M" ablate class=1 --select-on train:0 --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --select-on train:0 was accepted"; fail=1; }
check "grep -q 'expected train:N with N >= 1' $DIR/bad.log" "bad --select-on: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" ablate class=1 --select-on valid --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --select-on valid was accepted"; fail=1; }
check "grep -q 'expected test, train or train:N' $DIR/bad.log" "bad --select-on: $(cat $DIR/bad.log)"

"$BIN" dissect "$M" ablate hidden:99 --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: a neuron out of range was accepted"; fail=1; }
check "grep -q 'index 99 of hidden; expected 0 to 63' $DIR/bad.log" "bad index: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" ablate class=1 --mode half --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: mode half was accepted"; fail=1; }
check "grep -q 'expected zero, mean or scale:X' $DIR/bad.log" "bad mode: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" select --by magic --group class=1 --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: --by magic was accepted"; fail=1; }
check "grep -q 'expected ap or attribution' $DIR/bad.log" "bad --by: $(cat $DIR/bad.log)"
"$BIN" dissect "$M" select --group class=12 --limit 10 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: class 12 was accepted"; fail=1; }
check "grep -q 'class=K with K from 0 to 9' $DIR/bad.log" "bad class: $(cat $DIR/bad.log)"
[ $fail = 0 ] && echo "ok: soma dissect"
exit $fail
