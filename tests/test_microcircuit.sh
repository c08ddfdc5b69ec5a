#!/bin/bash
# test_microcircuit.sh — the Potjans-Diesmann microcircuit (examples/microcircuit.yaml)
# runs end to end from the command line at a small scale (0.02: ~1,500
# neurons, ~6e6 synapses, 0.3 s after 0.1 s of warm-up), once on one thread
# and once on two. Checks:
#  - `soma sim` succeeds and metrics.json has every field bench/bench_sim.py
#    reads;
#  - the network has the sizes the file asks for: neurons = sum of the eight
#    populations' N*scale (each rounded, so within one per population), and
#    synapses = sum of the 64 fixed_total counts n*scale, read from the YAML
#    here (within 0.1 %: each count is rounded), ~3e8 at scale 1;
#  - every population fires at a plausible rate, 0.1-50 Hz (the published
#    rates at scale 1 are 0.9-8.6 Hz; this small scale runs hotter);
#  - at scale 0.25 every population's rate is within 25 % of the published
#    one (below);
#  - one and two threads give the same spikes (spikes_sha256), which the
#    engine promises whatever the thread count.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
EXA=${SOMA_EXAMPLES:?SOMA_EXAMPLES not set}
YAML="$EXA/microcircuit.yaml"
SCALE=0.02
DIR=$(mktemp -d /tmp/soma-microcircuit-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
bad() { echo "FAIL $*"; fail=1; }

# field FILE KEY: the scalar value of "KEY": in metrics.json.
field() { grep -o "\"$2\": *[^,}]*" "$1" | head -1 | sed 's/^[^:]*: *//; s/"//g'; }

for th in 1 2; do
    out="$DIR/t$th"
    if ! "$BIN" sim "$YAML" --param scale=$SCALE --time 0.3s --warmup 0.1s --threads $th --no-record \
            --out "$out" > "$DIR/t$th.log" 2>&1; then
        bad "soma sim --threads $th failed:"; tail -5 "$DIR/t$th.log"; continue
    fi
    m="$out/metrics.json"
    [ -s "$m" ] || { bad "--threads $th: no metrics.json"; continue; }
    for k in neurons synapses spikes rate_hz cv_isi fano synchrony build_seconds sim_seconds real_time_factor \
             bytes_per_synapse peak_rss_bytes spikes_sha256 reference_rate_hz rate_rel_diff; do
        grep -q "\"$k\":" "$m" || bad "--threads $th: metrics.json lacks $k"
    done
    [ "$(field "$m" threads)" = "$th" ] || bad "--threads $th: metrics.json says threads $(field "$m" threads)"
    [ "$(field "$m" cancelled)" = "false" ] || bad "--threads $th: run cancelled"
    [ "$(field "$m" time_ms)" = "300" ] || bad "--threads $th: time_ms $(field "$m" time_ms), expected 300"
    for k in build_seconds sim_seconds real_time_factor bytes_per_synapse peak_rss_bytes; do
        awk -v v="$(field "$m" $k)" 'BEGIN { exit !(v + 0 > 0) }' || bad "--threads $th: $k is '$(field "$m" $k)'"
    done
    sha=$(field "$m" spikes_sha256)
    [ ${#sha} -eq 64 ] || bad "--threads $th: spikes_sha256 '$sha'"
    eval "sha$th=$sha"
    # Sizes from the YAML: population sizes "N*scale", synapse totals n: "n*scale".
    want_n=$(grep -o 'size: "[0-9.]*\*scale"' "$YAML" | grep -o '[0-9.]*' |
             awk -v s=$SCALE '{ t += int($1 * s + 0.5) } END { print t }')
    want_s=$(grep -o 'n: "[0-9.]*\*scale"' "$YAML" | grep -o '[0-9.]*' | awk -v s=$SCALE '{ t += $1 * s } END { printf "%.0f", t }')
    npops=$(grep -c 'size: "[0-9.]*\*scale"' "$YAML")
    nproj=$(grep -c 'n: "[0-9.]*\*scale"' "$YAML")
    # 64 pairs less the ones Potjans & Diesmann leave unconnected; ~3e8 synapses at scale 1.
    [ "$npops" -eq 8 ] && [ "$nproj" -ge 50 ] && [ "$nproj" -le 64 ] ||
        bad "YAML: expected 8 populations and 50-64 projections, found $npops, $nproj"
    awk -v t="$want_s" -v s=$SCALE 'BEGIN { exit !(t / s > 2.8e8 && t / s < 3.1e8) }' ||
        bad "YAML: $want_s synapses at scale $SCALE is not ~3e8 at scale 1"
    got_n=$(field "$m" neurons); got_s=$(field "$m" synapses)
    awk -v a="$got_n" -v b="$want_n" 'BEGIN { d = a - b; exit !(d <= 8 && d >= -8) }' ||
        bad "--threads $th: $got_n neurons, the file asks for $want_n"
    awk -v a="$got_s" -v b="$want_s" 'BEGIN { d = (a - b) / b; exit !(d < 1e-3 && d > -1e-3) }' ||
        bad "--threads $th: $got_s synapses, the file asks for $want_s"
    # Rates per population: "rate_hz": {"L23E": 1.2, ...}
    rates=$(grep -o '"rate_hz": *{[^}]*}' "$m" | sed 's/"rate_hz": *{//; s/}//')
    nr=0
    for pair in $(echo "$rates" | tr -d ' "' | tr ',' ' '); do
        name=${pair%%:*}; r=${pair#*:}; nr=$((nr + 1))
        awk -v r="$r" 'BEGIN { exit !(r >= 0.1 && r <= 50) }' || bad "--threads $th: $name fires at $r Hz (expected 0.1-50)"
    done
    [ "$nr" -eq 8 ] || bad "--threads $th: rate_hz has $nr populations, expected 8"
    echo "ran --threads $th: $got_n neurons, $got_s synapses, $(field "$m" spikes) spikes, rates {$rates}"
done
# At scale 0.25 (19 292 neurons, 7.5e7 synapses, ~0.6 GB; 0.5 s after 0.3 s
# of warm-up, 2 threads: about 20 s) the rates come close to the published
# scale-1 ones (in-degrees are kept; measured at most 16 % off, L23E): each
# population within 25 % of Potjans & Diesmann's rate, as metrics.json's
# rate_rel_diff gives it. A model or connectivity error that moves a rate
# by a quarter fails here; make bench-sim checks scale 1 (within 4 %).
out="$DIR/q"
if "$BIN" sim "$YAML" --param scale=0.25 --time 0.5s --warmup 0.3s --threads 2 --no-record --out "$out" \
        > "$DIR/q.log" 2>&1; then
    diffs=$(grep -o '"rate_rel_diff": *{[^}]*}' "$out/metrics.json" | sed 's/"rate_rel_diff": *{//; s/}//')
    nd=0
    for pair in $(echo "$diffs" | tr -d ' "' | tr ',' ' '); do
        name=${pair%%:*}; d=${pair#*:}; nd=$((nd + 1))
        awk -v d="$d" 'BEGIN { exit !(d <= 0.25 && d >= -0.25) }' ||
            bad "scale 0.25: $name's rate is off the published one by $d (expected within 0.25)"
    done
    [ "$nd" -eq 8 ] || bad "scale 0.25: rate_rel_diff has $nd populations, expected 8"
    echo "ran scale 0.25: rates relative to Potjans & Diesmann {$diffs}"
else
    bad "soma sim at scale 0.25 failed:"; tail -5 "$DIR/q.log"
fi
if [ -n "${sha1:-}" ] && [ -n "${sha2:-}" ]; then
    [ "$sha1" = "$sha2" ] || bad "1 and 2 threads give different spikes: $sha1 vs $sha2"
fi
[ $fail -eq 0 ] && echo "test_microcircuit: all passed"
exit $fail
