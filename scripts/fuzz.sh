#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS — run every libFuzzer harness of BUILD for SECONDS,
# each from a seed corpus: the network files of examples/ and tests/ for
# fuzz_netfile, models trained here by BUILD's soma for fuzz_model_file, plus
# the committed regression inputs in fuzz/regress/. Prints each harness's
# executions; a crash leaves its input in fuzz/findings/ and fails.
set -eu
cd "$(dirname "$0")/.."
B=${1:?build folder}; S=${2:-60}
work=$(mktemp -d /tmp/soma-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/netfile" "$work/model_file" fuzz/findings
cp examples/*.yaml tests/fidelity/*.yaml "$work/netfile/" 2>/dev/null || true
cp fuzz/regress/netfile/* "$work/netfile/" 2>/dev/null || true
cp fuzz/regress/model_file/* "$work/model_file/" 2>/dev/null || true
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
for h in netfile model_file; do
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
