#!/bin/bash
# test_one_network.sh — the acceptance run of the one-network redesign, from
# the command line: examples/fmnist-iaf.yaml (NEST's iaf_psc_exp neurons)
#   1. simulates with `soma sim` (weights as drawn, 100 test samples);
#   2. trains with `soma train` on Fashion-MNIST to at least 80 % test
#      accuracy after 5 epochs (about 25 s on 2 threads);
#   3. runs, trained, in `soma sim` with the trainer's output spike counts on
#      100 test samples (at least 97 of 100 identical: see test_sim_trained.c
#      for the tolerance).
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
EX=${SOMA_EXAMPLES:?SOMA_EXAMPLES not set}
DIR=$(mktemp -d /tmp/soma-one-net-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
"$BIN" sim "$EX/fmnist-iaf.yaml" --threads 2 > "$DIR/sim0.log" 2>&1 || { echo "FAIL: soma sim fmnist-iaf.yaml"; cat "$DIR/sim0.log"; fail=1; }
check "grep -q 'simulated 100 test samples' $DIR/sim0.log" "untrained simulation: $(cat $DIR/sim0.log)"
"$BIN" train "$EX/fmnist-iaf.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 || { echo "FAIL: soma train"; cat "$DIR/train.log"; fail=1; }
acc=$(grep -o 'test accuracy: [0-9.]*' "$DIR/train.log" | grep -o '[0-9.]*$')
echo "fmnist-iaf: test accuracy after 5 epochs: ${acc:-?} %"
check "awk 'BEGIN { exit !(${acc:-0} >= 80) }'" "test accuracy ${acc:-?} % after 5 epochs; expected at least 80 %"
"$BIN" sim "$DIR/run/model.soma" --threads 2 > "$DIR/sim.log" 2>&1 || { echo "FAIL: soma sim model.soma"; cat "$DIR/sim.log"; fail=1; }
cat "$DIR/sim.log"
same=$(grep -o '[0-9]* of 100 with identical' "$DIR/sim.log" | grep -o '^[0-9]*')
check "[ ${same:-0} -ge 97 ]" "trained model in the simulator: ${same:-?} of 100 samples with the trainer's counts"
[ $fail = 0 ] && echo "test_one_network: all passed"
exit $fail
