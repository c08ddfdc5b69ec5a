#!/bin/bash
# test_kill_write.sh — SIGKILL `soma train` while it writes: the model file
# in --out (and metrics.json, curves.png) is always either the earlier one,
# byte for byte, or a complete new one that loads. A small model trained
# here is the earlier one; then `soma train` of a larger net (a ~9 MB model)
# into the same --out is killed (1) the moment its temporary model file
# appears (SIGSTOP as soon as a poller sees model.soma.tmp.PID, then
# SIGKILL: deterministic, whatever the machine's speed; a change of
# model.soma itself stops it too), several times, at
# least one of them caught with the temporary file being written; and (2)
# after spread-out delays. After each kill the files are checked and the
# model is loaded with `soma sites`.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
DIR=$(mktemp -d /tmp/soma-kill-write-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/small.yaml" <<'YAML'
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: lif, size: 64, beta: 0.9}
    out:    {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 10, limit_train: 2000, limit_test: 400}
train: {epochs: 1, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
cat > "$DIR/big.yaml" <<'YAML'
network:
  populations:
    in:     {model: input, size: 784}
    hidden: {model: lif, size: 3000, beta: 0.9}
    out:    {model: lif, size: 10, beta: 0.9}
  projections:
    - {from: in, to: hidden, kind: dense}
    - {from: hidden, to: out, kind: dense}
data:  {dataset: fashion-mnist, encoding: direct, steps: 2, limit_train: 128, limit_test: 64}
train: {epochs: 4, batch: 64, loss: ce_rate, optimizer: {name: adam, lr: 2e-3}}
YAML
"$BIN" train "$DIR/small.yaml" --threads 2 --out "$DIR/run" > "$DIR/train.log" 2>&1 \
    || { echo "FAIL: soma train of the earlier model"; cat "$DIR/train.log"; exit 1; }
for f in model.soma metrics.json curves.png; do
    [ -s "$DIR/run/$f" ] || { echo "FAIL: the earlier run wrote no $f"; exit 1; }
done

# The poller/killer and the checks, in Python (the test's reference tool).
/usr/bin/python3 - "$BIN" "$DIR" <<'PY'
import json, os, signal, subprocess, sys, time
BIN, DIR = sys.argv[1], sys.argv[2]
RUN = os.path.join(DIR, "run")
FILES = ("model.soma", "metrics.json", "curves.png")
fail = 0

def snap():
    out = {}
    for f in FILES:
        with open(os.path.join(RUN, f), "rb") as h:
            out[f] = h.read()
    return out

def complete(f, data):
    """Is data a whole file of its kind (not a prefix of one)?"""
    if f == "model.soma":
        # header: magic, version, flags, u64 payload length; the CRC is checked by loading
        return data[:8] == b"SOMAMDL\0" and len(data) >= 28 and int.from_bytes(data[16:24], "little") == len(data) - 28
    if f == "metrics.json":
        try:
            json.loads(data)
            return True
        except ValueError:
            return False
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[-12:-8] == b"\0\0\0\0" and data[-8:-4] == b"IEND"

def check(label, before):
    global fail
    now = snap()
    for f in FILES:
        if now[f] != before[f] and not complete(f, now[f]):
            print(f"FAIL {label}: {f} is neither the earlier file nor a complete one ({len(now[f])} bytes)")
            fail = 1
    r = subprocess.run([BIN, "sites", os.path.join(RUN, "model.soma")], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {label}: the model does not load: {r.stderr.strip()}")
        fail = 1
    # a killed writer leaves its temporary file; the next run must not trip on it
    for n in os.listdir(RUN):
        if ".tmp." in n:
            os.unlink(os.path.join(RUN, n))
    return now

def start():
    return subprocess.Popen([BIN, "train", os.path.join(DIR, "big.yaml"), "--threads", "2", "--out", RUN],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

before = snap()
# (1) Kill while the model is being written.
caught = 0
for attempt in range(8):
    p = start()
    tmp = "model.soma.tmp.%d" % p.pid
    path = os.path.join(RUN, tmp)
    model = os.path.join(RUN, "model.soma")
    st0 = os.stat(model)
    seen = False
    while p.poll() is None:
        # the temporary file appears, or (a writer that is not atomic) model.soma itself changes
        st = os.stat(model)
        if os.path.exists(path) or (st.st_ino, st.st_size, st.st_mtime_ns) != (st0.st_ino, st0.st_size, st0.st_mtime_ns):
            os.kill(p.pid, signal.SIGSTOP)
            seen = True
            break
    if seen:
        during = os.path.exists(path)  # still the temporary file: stopped before the rename
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        caught += during
        before = check(f"write-kill {attempt}", before)
    else:
        p.wait()
        before = check(f"write-kill {attempt} (finished)", before)
    if caught >= 3:
        break
print(f"killed during the model write: {caught} of {attempt + 1} runs")
if caught == 0:
    print("FAIL: no kill landed while the temporary model file was being written")
    fail = 1

# (2) Kill after spread-out delays (startup, training, writes, plots).
for delay in (0.05, 0.3, 0.8, 1.5, 2.5, 4.0):
    p = start()
    time.sleep(delay)
    finished = p.poll() is not None
    if not finished:
        p.kill()
    p.wait()
    before = check(f"kill after {delay}s", before)
sys.exit(fail)
PY
rc=$?
[ $rc -eq 0 ] && echo "test_kill_write: ok"
exit $rc
