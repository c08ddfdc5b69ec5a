#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS — run every libFuzzer harness of BUILD for SECONDS,
# each from a seed corpus: the network files of examples/ and tests/ for
# fuzz_netfile, models trained here by BUILD's soma for fuzz_model_file,
# small valid files of each reader for fuzz_data (IDX plain and gzip, CSV,
# N-MNIST, spike files, edge lists), SHD file descriptions for fuzz_shd, plus the committed regression inputs in
# fuzz/regress/. Prints each harness's
# executions; a crash leaves its input in fuzz/findings/ and fails.
set -eu
cd "$(dirname "$0")/.."
B=${1:?build folder}; S=${2:-60}
work=$(mktemp -d /tmp/soma-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/netfile" "$work/model_file" "$work/data" "$work/shd" fuzz/findings
cp examples/*.yaml tests/fidelity/*.yaml "$work/netfile/" 2>/dev/null || true
cp fuzz/regress/netfile/* "$work/netfile/" 2>/dev/null || true
cp fuzz/regress/model_file/* "$work/model_file/" 2>/dev/null || true
cp fuzz/regress/data/* "$work/data/" 2>/dev/null || true
# fuzz_shd seeds: file descriptions (see fuzz/fuzz_shd.c), a good one and a broken one.
cp fuzz/regress/shd/* "$work/shd/" 2>/dev/null || true
# fuzz_data seeds: a selector byte, then a small valid file of each reader
# (IDX: a cut byte, 2 images of 2x2, then 2 labels).
idx='\x80\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x08\x01\x00\x00\x00\x02\x01\x00'
printf "\x00$idx" > "$work/data/idx"
printf "\x01$idx" > "$work/data/idx-gz"
printf '\x02label,a@0,b@0,a@1,b@1\n1,0.5,0.25,1,2\n0,-1,0,0.5,3\n' > "$work/data/csv"
printf '\x03\x01\x02\x00\x00\x10\x05\x21\x80\x01\x00\x20\x20\x80\x02\x00' > "$work/data/nmnist"
printf '\x04# neuron,time_ms\n0,1.0\n3,2.5\n7,0.3\n' > "$work/data/spikes"
printf '\x05pre,post,weight,delay_ms\n0,1\n2,3,1.5,2\n5,4,-2,1\n' > "$work/data/edges"
cat > "$work/tiny.yaml" <<'YAML'
network:
  populations:
    in: {model: input, size: 9}
    h: {model: lif, size: 6, recurrent: true, learn: {beta: neuron}}
    c: {model: cfc, size: 4}
    o: {model: iaf_psc_exp, size: 3, C_m: 2pF}
  projections:
    - {from: in, to: h}
    - {from: h, to: c}
    - {from: c, to: o}
data: {dataset: recall, encoding: sequence, steps: 6, limit_train: 16, limit_test: 8}
train: {epochs: 1, batch: 8}
YAML
"$B/soma" train "$work/tiny.yaml" --out "$work/tiny" >/dev/null 2>&1 && cp "$work/tiny/model.soma" "$work/model_file/tiny.soma"
status=0
for h in netfile model_file data shd; do
  exe="$B/fuzz_$h"
  [ -x "$exe" ] || { echo "missing $exe"; status=1; continue; }
  log="$work/$h.log"
  if "$exe" -max_total_time="$S" -max_len=65536 -timeout=20 -rss_limit_mb=4096 -artifact_prefix="fuzz/findings/$h-" \
        "$work/$h" > "$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1)
    echo "fuzz_$h: ${runs:-?} executions in ${S} s, no crash"
  else
    echo "fuzz_$h: FAILED (input in fuzz/findings/):"; grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5; status=1
  fi
done
exit $status
