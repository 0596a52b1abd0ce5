#!/usr/bin/env python3
"""check_systemd.py: the systemd units of deploy/systemd/ against the daemons they run.

Static checks (always; they are the documented check where systemd-analyze is missing):
  - the hardening the units promise: a dedicated user declared by the sysusers.d entry,
    NoNewPrivileges, ProtectSystem=strict, ProtectHome, PrivateTmp, no capabilities;
  - the restart policy (on-failure, not on bad arguments, a start limit);
  - the stop matches the daemon: SIGTERM once, KillMode=mixed, and TimeoutStopSec above
    the daemon's own shutdown bound, read from its source (SHUTDOWN_FLUSH_MS in
    ingest/main.c, SHUTDOWN_TIMEOUT_MS in actuator/main.c), with a margin;
  - journal logging; ExecStart runs the right executable with --config on the
    ConfigurationDirectory, and that command line works (--check-config on the example);
  - `cmake --install` (into a scratch DESTDIR) installs both units, their ExecStart
    points at the executables it installed, and the sysusers.d entry.
With systemd-analyze (Debian package systemd): `systemd-analyze verify` of the installed
units (any message fails), and `systemd-analyze security --offline=yes` must rate each
unit's exposure at most MAX_EXPOSURE.
Usage: check_systemd.py BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = {  # unit -> (executable in the build tree, source with the shutdown bound, macro)
    "sparkscaled.service": ("ingest/sparkscaled", "ingest/main.c", "SHUTDOWN_FLUSH_MS"),
    "sparkscale-actuator.service": ("actuator/sparkscale-actuator", "actuator/main.c",
                                    "SHUTDOWN_TIMEOUT_MS"),
}
CONFIG = "/etc/sparkscale/sparkscale.yaml"
MAX_EXPOSURE = 2.0    # systemd-analyze security: 1.4 and 1.6 when written ("OK" is < 4.5)
STOP_MARGIN_S = 5

problems = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        problems.append(what)


def parse_unit(path):
    """{section: [(key, value)]}, keeping repeated keys in order."""
    out, sec = {}, None
    for raw in open(path):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            sec = line[1:-1]
            out.setdefault(sec, [])
            continue
        k, _, v = line.partition("=")
        out[sec].append((k.strip(), v.strip()))
    return out


def get(unit, sec, key, default=None):
    vals = [v for k, v in unit.get(sec, []) if k == key]
    return vals[-1] if vals else default


def seconds(v):
    m = re.fullmatch(r"(\d+)(s|min)?", v or "")
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def macro_ms(src, name):
    m = re.search(r"#define\s+%s\s+(\d+)" % name, open(os.path.join(ROOT, src)).read())
    return int(m.group(1)) if m else None


def static_checks(build):
    sysusers = open(os.path.join(ROOT, "deploy/systemd/sparkscale.sysusers.conf")).read()
    users = {l.split()[1] for l in sysusers.splitlines() if l.strip() and l.split()[0] == "u"}
    ca = "/etc/ssl/certs/ca-certificates.crt"
    example = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    example.write(open(os.path.join(ROOT, "deploy/sparkscale.example.yaml")).read()
                  .replace("/etc/sparkscale/kafka-ca.pem", ca))
    example.close()
    for name, (exe, src, macro) in UNITS.items():
        u = parse_unit(os.path.join(ROOT, "deploy/systemd", name))
        s = "Service"
        user = get(u, s, "User")
        check(get(u, s, "DynamicUser") == "yes" or (user in users),
              "%s: User=%s is not declared in sparkscale.sysusers.conf (and no DynamicUser)" % (name, user))
        check(user != "root", "%s: runs as root" % name)
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("CapabilityBoundingSet", ""),
                          ("RestrictSUIDSGID", "yes"), ("Restart", "on-failure"), ("KillMode", "mixed"),
                          ("Type", "exec"), ("StandardError", "journal"), ("ConfigurationDirectory", "sparkscale")):
            check(get(u, s, key) == want, "%s: %s=%s, want %s" % (name, key, get(u, s, key), want or "(empty)"))
        check(get(u, s, "KillSignal", "SIGTERM") == "SIGTERM", "%s: KillSignal is not SIGTERM" % name)
        check(get(u, s, "SendSIGKILL", "yes") == "yes", "%s: SendSIGKILL=no leaves a hung daemon" % name)
        check("2" in (get(u, s, "RestartPreventExitStatus") or "").split(),
              "%s: restarts on exit 2 (bad arguments)" % name)
        check(get(u, "Unit", "StartLimitBurst") is not None, "%s: no StartLimitBurst" % name)
        check(get(u, s, "SyslogIdentifier") == name[:-len(".service")],
              "%s: SyslogIdentifier=%s" % (name, get(u, s, "SyslogIdentifier")))
        check(get(u, "Install", "WantedBy") == "multi-user.target", "%s: not WantedBy=multi-user.target" % name)
        bound_ms = macro_ms(src, macro)
        stop = seconds(get(u, s, "TimeoutStopSec"))
        check(bound_ms is not None, "%s: %s not found in %s" % (name, macro, src))
        if bound_ms is not None and stop is not None:
            check(stop >= bound_ms / 1000 + STOP_MARGIN_S,
                  "%s: TimeoutStopSec=%ds, but %s stops within %d ms (%s in %s) + %d s margin"
                  % (name, stop, exe.split("/")[-1], bound_ms, macro, src, STOP_MARGIN_S))
        else:
            check(False, "%s: TimeoutStopSec missing or unreadable" % name)
        argv = (get(u, s, "ExecStart") or "").split()
        check(len(argv) == 3 and argv[0] == "/usr/local/bin/" + exe.split("/")[-1]
              and argv[1:] == ["--config", CONFIG],
              "%s: ExecStart=%s, want /usr/local/bin/%s --config %s" % (name, " ".join(argv), exe.split("/")[-1],
                                                                       CONFIG))
        # the unit's command line, on the example configuration, is accepted
        r = subprocess.run([os.path.join(build, exe)] + ["--config", example.name, "--check-config"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "%s: %s --config <example> --check-config exited %d: %s"
              % (name, exe, r.returncode, (r.stdout + r.stderr)[-300:]))
    os.unlink(example.name)


def install_checks(build, analyze):
    tmp = tempfile.mkdtemp(prefix="ss-deploy-")
    try:
        root = os.path.join(tmp, "root")
        env = dict(os.environ, DESTDIR=root)
        r = subprocess.run(["cmake", "--install", build, "--prefix", "/usr/local"], env=env,
                           capture_output=True, text=True)
        check(r.returncode == 0, "cmake --install failed: %s" % (r.stdout + r.stderr)[-500:])
        if r.returncode != 0:
            return
        unitdir = os.path.join(root, "usr/local/lib/systemd/system")
        check(os.path.isfile(os.path.join(root, "usr/local/lib/sysusers.d/sparkscale.conf")),
              "cmake --install did not install lib/sysusers.d/sparkscale.conf")
        verify_dir = os.path.join(tmp, "verify")
        os.makedirs(verify_dir)
        for name in UNITS:
            p = os.path.join(unitdir, name)
            check(os.path.isfile(p), "cmake --install did not install %s" % name)
            if not os.path.isfile(p):
                continue
            exe = get(parse_unit(p), "Service", "ExecStart", "").split()[0]
            check(os.access(root + exe, os.X_OK), "%s: ExecStart %s is not what cmake --install installed" % (name, exe))
            # verify sees the host's filesystem: point ExecStart into the scratch root
            with open(os.path.join(verify_dir, name), "w") as f:
                f.write(open(p).read().replace("/usr/local/", root + "/usr/local/"))
        if not analyze:
            return
        units = [os.path.join(verify_dir, n) for n in UNITS]
        r = subprocess.run([analyze, "verify", "--man=no"] + units, capture_output=True, text=True,
                           env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out, "systemd-analyze verify: exit %d: %s" % (r.returncode, out))
        for u in units:
            r = subprocess.run([analyze, "security", "--offline=yes", u], capture_output=True, text=True)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
            score = float(m.group(1)) if m else None
            check(score is not None and score <= MAX_EXPOSURE,
                  "systemd-analyze security %s: exposure %s, want <= %.1f" % (os.path.basename(u), score,
                                                                              MAX_EXPOSURE))
            if score is not None:
                print("systemd units: %s exposure %.1f (systemd-analyze security --offline=yes)"
                      % (os.path.basename(u), score))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    static_checks(build)
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("systemd units: systemd-analyze not found (Debian package systemd): static checks only")
    install_checks(build, analyze)
    for p in problems:
        print("systemd units: FAIL: " + p)
    print("systemd units: %d passed, %d failed%s" % (passed, len(problems),
                                                     "" if analyze else " (no systemd-analyze)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
