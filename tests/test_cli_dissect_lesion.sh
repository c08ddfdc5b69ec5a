#!/bin/bash
# test_cli_dissect_lesion.sh — `soma dissect FILE.yaml lesion|stimulate` on
# a small simulated circuit (200 + 50 Poisson-driven iaf_psc_delta neurons,
# under a second): the lesioned neurons are silent in the window and fire
# around it; a current above rheobase makes the stimulated neurons fire in
# the window only; result.json, raster.png and rates.png are written; bad
# options are named with exit status 2, and a failed run leaves an earlier
# result.json as it was.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-lesion-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
cat > "$DIR/net.yaml" <<'YAML'
params:
  J: 0.5mV
network:
  dt: 0.1ms
  populations:
    exc: {model: iaf_psc_delta, size: 200, V_m: "uniform(-70mV, -55mV)"}
    inh: {model: iaf_psc_delta, size: 50, V_m: "uniform(-70mV, -55mV)"}
  projections:
    - {from: exc, to: [exc, inh], connect: {rule: fixed_indegree, k: 20}, weight: J, delay: 1.5ms}
    - {from: inh, to: [exc, inh], connect: {rule: fixed_indegree, k: 5}, weight: "-4*J", delay: 1.5ms}
  inputs:
    - {to: [exc, inh], poisson: {rate: 3kHz, weight: J}}
simulate:
  time: 500ms
  warmup: 100ms
  seed: 2
YAML

"$BIN" dissect "$DIR/net.yaml" lesion --pop exc --fraction 0.25 --window 200:400 --seed 4 --threads 2 --out "$DIR/les" \
    > "$DIR/les.log" 2>&1 || { echo "FAIL: dissect lesion"; cat "$DIR/les.log"; fail=1; }
check "[ -s $DIR/les/raster.png ] && [ -s $DIR/les/rates.png ]" "lesion wrote no raster.png / rates.png"
check "json $DIR/les/result.json 'r[\"command\"] == \"lesion\" and r[\"n\"] == 50 and len(r[\"neurons\"]) == 50 and r[\"windows_ms\"] == {\"before\": [100, 200], \"during\": [200, 400], \"after\": [400, 600]} and r[\"chosen\"][\"rate_hz\"][\"during\"] == 0 and r[\"chosen\"][\"rate_hz\"][\"before\"] > 1 and r[\"chosen\"][\"rate_hz\"][\"after\"] > 1 and set(r[\"populations\"]) == {\"exc\", \"inh\"}' | grep -q True" \
      "lesion result.json: $(head -c 900 $DIR/les/result.json)"
check "grep -q '(lesioned)' $DIR/les.log" "no table printed: $(cat $DIR/les.log)"

"$BIN" dissect "$DIR/net.yaml" stimulate --pop inh --neurons 0,1 --window 300:350 --current 2nA --t 450 --out "$DIR/stim" \
    > "$DIR/stim.log" 2>&1 || { echo "FAIL: dissect stimulate"; cat "$DIR/stim.log"; fail=1; }
# 2 nA into 250 pF / 10 ms: R I = 80 mV over a 15 mV gap, ISI = 2 + 10 ln(80/65) = 4.08 ms, 245 Hz
# alone (the network's input adds a little; the exact case is in test_dissect_lesion)
check "json $DIR/stim/result.json 'r[\"command\"] == \"stimulate\" and r[\"stimulus\"] == {\"kind\": \"current\", \"current_pa\": 2000} and r[\"neurons\"] == [0, 1] and 230 < r[\"chosen\"][\"rate_hz\"][\"during\"] < 300 and r[\"chosen\"][\"rate_hz\"][\"before\"] < 100' | grep -q True" \
      "stimulate result.json: $(head -c 900 $DIR/stim/result.json)"
"$BIN" dissect "$DIR/net.yaml" stimulate --pop inh --neurons 3 --window 300:350 --rate 500Hz --weight 20 --t 450 --out "$DIR/poi" \
    > "$DIR/poi.log" 2>&1 || { echo "FAIL: dissect stimulate --rate"; cat "$DIR/poi.log"; fail=1; }
check "json $DIR/poi/result.json 'r[\"stimulus\"][\"kind\"] == \"poisson\" and r[\"chosen\"][\"rate_hz\"][\"during\"] > 150' | grep -q True" \
      "Poisson stimulate result.json: $(head -c 900 $DIR/poi/result.json)"

# bad options: named, exit status 2, the earlier result kept
cp "$DIR/les/result.json" "$DIR/before.json"
bad() { # expected text, then the arguments
    local want=$1; shift
    "$BIN" dissect "$DIR/net.yaml" "$@" --out "$DIR/les" > "$DIR/bad.log" 2>&1
    local rc=$?
    if [ $rc != 2 ] || ! grep -qF -- "$want" "$DIR/bad.log"; then
        echo "FAIL: '$*': exit $rc, expected 2 and \"$want\" in: $(cat "$DIR/bad.log")"; fail=1
    fi
}
bad "--pop 'nope'" lesion --pop nope --fraction 0.1 --window 200:300
bad "--fraction" lesion --pop exc --fraction 2 --window 200:300
bad "--neurons: index 400" lesion --pop exc --neurons 1,400 --window 200:300
bad "--neurons '1,x'" lesion --pop exc --neurons 1,x --window 200:300
bad "--window" lesion --pop exc --fraction 0.1 --window 300:200
bad "--window '200'" lesion --pop exc --fraction 0.1 --window 200
bad "--window" lesion --pop exc --fraction 0.1 --window 200:900
bad "--fraction F or --neurons" lesion --pop exc --window 200:300
bad "--current" lesion --pop exc --fraction 0.1 --window 200:300 --current 5pA
bad "--current I or --rate" stimulate --pop exc --fraction 0.1 --window 200:300
bad "--rate and --weight" stimulate --pop exc --fraction 0.1 --window 200:300 --rate 5Hz
bad "--current '5mV'" stimulate --pop exc --fraction 0.1 --window 200:300 --current 5mV
bad "unknown option" lesion --pop exc --fraction 0.1 --window 200:300 --bogus 1
check "cmp -s $DIR/before.json $DIR/les/result.json" "a failed run changed an earlier result.json"
"$BIN" dissect "$DIR/net.yaml" lesion --help | grep -q -- "--window T0:T1" || { echo "FAIL: lesion --help"; fail=1; }
[ $fail = 0 ] && echo "ok: soma dissect lesion|stimulate"
exit $fail
