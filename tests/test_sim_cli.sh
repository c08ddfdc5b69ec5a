#!/bin/bash
# test_sim_cli.sh — `soma sim` from the command line: it writes metrics.json
# with every field the issue names, spikes (binary and CSV), plots, state and
# population-rate traces; 1 and 2 threads give the same spike fingerprint;
# --no-record still reports rates; bad files fail with file:line and a
# nonzero exit status, and a failed run leaves an earlier result in place.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-sim-cli-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
cat > "$DIR/net.yaml" <<'YAML'
# a small balanced network with Poisson drive
params: {J: 40pA}
network:
  dt: 0.1ms
  populations:
    e: {model: iaf_psc_exp, size: 400, V_m: "uniform(-70mV, -55mV)"}
    i: {model: iaf_psc_exp, size: 100, V_m: "uniform(-70mV, -55mV)"}
  projections:
    - {from: e, to: [e, i], connect: {rule: fixed_indegree, k: 40}, weight: J, delay: "uniform(1ms, 2ms)"}
    - {from: i, to: [e, i], connect: {rule: fixed_indegree, k: 10}, weight: "-4*J", delay: 0.8ms}
  inputs:
    - {to: [e, i], poisson: {rate: 9kHz, weight: 20pA}}
simulate:
  time: 300ms
  warmup: 50ms
  record: {spikes: all, state: [{pop: e, var: V_m, neurons: 3, every: 0.5ms}]}
YAML
for t in 1 2; do
    if ! "$BIN" sim "$DIR/net.yaml" --threads $t --csv --out "$DIR/t$t" > "$DIR/t$t.log" 2>&1; then
        echo "FAIL: soma sim --threads $t"; cat "$DIR/t$t.log"; fail=1
    fi
done
M=$DIR/t1/metrics.json
for key in neurons synapses spikes rate_hz build_seconds sim_seconds real_time_factor bytes_per_synapse \
           peak_rss_bytes spikes_sha256 cv_isi fano synchrony; do
    check "grep -q '\"$key\"' $M" "metrics.json lacks $key"
done
check "grep -q '\"neurons\": 500' $M" "neurons != 500"
check "grep -q '\"synapses\": 25000' $M" "synapses != 25000"
for f in spikes.bin spikes.csv raster.png rates.png pop_rate.csv state_e_V_m.csv; do
    check "[ -s $DIR/t1/$f ]" "$f missing"
