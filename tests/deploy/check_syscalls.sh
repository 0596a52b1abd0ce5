#!/usr/bin/env bash
# The systemd units' SystemCallFilter= against what the daemons really call: the
# short demo (scripts/demo/run.py) runs with sparkscaled and sparkscale-actuator
# under strace -f (the actuator's exec commands included, as they run under its
# unit too), and every system call seen must be one the unit allows
# (systemd-analyze syscall-filter expands the unit's groups). A call outside the
# filter would fail with EPERM under systemd only, never in the other tests.
# Needs strace and systemd-analyze; exits 77 (ctest: skipped) without them.
# Usage: tests/deploy/check_syscalls.sh BUILD_DIR
set -uo pipefail
build=$(cd "${1:?usage: check_syscalls.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
for t in strace systemd-analyze pgrep; do
  command -v "$t" >/dev/null 2>&1 || { echo "syscalls: $t not found: skipped"; exit 77; }
done
tmp=$(mktemp -d /tmp/ss-syscalls.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Executables in the layout run.py expects: strace wrappers that pass signals to the daemon.
wrap() {  # wrap REL NAME
  mkdir -p "$tmp/bin/$(dirname "$1")"
  cat > "$tmp/bin/$1" <<EOF
#!/bin/sh
case "\$*" in *--check-config*) exec "$build/$1" "\$@" ;; esac
strace -f -qq -o "$tmp/$2.strace" "$build/$1" "\$@" &
s=\$!
fwd() { for c in \$(pgrep -P \$s); do kill -\$1 \$c; done; }
trap 'fwd TERM' TERM
trap 'fwd INT' INT
st=0
while kill -0 \$s 2>/dev/null; do wait \$s; st=\$?; done
exit \$st
EOF
  chmod +x "$tmp/bin/$1"
}
wrap ingest/sparkscaled sparkscaled
wrap actuator/sparkscale-actuator sparkscale-actuator
mkdir -p "$tmp/bin/tools/sparkscalectl"
ln -s "$build/tools/sparkscalectl/sparkscalectl" "$tmp/bin/tools/sparkscalectl/sparkscalectl"

if ! python3 "$root/scripts/demo/run.py" --bin "$tmp/bin" --short --free-ports --work "$tmp/demo" \
     > "$tmp/demo.out" 2>&1; then
  tail -n 25 "$tmp/demo.out"
  echo "syscalls: FAIL: the demo did not pass under strace"
  exit 1
fi

python3 - "$root" "$tmp" <<'PY'
import os, re, subprocess, sys
root, tmp = sys.argv[1], sys.argv[2]

def expand(name, seen=None):
    txt = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True).stdout
    out = set()
    for l in txt.splitlines()[1:]:
        l = l.strip()
        if l and not l.startswith("#"):
            out |= expand(l) if l.startswith("@") else {l}
    return out if out or name.startswith("@") else {name}

def allowed(unit):
    allow, deny = None, set()
    for line in open(os.path.join(root, "deploy/systemd", unit)):
        m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
        if not m:
            continue
        names = set()
        for w in m.group(2).split():
            names |= expand(w)
        if m.group(1):
            deny |= names
        else:
            allow = names if allow is None else allow | names
    return (allow or set()) - deny

fails = 0
for daemon in ("sparkscaled", "sparkscale-actuator"):
    seen = set()
    for line in open(os.path.join(tmp, daemon + ".strace"), errors="replace"):
        m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
        if m and m.group(1) not in ("exited", "killed"):
            seen.add(m.group(1))
    bad = sorted(seen - allowed(daemon + ".service"))
    print("syscalls: %s made %d distinct system calls%s" % (daemon, len(seen),
          ", all allowed by its unit" if not bad else "; NOT allowed by its unit: " + " ".join(bad)))
    fails += bool(bad) or not seen
sys.exit(1 if fails else 0)
PY
rc=$?
[ "$rc" -eq 0 ] && echo "syscalls: PASS" || echo "syscalls: FAIL"
exit "$rc"
