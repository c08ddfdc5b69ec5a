#!/bin/bash
# test_cli_sites.sh — `soma sites` lists the named sites (hooks' targets)
# of a trainer network file and of a simulator network file, with the
# values each holds per instance, and names both loaders' errors for a
# file that is neither.
set -u
BIN=${SOMA_BIN:?SOMA_BIN not set}
EX=${SOMA_EXAMPLES:?SOMA_EXAMPLES not set}
DIR=$(mktemp -d /tmp/soma-cli-sites-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
expect() { # file, description, grep pattern
    if ! grep -qE -- "$3" "$1"; then echo "FAIL $2: no line matching '$3' in:"; cat "$1"; fail=1; fi
}
"$BIN" sites "$EX/fmnist-lif.yaml" > "$DIR/exp.txt" 2>&1 || { echo "FAIL: soma sites on an experiment file"; cat "$DIR/exp.txt"; fail=1; }
expect "$DIR/exp.txt" experiment "9 sites$"
expect "$DIR/exp.txt" experiment "^  hidden\.spikes +spikes +1000$"
expect "$DIR/exp.txt" experiment "^  hidden\.v +state +1000$"
expect "$DIR/exp.txt" experiment "^  in->hidden\.in +proj-in +784$"
expect "$DIR/exp.txt" experiment "^  hidden->out\.out +proj-out +10$"
"$BIN" sites "$EX/cuba.yaml" > "$DIR/sim.txt" 2>&1 || { echo "FAIL: soma sites on a simulator file"; cat "$DIR/sim.txt"; fail=1; }
expect "$DIR/sim.txt" simulator " sites$"
expect "$DIR/sim.txt" simulator "^  exc\.spikes +spikes +3200$"
expect "$DIR/sim.txt" simulator "^  inh\.v +state +800$"
expect "$DIR/sim.txt" simulator "^  exc->inh\.out +proj-out +800$"
echo "neither: [1, 2" > "$DIR/bad.yaml"
if "$BIN" sites "$DIR/bad.yaml" > "$DIR/bad.txt" 2>&1; then echo "FAIL: a bad file was accepted"; fail=1; fi
expect "$DIR/bad.txt" "bad file" "as a model file: .*"
expect "$DIR/bad.txt" "bad file" "as a network file: .*bad\.yaml"
if "$BIN" sites > /dev/null 2>&1; then echo "FAIL: no argument was accepted"; fail=1; fi
[ $fail = 0 ] && echo "ok: soma sites"
exit $fail
