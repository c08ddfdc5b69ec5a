#!/usr/bin/env bash
# Install the Debian packages soma needs to build, test and run its demo.
# Usage: scripts/deps.sh [--bench|--bench-sim|--fuzz]
#   --bench adds python3-torch for the training benchmarks, --bench-sim adds
#   python3-brian (Brian2, the reference of bench/bench_sim.py; its C++
#   standalone mode compiles with build-essential's g++)
set -eu
pkgs="build-essential cmake pkg-config libyaml-dev zlib1g-dev libopenblas-dev libcairo2-dev libhdf5-dev nettle-dev dataset-fashion-mnist"
if [ "${1:-}" = "--bench" ]; then pkgs="$pkgs python3-torch python3-numpy"; fi
if [ "${1:-}" = "--bench-sim" ]; then pkgs="$pkgs python3-brian python3-numpy"; fi
if [ "${1:-}" = "--fuzz" ]; then pkgs="$pkgs clang"; fi   # libFuzzer ships with Debian's clang
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "soma needs these Debian packages:$missing" >&2
  echo "run as root:  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
