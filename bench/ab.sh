#!/usr/bin/env bash
# ab.sh — same-run A/B of this working tree against an earlier commit:
# both are built (Release), then the same workloads run alternately, REPS
# times each, and the medians and their ratio are printed and stored in
# bench/results/ab.json with both commits, whether sources were modified,
# and the machine.
#   bench/ab.sh [REF] [REPS]     (REF defaults to the commit before this work)
# Workloads (2 threads each):
#   train: bench_trainer examples/fmnist-lif.yaml 40 batches (samples/s)
#   sim:   soma sim examples/cuba.yaml and examples/brunel.yaml, --no-record
#          (wall seconds of the simulation itself, from metrics.json)
set -eu
cd "$(dirname "$0")/.."
REF=${1:-b4410c8}
REPS=${2:-5}
A=/tmp/soma-ab-$(git rev-parse --short "$REF")
if [ ! -x "$A/build/soma" ]; then
  rm -rf "$A"
  git worktree add -f --detach "$A" "$REF" >/dev/null
  cmake -S "$A" -B "$A/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$A/build" -j "$(nproc)" --target soma_cli bench_trainer >/dev/null
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target soma_cli bench_trainer >/dev/null
out=$(mktemp -d)
train() { "$1/bench_trainer" examples/fmnist-lif.yaml 40 2 2>/dev/null | head -1 | sed 's/.*: \([0-9.]*\) train samples.*/\1/'; }
sim() {
  "$1/soma" sim "examples/$2.yaml" --no-record --threads 2 --out "$out/s" >/dev/null 2>&1
  grep -o '"sim_seconds": [0-9.e+-]*' "$out/s/metrics.json" | grep -o '[0-9.e+-]*$'
}
declare -A R
for k in $(seq 1 "$REPS"); do
  for side in A B; do
    dir=$([ $side = A ] && echo "$A/build" || echo build)
    R[train_$side]+="$(train "$dir") "
    R[cuba_$side]+="$(sim "$dir" cuba) "
    R[brunel_$side]+="$(sim "$dir" brunel) "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
commit=$(git rev-parse --short HEAD); dirty=$([ -n "$(git status --porcelain -- src include cli)" ] && echo true || echo false)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  printf '{"ref": "%s", "commit": "%s", "sources_modified": %s, "machine": "%s, %s cores", "reps": %s, "results": {\n' \
    "$(git rev-parse --short "$REF")" "$commit" "$dirty" "$cpu" "$(nproc)" "$REPS"
  first=1
  for w in train cuba brunel; do
    a=$(echo "${R[${w}_A]}" | median); b=$(echo "${R[${w}_B]}" | median)
    unit=$([ $w = train ] && echo "samples/s" || echo "s")
    ratio=$(awk -v a="$a" -v b="$b" -v w=$w 'BEGIN { printf "%.3f", w == "train" ? b / a : a / b }')
    [ $first = 1 ] || printf ',\n'; first=0
    printf '  "%s": {"unit": "%s", "ref_median": %s, "this_median": %s, "speed_ratio_this_over_ref": %s, "ref_runs": "%s", "this_runs": "%s"}' \
      "$w" "$unit" "$a" "$b" "$ratio" "${R[${w}_A]% }" "${R[${w}_B]% }"
  done
  printf '\n}}\n'
} > "$out/ab.json"
mkdir -p bench/results && mv "$out/ab.json" bench/results/ab.json
cat bench/results/ab.json
rm -rf "$out"
