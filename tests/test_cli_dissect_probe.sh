#!/bin/bash
# test_cli_dissect_probe.sh — `soma dissect MODEL select|ablate --by
# probe|impact` on a small Fashion-MNIST ReLU MLP trained here (64 hidden
# ann units, T = 1, 2000 training samples): result.json names the method,
# its values are sorted and finite (probe: z-scores; --z 3 keeps only z > 3),
# the PNG is written, ablate records "selected_by"; bad options are named.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-dissect-probe-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
cat > "$DIR/net.yaml" <<'YAML'
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: ann, size: 64, activation: relu}
    out:    {model: ann, size: 10, activation: linear}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 1, limit_train: 2000, limit_test: 400}
train: {epochs: 1, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/net.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; exit 1; }
M="$DIR/run/model.soma"

"$BIN" dissect "$M" select --by probe --group class=1 --top 5 --limit 300 --threads 2 --out "$DIR/probe" > "$DIR/p.log" 2> "$DIR/p.err"
check '[ $? -eq 0 ]' "select --by probe runs ($(cat "$DIR/p.err"))"
check 'grep -q "converged" "$DIR/p.err"' "the probe's fit is reported"
check '[ "$(json "$DIR/probe/result.json" "r[\"by\"], r[\"count\"]")" = "('"'"'probe'"'"', 5)" ]' "result.json: by probe, 5 neurons"
check '[ "$(json "$DIR/probe/result.json" "all(a[\"probe\"] >= b[\"probe\"] for a, b in zip(r[\"neurons\"], r[\"neurons\"][1:])) and r[\"neurons\"][0][\"probe\"] > 1")" = True ]' "probe z-scores sorted, the best above 1"
check '[ -s "$DIR/probe/probe.png" ]' "probe.png written"

"$BIN" dissect "$M" select --by probe --group class=1 --z 3 --limit 300 --threads 2 --out "$DIR/z" > "$DIR/z.log" 2> "$DIR/z.err"
rc=$?
if [ $rc -eq 0 ]; then
    check '[ "$(json "$DIR/z/result.json" "all(n[\"probe\"] > 3 for n in r[\"neurons\"])")" = True ]' "--z 3 keeps only z > 3"
else
    check 'grep -q "exceeds 3" "$DIR/z.err"' "--z 3 with no neuron above: named"
fi

"$BIN" dissect "$M" select --by impact --group class=1 --top 2 --candidates-pct 10 --limit 300 --threads 2 --out "$DIR/imp" > "$DIR/i.log" 2> "$DIR/i.err"
check '[ $? -eq 0 ]' "select --by impact runs ($(cat "$DIR/i.err"))"
check '[ "$(json "$DIR/imp/result.json" "r[\"by\"], r[\"count\"], r[\"neurons\"][0][\"impact\"] >= r[\"neurons\"][1][\"impact\"]")" = "('"'"'impact'"'"', 2, True)" ]' "result.json: by impact, 2 neurons sorted"
"$BIN" dissect "$M" select --by impact --group class=1 --top 20 --candidates-pct 10 --limit 300 --threads 2 --out "$DIR/imp2" > /dev/null 2> "$DIR/i2.err"
check '[ $? -ne 0 ] && grep -q "candidates-pct" "$DIR/i2.err"' "more neurons than candidates: named"

"$BIN" dissect "$M" ablate class=1 --by probe --top 3 --draws 1 --limit 300 --threads 2 --out "$DIR/abl" > "$DIR/a.log" 2> "$DIR/a.err"
check '[ $? -eq 0 ]' "ablate --by probe runs ($(cat "$DIR/a.err"))"
check 'grep -q "\"selected_by\": \"probe\"" "$DIR/abl/result.json"' "ablate result.json: selected_by probe"

"$BIN" dissect "$M" select --by ap --z 3 --group class=1 > /dev/null 2> "$DIR/e1"
check '[ $? -eq 2 ] && grep -q "\-\-z is an option of --by probe" "$DIR/e1"' "--z without --by probe is refused"
"$BIN" dissect "$M" select --by impact --candidates-pct 0 --group class=1 > /dev/null 2> "$DIR/e2"
check '[ $? -eq 2 ] && grep -q "\-\-candidates-pct .0.: expected a number in (0, 100\]" "$DIR/e2"' "--candidates-pct 0 is named"
"$BIN" dissect "$M" select --by probe --l2 -1 --group class=1 > /dev/null 2> "$DIR/e3"
check '[ $? -eq 2 ] && grep -q "\-\-l2" "$DIR/e3"' "--l2 -1 is named"
"$BIN" dissect "$M" select --by probes --group class=1 > /dev/null 2> "$DIR/e4"
check '[ $? -eq 2 ] && grep -q "probe or impact" "$DIR/e4"' "an unknown --by lists probe and impact"
exit $fail
