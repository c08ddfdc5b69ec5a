#!/bin/bash
# test_cli_train_sparse.sh — `soma train` on a network file with sparse
# projections (a fixed_probability one from the input, a fixed_indegree one
# to the output), then `soma sim model.soma`: the trained model gives the
# trainer's output counts in the simulator, and the saved input weights are
# zero off the drawn synapses. A delay the trainer cannot run is refused
# with the file's line, the projection and the delay.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-train-sparse-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
cat > "$DIR/sparse.yaml" <<'YAML'
network:
  populations:
    in: {model: input, size: 784}
    h: {model: lif, size: 60, beta: 0.9}
    out: {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: h, connect: {rule: fixed_probability, p: 0.1}, weight: "uniform(-0.12, 0.12)"}
    - {from: h, to: out, connect: {rule: fixed_indegree, k: 20}, weight: "uniform(-0.3, 0.3)"}
data: {dataset: fashion-mnist, encoding: rate, steps: 10, limit_train: 640, limit_test: 40}
train: {epochs: 1, batch: 64, threads: 2}
YAML
"$BIN" train "$DIR/sparse.yaml" --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: train"; cat "$DIR/train.log"; fail=1; }
check "grep -q 'test acc' $DIR/train.log" "no test accuracy: $(cat $DIR/train.log)"
"$BIN" sim "$DIR/run/model.soma" --limit 40 --threads 2 > "$DIR/sim.log" 2>&1 || { echo "FAIL: soma sim model.soma"; cat "$DIR/sim.log"; fail=1; }
check "grep -q '40 of 40 with identical output counts' $DIR/sim.log" "soma sim model.soma: $(cat $DIR/sim.log)"
# The saved in -> h weights: about 10 % nonzero (784 x 60 pairs at p = 0.1).
nz=$(/usr/bin/python3 - "$DIR/run/model.soma" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
name = b'in->h.weight'
i = b.index(name) + len(name)
r, c = struct.unpack('<QQ', b[i:i + 16])
w = struct.unpack('<%df' % (r * c), b[i + 16:i + 16 + 4 * r * c])
print(sum(1 for x in w if x != 0.0) / (r * c))
PY
)
check "awk 'BEGIN{exit !(${nz:-0} > 0.08 && ${nz:-0} < 0.12)}'" "nonzero fraction of in->h.weight: ${nz:-?}"
# A delay of two steps is refused by name, with its line.
sed 's/weight: "uniform(-0.3, 0.3)"}/weight: "uniform(-0.3, 0.3)", delay: 0.2ms}/' "$DIR/sparse.yaml" > "$DIR/delay.yaml"
if "$BIN" train "$DIR/delay.yaml" --out "$DIR/run2" > "$DIR/delay.log" 2>&1; then echo "FAIL: a 0.2 ms delay was trained"; fail=1; fi
check "grep -q 'delay.yaml:8: projection h -> out: delay 0.2 ms' $DIR/delay.log" "delay refusal: $(cat $DIR/delay.log)"
[ $fail = 0 ] && echo "test_cli_train_sparse: all passed"
exit $fail
