#!/usr/bin/env python3
"""check_containerfile.py: what deploy/Containerfile refers to, without a container engine.

  - it parses: known instructions, continuation lines, stages named with AS, every
    COPY --from names an earlier stage, a non-root USER;
  - the build stage installs every Debian package scripts/install-deps.sh builds with;
  - `cmake --build --target` names targets the project defines, and the same three
    executables are what the runtime stage copies, from the paths the build gives them
    (checked against BUILD_DIR, a build of this tree);
  - the runtime stage installs the package of every shared library the three
    executables link to (readelf NEEDED -> dpkg -S), libc aside, and apt knows them;
  - ENTRYPOINT runs a copied executable; the Kubernetes manifests' commands name
    executables the image has; EXPOSE covers the ports the shipped configurations use;
  - .dockerignore keeps build trees and virtualenvs out of the context and nothing
    the build needs.
Usage: check_containerfile.py BUILD_DIR
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
BASE_PACKAGES = {"libc6"}   # in every Debian image
problems = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        problems.append(what)


def instructions(path):
    """[(line number, INSTRUCTION, arguments)] with continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(open(path), 1):
        line = raw.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((start, word, rest.strip()))
        buf = ""
    check(not buf, "Containerfile ends inside a continued line")
    return out


def apt_packages(run):
    """Packages of `apt-get install ...` in a RUN line."""
    m = re.search(r"apt-get install ([^&;]*)", run)
    return [w for w in (m.group(1).split() if m else []) if not w.startswith("-")]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    cf = os.path.join(ROOT, "deploy", "Containerfile")
    ins = instructions(cf)
    for n, word, _ in ins:
        check(word in INSTRUCTIONS, "Containerfile:%d: unknown instruction %s" % (n, word))
    stages, cur, by_stage = [], None, {}
    for n, word, rest in ins:
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            check(m is not None, "Containerfile:%d: FROM %s" % (n, rest))
            cur = (m.group(2) if m and m.group(2) else str(len(stages))).lower()
            stages.append(cur)
            by_stage[cur] = []
        else:
            check(cur is not None, "Containerfile:%d: %s before FROM" % (n, word))
            by_stage.setdefault(cur, []).append((n, word, rest))
    check(len(stages) == 2 and stages[0] == "build", "stages %s, want build and a runtime stage" % stages)
    build_stage, run_stage = by_stage.get("build", []), by_stage.get(stages[-1], [])

    # build stage: packages and targets
    deps = open(os.path.join(ROOT, "scripts", "install-deps.sh")).read()
    m = re.search(r"build_pkgs=\(([^)]*)\)", deps)
    want = set(m.group(1).split()) - {"curl", "python3", "ca-certificates"} if m else set()
    have = set(p for _, w, r in build_stage if w == "RUN" for p in apt_packages(r))
    check(want and want <= have, "build stage lacks install-deps.sh build packages: %s" % sorted(want - have))
    runs = " ".join(r for _, w, r in build_stage if w == "RUN")
    m = re.search(r"--target\s+((?:[\w-]+\s*)+)", runs)
    targets = m.group(1).split() if m else []
    check(targets, "no cmake --build --target in the build stage")
    known = set()
    for d, subdirs, files in os.walk(ROOT):
        subdirs[:] = [x for x in subdirs if not x.startswith(".") and not (d == ROOT and x == "build")]
        if "CMakeLists.txt" in files:
            known |= set(re.findall(r"add_executable\(\s*([\w-]+)", open(os.path.join(d, "CMakeLists.txt")).read()))
    for t in targets:
        check(t in known, "--target %s: no such target in the project" % t)
    m = re.search(r"cmake -S \. -B (\S+)", runs)
    bdir = m.group(1) if m else None
    check(bdir == "/build", "the build stage builds into %s, the COPY lines read /build" % bdir)

    # runtime stage: copied executables, their libraries' packages
    copies = [r for _, w, r in run_stage if w == "COPY"]
    copied = []
    for c in copies:
        parts = c.split()
        frm = [p for p in parts if p.startswith("--from=")]
        if not frm:
            continue
        check(frm[0][len("--from="):].lower() in stages[:-1], "COPY %s: no such earlier stage" % frm[0])
        srcs, dest = [p for p in parts if not p.startswith("--")][:-1], parts[-1]
        for s in srcs:
            rel = os.path.relpath(s, "/build")
            local = os.path.join(build, rel)
            check(os.access(local, os.X_OK), "COPY %s: the build makes no %s" % (s, local))
            copied.append((os.path.join(dest, os.path.basename(s)), local))
    names = sorted(os.path.basename(c) for c, _ in copied)
    check(names == sorted(targets), "copied %s, built %s" % (names, sorted(targets)))
    runtime_pkgs = set(p for _, w, r in run_stage if w == "RUN" for p in apt_packages(r))
    dpkg = shutil.which("dpkg-query") and shutil.which("readelf")
    if dpkg:
        ldcache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        needed = {}   # library -> executables linking it
        for _, local in copied:
            if os.path.exists(local):
                dyn = subprocess.run(["readelf", "-d", local], capture_output=True, text=True).stdout
                for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dyn):
                    if not re.match(r"lib(a|ub|l|t)san\.", lib):   # a sanitizer build's runtime
                        needed.setdefault(lib, []).append(os.path.basename(local))
        paths = {}
        for lib in needed:
            m = re.search(r"^\s*%s \(.*x86-64.*\) => (\S+)" % re.escape(lib), ldcache, re.M) or \
                re.search(r"^\s*%s .*=> (\S+)" % re.escape(lib), ldcache, re.M)
            if m:
                real = os.path.realpath(m.group(1))
                paths[lib] = [m.group(1), real, real.replace("/usr/lib/", "/lib/", 1)]
        cands = sorted({c for cs in paths.values() for c in cs})
        owners = {}
        for line in subprocess.run(["dpkg", "-S"] + cands, capture_output=True, text=True).stdout.splitlines():
            pkg, _, path = line.partition(": ")
            owners[path.strip()] = pkg.split(":")[0]
        for lib, users in sorted(needed.items()):
            owner = next((owners[c] for c in paths.get(lib, []) if c in owners), None)
            check(owner is not None, "%s: no Debian package owns %s" % (", ".join(users), lib))
            if owner:
                check(owner in runtime_pkgs or owner in BASE_PACKAGES,
                      "%s link %s (package %s), which the runtime stage does not install"
                      % (", ".join(users), lib, owner))
        if subprocess.run(["apt-cache", "show", "libc6"], capture_output=True).returncode == 0:
            pkgs = sorted(runtime_pkgs | have)
            r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + pkgs, capture_output=True, text=True)
            known_pkgs = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
            for p in pkgs:
                check(p in known_pkgs, "apt knows no package %s" % p)
        else:
            print("containerfile: apt has no package lists here: package names not looked up")
    else:
        print("containerfile: no dpkg-query/readelf: runtime libraries not mapped to packages")

    # entrypoint, users, ports, manifests
    ep = [r for _, w, r in run_stage if w == "ENTRYPOINT"]
    in_image = {c for c, _ in copied}
    check(ep and re.search(r'"([^"]+)"', ep[-1]) and re.search(r'"([^"]+)"', ep[-1]).group(1) in in_image,
          "ENTRYPOINT %s is not a copied executable" % ep)
    users = [r for _, w, r in run_stage if w == "USER"]
    check(users and users[-1] not in ("0", "root"), "the image runs as root")
    exposed = set(" ".join(r for _, w, r in run_stage if w == "EXPOSE").split())
    for port in ("2003/tcp", "2003/udp", "9090/tcp", "9091/tcp"):
        check(port in exposed or port.replace("/tcp", "") in exposed, "EXPOSE lacks %s" % port)
    for m in ("sparkscaled.yaml", "sparkscale-actuator.yaml"):
        text = open(os.path.join(ROOT, "deploy", "kubernetes", m)).read()
        for cmd in re.findall(r'command:\s*\["([^"]+)"', text):
            check(cmd in in_image, "deploy/kubernetes/%s runs %s, which the image lacks" % (m, cmd))

    # the build context
    ign = os.path.join(ROOT, ".dockerignore")
    check(os.path.isfile(ign), "no .dockerignore: the build context holds build trees and virtualenvs")
    if os.path.isfile(ign):
        pats = [l.strip().rstrip("/") for l in open(ign) if l.strip() and not l.startswith("#")]

        def ignored(path):
            parts = path.split("/")
            for p in pats:
                for i in range(1, len(parts) + 1):
                    head = "/".join(parts[:i])
                    if fnmatch.fnmatch(head, p) or (p.startswith("**/") and fnmatch.fnmatch(parts[i - 1], p[3:])):
                        return True
            return False
        for must in ("build/ci/CMakeCache.txt", "tests/spark/.venv/bin/python", ".git/HEAD"):
            check(ignored(must), ".dockerignore lets %s into the context" % must)
        tracked = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True).stdout.split()
        kept_out = [f for f in tracked if ignored(f)]
        check(not kept_out, ".dockerignore leaves tracked files out of the build: %s" % kept_out[:5])

    for p in problems:
        print("containerfile: FAIL: " + p)
    print("containerfile: %d passed, %d failed" % (passed, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
