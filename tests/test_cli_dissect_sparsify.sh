#!/bin/bash
# test_cli_dissect_sparsify.sh — `soma dissect MODEL sparsify` on a small
# ReLU MLP trained here (784-64-10 `ann`, one step, 2000 training samples):
# result.json has a row per method and sparsity with its fields, sparsity 0
# keeps the dense accuracy and a zero error, WINA/topk at 0.9 drop at least
# 90 % of the inputs (and take the sparse product under --sparse-max 0.2),
# the PNG is written; the graded hidden layer also goes
# through stats, select and ablate; bad arguments are named.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-cli-sparsify-XXXXXX)
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
train: {epochs: 2, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/net.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; exit 1; }
M="$DIR/run/model.soma"

"$BIN" dissect "$M" sparsify --method wina,teal,topk --sparsity 0,0.5,0.9 --limit 300 --calib 500 --repeats 1 --sparse-max 0.2 \
    --threads 2 --out "$DIR/sp" > "$DIR/sp.log" 2> "$DIR/sp.err" || { echo "FAIL: dissect sparsify"; cat "$DIR/sp.log" "$DIR/sp.err"; fail=1; }
R=$DIR/sp/result.json
check "[ -s $DIR/sp/sparsify.png ]" "sparsify wrote no sparsify.png"
check "grep -q 'timing' $DIR/sp.err" "sparsify showed no progress on stderr"
check "[ \"\$(json $R 'r[\"command\"], r[\"samples\"], r[\"sites\"], len(r[\"results\"])')\" = \"('sparsify', 300, ['hidden->out'], 9)\" ]" \
      "sparsify result.json: $(json $R 'list(r.keys())' 2>&1)"
check "json $R 'all(set(x) >= {\"method\",\"sparsity\",\"accuracy\",\"achieved_sparsity\",\"relative_error\",\"eval_s\",\"speedup\",\"sparse_path_fraction\"} for x in r[\"results\"])' | grep -q True" \
      "sparsify: a result lacks a field"
check "json $R 'all(x[\"accuracy\"] == r[\"dense\"][\"accuracy\"] and x[\"relative_error\"] == 0 for x in r[\"results\"] if x[\"sparsity\"] == 0)' | grep -q True" \
      "sparsify: sparsity 0 changed the accuracy or the output"
check "json $R 'all(x[\"achieved_sparsity\"] >= 0.9 and x[\"relative_error\"] > 0 and x[\"sparse_path_fraction\"] == 1 for x in r[\"results\"] if x[\"sparsity\"] == 0.9 and x[\"method\"] != \"teal\")' | grep -q True" \
      "sparsify: WINA/topk at 0.9 dropped too little or skipped the sparse path"
check "json $R 'len([x for x in r[\"results\"] if x[\"method\"] == \"teal\" and \"teal_threshold\" in x]) == 3 and r[\"calibration_samples\"] == 500' | grep -q True" \
      "sparsify: TEAL thresholds or calibration samples missing"

# the graded (ReLU) hidden layer through stats, select and ablate
"$BIN" dissect "$M" stats --limit 200 --threads 2 --out "$DIR/stats" > "$DIR/stats.log" 2>&1 || { echo "FAIL: stats on the MLP"; cat "$DIR/stats.log"; fail=1; }
check "json $DIR/stats/result.json 'r[\"populations\"][0][\"graded\"]' | grep -qi true" "stats: the ReLU layer is not marked graded"
"$BIN" dissect "$M" select --by attribution --group class=1 --top 3 --limit 200 --threads 2 --out "$DIR/sel" > "$DIR/sel.log" 2>&1 \
    || { echo "FAIL: select on the MLP"; cat "$DIR/sel.log"; fail=1; }
"$BIN" dissect "$M" ablate class=1 --top 5 --draws 1 --limit 200 --threads 2 --out "$DIR/abl" > "$DIR/abl.log" 2>&1 \
    || { echo "FAIL: ablate on the MLP"; cat "$DIR/abl.log"; fail=1; }
check "[ -s $DIR/abl/ablate.png ]" "ablate on the MLP wrote no ablate.png"

# bad arguments are named, and no result is left behind
bad() { "$BIN" dissect "$M" sparsify "$@" --limit 10 --repeats 0 --out "$DIR/bad" > "$DIR/bad.log" 2>&1 && { echo "FAIL: accepted: $*"; fail=1; }
        check "grep -q -- \"\$BADMSG\" $DIR/bad.log" "no '$BADMSG' for: $* ($(cat $DIR/bad.log))"; }
BADMSG="wina, teal or topk" bad --method wanda --sparsity 0.5
BADMSG="fractions in \[0, 1)" bad --method wina --sparsity 1.5
BADMSG="--sparsity S" bad --method wina
BADMSG="hidden population" bad --method wina --sparsity 0.5 --site 'in->hidden'
BADMSG="no projection of that name" bad --method wina --sparsity 0.5 --site 'hidden->nope'
BADMSG="density from 0" bad --method wina --sparsity 0.5 --sparse-max 2
check "[ ! -e $DIR/bad/result.json ]" "a failed run wrote result.json"
exit $fail
