#!/bin/bash
# test_full_disk.sh — a full disk (a small tmpfs, filled up) under
# `soma train --out` and `soma sim --out`: each run fails with a nonzero
# exit status and a message naming the file it could not write and "No
# space left on device", the earlier run's files there stay byte for byte,
# and no temporary file is left behind. Mounting needs root: without it the
# test says why and exits 77 (ctest shows it skipped, never passed). Then
# `soma sim --write-connectivity` and `soma dissect stats` onto the full disk, and `soma train` again
# with 64 kB free (less than its model): the model stays the earlier one.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
EX=${SOMA_EXAMPLES:?SOMA_EXAMPLES not set}
DIR=$(mktemp -d /tmp/soma-full-disk-XXXXXX)
DISK="$DIR/disk"
mkdir -p "$DISK"
cleanup() { umount "$DISK" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
if ! mount -t tmpfs -o size=256k tmpfs "$DISK" 2> "$DIR/mount.err"; then
    echo "SKIP: cannot mount a tmpfs (needs root): $(cat "$DIR/mount.err")"
    exit 77
fi
fail=0
cat > "$DIR/small.yaml" <<'YAML'
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: lif, size: 16, beta: 0.9}
    out:    {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 4, limit_train: 256, limit_test: 64}
train: {epochs: 1, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
# The next run's model (256 hidden: ~800 kB) is larger than the whole disk.
sed 's/size: 16,/size: 256,/' "$DIR/small.yaml" > "$DIR/big.yaml"

# The earlier runs, made on the real disk and copied onto the tmpfs.
"$BIN" train "$DIR/small.yaml" --threads 2 --out "$DIR/prev_train" > "$DIR/prev_train.log" 2>&1 \
    || { echo "FAIL: earlier soma train"; cat "$DIR/prev_train.log"; exit 1; }
"$BIN" sim "$EX/cuba.yaml" --param n=200 --time 50ms --threads 2 --out "$DIR/prev_sim" > "$DIR/prev_sim.log" 2>&1 \
    || { echo "FAIL: earlier soma sim"; cat "$DIR/prev_sim.log"; exit 1; }
cp -r "$DIR/prev_train" "$DISK/train" && cp -r "$DIR/prev_sim" "$DISK/sim" \
    || { echo "FAIL: the earlier runs do not fit on the tmpfs"; df -k "$DISK"; exit 1; }
# Fill what is left (dd stops at ENOSPC).
dd if=/dev/zero of="$DISK/filler" bs=4k > /dev/null 2>&1
(cd "$DISK" && find train sim -type f | sort | xargs sha256sum) > "$DIR/before.sum"

same_files() { # label
    local now
    now=$(cd "$DISK" && find train sim -type f | sort | xargs sha256sum)
    if [ "$now" != "$(cat "$DIR/before.sum")" ]; then
        echo "FAIL $1: the earlier files changed:"; diff <(echo "$now") "$DIR/before.sum"; fail=1
    fi
}
expect_fail() { # label, log, file name the message must name
    local rc=$1 label=$2 log=$3 name=$4
    if [ "$rc" -eq 0 ]; then echo "FAIL $label: exit status 0 on a full disk"; fail=1; fi
    if ! grep -qE "$name.*No space left on device" "$log"; then
        echo "FAIL $label: no message naming $name and 'No space left on device':"; cat "$log"; fail=1
    fi
}

"$BIN" train "$DIR/big.yaml" --threads 2 --out "$DISK/train" > "$DIR/train.log" 2>&1
expect_fail $? "soma train" "$DIR/train.log" "model\.soma"
grep -q "metrics\.json.*No space left on device" "$DIR/train.log" \
    || { echo "FAIL soma train: metrics.json's failure not reported with its reason:"; cat "$DIR/train.log"; fail=1; }
same_files "soma train"
grep "No space" "$DIR/train.log"

"$BIN" sim "$EX/cuba.yaml" --param n=400 --time 100ms --threads 2 --out "$DISK/sim" > "$DIR/sim.log" 2>&1
expect_fail $? "soma sim" "$DIR/sim.log" "metrics\.json"
same_files "soma sim"
grep "No space" "$DIR/sim.log"

"$BIN" sim "$EX/cuba.yaml" --param n=400 --time 10ms --threads 2 --write-connectivity "$DISK/conn.csv" \
    --out "$DIR/sim_elsewhere" > "$DIR/conn.log" 2>&1
expect_fail $? "soma sim --write-connectivity" "$DIR/conn.log" "conn\.csv"
[ ! -e "$DISK/conn.csv" ] || { echo "FAIL: a connectivity file was left on the full disk"; fail=1; }

"$BIN" dissect "$DISK/train/model.soma" stats --limit 50 --threads 2 --out "$DISK/train" > "$DIR/dissect.log" 2>&1
expect_fail $? "soma dissect stats" "$DIR/dissect.log" "(result\.json|selectivity\.png)"
same_files "soma dissect stats"
grep "No space" "$DIR/dissect.log"

# Some room, less than the model: the model still fails and stays the earlier one.
rm -f "$DISK/filler"
free_kb=$(df -k --output=avail "$DISK" | tail -1)
dd if=/dev/zero of="$DISK/filler" bs=1k count=$((free_kb - 64)) > /dev/null 2>&1
"$BIN" train "$DIR/big.yaml" --threads 2 --out "$DISK/train" > "$DIR/train2.log" 2>&1
expect_fail $? "soma train with 64 kB free" "$DIR/train2.log" "model\.soma"
cmp -s "$DISK/train/model.soma" "$DIR/prev_train/model.soma" \
    || { echo "FAIL soma train with 64 kB free: model.soma changed"; fail=1; }

left=$(find "$DISK" -name '*.tmp*')
[ -z "$left" ] || { echo "FAIL: temporary files left on the full disk: $left"; fail=1; }
"$BIN" sites "$DISK/train/model.soma" > /dev/null 2>&1 || { echo "FAIL: the earlier model does not load"; fail=1; }

[ $fail -eq 0 ] && echo "test_full_disk: ok"
exit $fail