done
# 350 ms (warm-up included) at 0.5 ms: 700 samples + header; 3 neurons + time.
check "[ \$(wc -l < $DIR/t1/state_e_V_m.csv) -eq 701 ]" "state_e_V_m.csv has $(wc -l < $DIR/t1/state_e_V_m.csv) lines"
check "head -1 $DIR/t1/state_e_V_m.csv | grep -q '^time_ms,n0,n1,n2$'" "state header"
sha1=$(grep -o '"spikes_sha256": "[0-9a-f]*"' $DIR/t1/metrics.json)
sha2=$(grep -o '"spikes_sha256": "[0-9a-f]*"' $DIR/t2/metrics.json)
check "[ -n \"$sha1\" ] && [ \"$sha1\" = \"$sha2\" ]" "1 and 2 threads differ: $sha1 vs $sha2"
# The CSV holds every spike in metrics.json (warm-up included).
n=$(grep -o '"spikes": [0-9]*' $M | grep -o '[0-9]*$')
check "[ \$(( \$(wc -l < $DIR/t1/spikes.csv) - 1 )) -eq $n ]" "spikes.csv has not $n spikes"
# The binary file: magic, dt, count, then pairs.
check "[ \$(head -c 8 $DIR/t1/spikes.bin) = SOMASPK1 ]" "spikes.bin magic"
check "[ \$(stat -c %s $DIR/t1/spikes.bin) -eq \$((24 + 8 * n)) ]" "spikes.bin size"
# --no-record: same rates, no spike files.
"$BIN" sim "$DIR/net.yaml" --threads 2 --no-record --out "$DIR/nr" > /dev/null 2>&1 || { echo "FAIL: --no-record run"; fail=1; }
r1=$(grep -o '"rate_hz": {[^}]*}' $M); r2=$(grep -o '"rate_hz": {[^}]*}' $DIR/nr/metrics.json)
check "[ \"$r1\" = \"$r2\" ]" "--no-record rates differ: $r1 / $r2"
check "[ ! -e $DIR/nr/spikes.bin ]" "--no-record wrote spikes"
sha3=$(grep -o '"spikes_sha256": "[0-9a-f]*"' $DIR/nr/metrics.json)
check "[ \"$sha1\" = \"$sha3\" ]" "--no-record fingerprint differs"
# Bad input: file:line, nonzero exit, the earlier result untouched.
cp $M "$DIR/keep.json"
sed 's/delay: 0.8ms/delay: 0.05ms/' "$DIR/net.yaml" > "$DIR/bad.yaml"
if "$BIN" sim "$DIR/bad.yaml" --out "$DIR/t1" > "$DIR/bad.log" 2>&1; then echo "FAIL: bad delay accepted"; fail=1; fi
check "grep -q 'bad.yaml:10:.*shorter than the time step' $DIR/bad.log" "bad delay message: $(cat $DIR/bad.log)"
check "cmp -s $M $DIR/keep.json" "a failed run changed metrics.json"
sed 's/k: 10}/k: 10, p: 2}/; s/rule: fixed_indegree, k: 10, p: 2/rule: fixed_probability, p: 2/' "$DIR/net.yaml" > "$DIR/bad2.yaml"
if "$BIN" sim "$DIR/bad2.yaml" --out "$DIR/b2" > "$DIR/bad2.log" 2>&1; then echo "FAIL: p = 2 accepted"; fail=1; fi
check "grep -q 'bad2.yaml:10:.*outside \[0, 1\]' $DIR/bad2.log" "p message: $(cat $DIR/bad2.log)"
if "$BIN" sim "$DIR/net.yaml" --param nosuch=1 --out "$DIR/b3" > "$DIR/bad3.log" 2>&1; then echo "FAIL: unknown param accepted"; fail=1; fi
check "grep -q \"no 'nosuch'\" $DIR/bad3.log" "param message: $(cat $DIR/bad3.log)"
# --param overrides: a stronger drive fires more.
"$BIN" sim "$DIR/net.yaml" --param J=60pA --no-record --out "$DIR/strong" > /dev/null 2>&1
s1=$(grep -o '"spikes": [0-9]*' $DIR/nr/metrics.json | grep -o '[0-9]*$'); s2=$(grep -o '"spikes": [0-9]*' $DIR/strong/metrics.json | grep -o '[0-9]*$')
check "[ ${s2:-0} -gt ${s1:-0} ]" "--param J=60pA did not change the run ($s1 vs $s2)"
# record.spikes as a list: only those populations' spikes are kept, rates of all.
sed 's/record: {spikes: all,/record: {spikes: [i],/' "$DIR/net.yaml" > "$DIR/sub.yaml"
"$BIN" sim "$DIR/sub.yaml" --csv --out "$DIR/sub" > "$DIR/sub.log" 2>&1 || { echo "FAIL: record list run"; cat "$DIR/sub.log"; fail=1; }
check "awk -F, 'NR > 1 && \$2 < 400 { bad = 1 } END { exit bad }' $DIR/sub/spikes.csv" "record.spikes [i] kept spikes of e"
check "[ \$(wc -l < $DIR/sub/spikes.csv) -gt 10 ]" "record.spikes [i] kept no spikes of i"
r3=$(grep -o '"rate_hz": {[^}]*}' $DIR/sub/metrics.json)
check "[ \"$r1\" = \"$r3\" ]" "record list changed the rates: $r1 / $r3"
check "grep -q '\"cv_isi\": {\"e\": null' $DIR/sub/metrics.json" "unrecorded population has statistics"
# Ctrl-C: the run stops, still writes what was simulated, exits 130.
"$BIN" sim "$DIR/net.yaml" --time 10000s --no-record --out "$DIR/int" > "$DIR/int.log" 2>&1 &
pid=$!
for i in $(seq 1 50); do sleep 0.1; grep -q "synapses" "$DIR/int.log" 2>/dev/null && break; done
sleep 0.5
kill -INT $pid
wait $pid
st=$?
check "[ $st -eq 130 ]" "Ctrl-C exit status $st, expected 130"
check "grep -q '\"cancelled\": true' $DIR/int/metrics.json" "Ctrl-C: metrics.json missing or not marked cancelled"
t=$(grep -o '"time_ms": [0-9.e+]*' $DIR/int/metrics.json | grep -o '[0-9.e+]*$')
check "awk 'BEGIN{exit !(${t:-0} > 0 && ${t:-0} < 1e7)}'" "Ctrl-C: simulated time ${t:-?} ms"
# A trained model in the simulator: the trainer's output counts on test samples.
cat > "$DIR/tiny.yaml" <<'EOF2'
network:
  populations:
    in: {model: input, size: 784}
    h: {model: lif, size: 40, beta: 0.9, recurrent: true}
    out: {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: h}
    - {from: h, to: out}
data: {dataset: fashion-mnist, encoding: rate, steps: 10, limit_train: 640, limit_test: 30}
train: {epochs: 1, batch: 64, threads: 2}
EOF2
"$BIN" train "$DIR/tiny.yaml" --out "$DIR/tiny" > "$DIR/tiny.log" 2>&1 || { echo "FAIL: train tiny"; cat "$DIR/tiny.log"; fail=1; }
"$BIN" sim "$DIR/tiny/model.soma" --limit 30 --threads 2 > "$DIR/simm.log" 2>&1 || { echo "FAIL: soma sim model.soma"; cat "$DIR/simm.log"; fail=1; }
check "grep -q '30 of 30 with identical output counts' $DIR/simm.log" "soma sim model.soma: $(cat $DIR/simm.log)"
if "$BIN" sim "$DIR/tiny/model.soma" --bogus 1 > "$DIR/simm2.log" 2>&1; then echo "FAIL: bad option accepted"; fail=1; fi
check "grep -q \"unknown option '--bogus'\" $DIR/simm2.log" "bad option message: $(cat $DIR/simm2.log)"
[ $fail = 0 ] && echo "test_sim_cli: all passed"
exit $fail
