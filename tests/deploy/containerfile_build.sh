#!/usr/bin/env bash
# Runs deploy/Containerfile's build stage without a container engine (none here):
# the build context as .dockerignore leaves it is copied into a scratch directory,
# the stage's packages must be installed on this machine (Debian bookworm, as the
# image), its RUN commands run there with /src and /build mapped into the scratch
# directory, and every path the runtime stage copies from it must exist, with all
# its shared libraries resolved. With podman or docker (and a daemon) present, it
# builds the real image instead.
# Usage: tests/deploy/containerfile_build.sh        (about 1-2 minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cf=$root/deploy/Containerfile
say() { echo "containerfile build: $*"; }

if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
  say "podman build"; exec podman build -f "$cf" -t sparkscale:check "$root"
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "docker build"; exec docker build -f "$cf" -t sparkscale:check "$root"
fi
say "no container engine: running the build stage's steps in a scratch directory"

tmp=$(mktemp -d /tmp/ss-containerfile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# The build stage as data: its apt packages, its RUN commands, what the runtime copies.
python3 - "$cf" "$tmp" <<'PY'
import json, re, sys
cf, tmp = sys.argv[1], sys.argv[2]
stages, cur, buf = {}, None, ""
for raw in open(cf):
    line = raw.rstrip("\n")
    if not buf and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if line.endswith("\\"):
        buf += line[:-1] + " "
        continue
    word, _, rest = (buf + line).strip().partition(" ")
    buf = ""
    if word == "FROM":
        m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
        cur = (m.group(2) or "final").lower()
        stages[cur] = {"from": m.group(1), "steps": []}
    else:
        stages[cur]["steps"].append((word, rest.strip()))
b = stages["build"]
pkgs, runs = [], []
for word, rest in b["steps"]:
    if word == "RUN":
        m = re.search(r"apt-get install ([^&;]*)", rest)
        if m:
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
        else:
            runs.append(rest)
    elif word == "WORKDIR":
        runs.append("cd " + rest)
    elif word not in ("COPY",):
        print("unhandled build-stage instruction %s" % word, file=sys.stderr)
copies = []
for stage in stages.values():
    for word, rest in stage["steps"]:
        if word == "COPY" and "--from=build" in rest:
            copies += [p for p in rest.split() if not p.startswith("--")][:-1]
json.dump({"base": b["from"], "pkgs": pkgs, "runs": runs, "copies": copies}, open(tmp + "/plan.json", "w"))
PY

# 1. the stage's packages (the image's FROM is Debian bookworm: so must this machine be)
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || say "note: this machine is ${PRETTY_NAME:-unknown}, the image bookworm"
missing=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["pkgs"]))' "$tmp/plan.json" \
  | tr ' ' '\n' | while read -r p; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
[ -z "$missing" ] || { say "FAIL: build-stage packages not installed here: $missing (scripts/install-deps.sh build)"; exit 1; }

# 2. the build context: git's files (tracked and untracked, not git-ignored) minus .dockerignore
mkdir -p "$tmp/src"
(cd "$root" && git ls-files -co --exclude-standard -z) | python3 -c '
import fnmatch, os, shutil, sys
root, dst = sys.argv[1], sys.argv[2]
pats = [l.strip().rstrip("/") for l in open(os.path.join(root, ".dockerignore")) if l.strip() and not l.startswith("#")]
def ignored(path):
    parts = path.split("/")
    for p in pats:
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), p) or (p.startswith("**/") and fnmatch.fnmatch(parts[i-1], p[3:])):
                return True
    return False
n = 0
for f in sys.stdin.read().split("\0"):
    if f and not ignored(f) and os.path.isfile(os.path.join(root, f)):
        os.makedirs(os.path.dirname(os.path.join(dst, f)) or dst, exist_ok=True)
        shutil.copy2(os.path.join(root, f), os.path.join(dst, f))
        n += 1
print("containerfile build: context of %d files" % n)
' "$root" "$tmp/src"

# 3. the RUN steps, /src and /build mapped, at most SS_JOBS (2) compile jobs
python3 -c '
import json, sys
plan = json.load(open(sys.argv[1]))
tmp, jobs = sys.argv[2], sys.argv[3]
with open(tmp + "/steps.sh", "w") as f:
    f.write("set -euo pipefail\n")
    for r in plan["runs"]:
        r = r.replace("/src", tmp + "/src").replace("/build", tmp + "/build").replace("$(nproc)", jobs)
        f.write(r + "\n")
' "$tmp/plan.json" "$tmp" "${SS_JOBS:-2}"
say "running: $(tr '\n' ';' < "$tmp/steps.sh" | sed "s#$tmp#<scratch>#g")"
bash "$tmp/steps.sh" > "$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log"; say "FAIL: a RUN step failed"; exit 1; }

# 4. what the runtime stage copies exists and its libraries resolve
for p in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["copies"]))' "$tmp/plan.json"); do
  f=$tmp${p}
  [ -x "$f" ] || { say "FAIL: the runtime stage copies $p, the build made no such file"; exit 1; }
  if ldd "$f" | grep -q "not found"; then ldd "$f"; say "FAIL: $p has unresolved libraries"; exit 1; fi
  say "built $p ($(stat -c %s "$f") bytes)"
done
say "PASS in $(( $(date +%s) - start )) s (the runtime stage's packages: tests/deploy/check_containerfile.py)"
