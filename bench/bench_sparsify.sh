#!/bin/bash
# bench_sparsify.sh — speed of dense vs sparsified eval, in one invocation:
#  1. the sparsified product itself (build/bench_sparsify): BLAS over all
#     1000 inputs against the trainer's sparse path (index of the kept
#     inputs + gather), 1000 -> 10 and 1000 -> 1000, rows of one chunk
#     (32: T = 1; 50: T = 25), median of 5 runs per density;
#  2. the whole eval (`soma dissect MODEL sparsify --repeats 5`: medians of
#     5 evals of the test split, same batch and threads) with the default
#     threshold, and with --sparse-max 0 (the same masks, the dense
#     product), so the product's share of the whole eval is visible.
# Records the commit, whether tracked sources are modified, the CPU, the
# load before and after. Usage:
#   bench/bench_sparsify.sh [MODEL.soma ...]   (default runs/fmnist-ann/model.soma)
# Options via the environment: THREADS (2), LIMIT (0 = all), METHOD (wina),
# SPARSITY (0.5,0.9), OUT (runs/bench-sparsify).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SOMA_BIN:-$ROOT/build/soma}
KB=${SOMA_BENCH_SPARSIFY:-$ROOT/build/bench_sparsify}
THREADS=${THREADS:-2} LIMIT=${LIMIT:-0} METHOD=${METHOD:-wina} SPARSITY=${SPARSITY:-0.5,0.9}
OUT=${OUT:-runs/bench-sparsify}
[ $# -gt 0 ] || set -- runs/fmnist-ann/model.soma
for x in "$BIN" "$KB"; do [ -x "$x" ] || { echo "bench_sparsify: $x not built (cmake --build build)"; exit 2; }; done
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:   $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then echo "sources:  modified"; else echo "sources:  clean"; fi
echo "machine:  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cpus"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (before)"
echo
echo "== 1. the product itself (single thread, median of 5 runs)"
"$KB" 1000 32 5
"$KB" 1000 50 5 | tail -n +3
for M in "$@"; do
    [ -f "$M" ] || { echo "bench_sparsify: no model $M"; exit 2; }
    echo
    echo "== 2. whole eval of $M: $METHOD at $SPARSITY, $THREADS threads, median of 5"
    L=(); [ "$LIMIT" != 0 ] && L=(--limit "$LIMIT")
    name=$(basename "$(dirname "$M")")
    echo "-- default threshold (SOMA_TRAIN_MASK_SPARSE_DEFAULT)"
    "$BIN" dissect "$M" sparsify --method "$METHOD" --sparsity "$SPARSITY" --repeats 5 --threads "$THREADS" "${L[@]}" \
        --out "$OUT/$name-default" 2>/dev/null | tail -n +2
    echo "-- --sparse-max 0 (same masks, dense product)"
    "$BIN" dissect "$M" sparsify --method "$METHOD" --sparsity "$SPARSITY" --repeats 5 --threads "$THREADS" "${L[@]}" \
        --sparse-max 0 --out "$OUT/$name-dense-product" 2>/dev/null | tail -n +2
done
echo
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (after)"
