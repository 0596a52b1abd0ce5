"""make_sample.py: cuts a small verbatim fixture out of a raw capture.py recording (all instances).
Keeps the reports where an EAM, master.* or worker.* value changed, plus the first and last,
and a few lines of every other source; lines stay verbatim and in arrival order.
Usage: python3 make_sample.py RAW OUT   (RAW.conns must sit beside RAW)"""

import re
import sys

MAX_LINES = 295


def reports(raw_path):
    """Yields (connection index, [lines]) in arrival order; one TCP connection = one report."""
    with open(raw_path, "rb") as f:
        lines = f.read().decode().splitlines(keepends=True)
    pos = 0
    with open(raw_path + ".conns") as f:
        for i, rec in enumerate(f):
            n = int(re.search(r" lines=(\d+) ", rec).group(1))
            yield i, lines[pos:pos + n]
            pos += n
    assert pos == len(lines), "conns file does not match the capture"


def kind(line):
    path = line.split(" ", 1)[0]
    if ".driver.ExecutorAllocationManager.executors." in path:
        return "eam"
    if re.match(r"^[^.]+\.master\.", path):
        return "master"
    if re.match(r"^[^.]+\.worker\.", path):
        return "worker"
    return None


def main():
    raw, out = sys.argv[1], sys.argv[2]
    reps = list(reports(raw))
    keep = set()  # (report index, line index)
    # 1. The tracked gauges: reports whose values changed, plus the first and last of each kind.
    for k in ("eam", "master", "worker"):
        seq = [(i, [(j, l) for j, l in enumerate(ls) if kind(l) == k]) for i, ls in reps]
        seq = [(i, sel) for i, sel in seq if sel]
        prev = None
        for n, (i, sel) in enumerate(seq):
            # numberMaxNeededExecutors falls by one nearly every report as tasks finish;
            # the ramp and release show in the other gauges.
            vals = [l.split(" ")[0:2] for _, l in sel if "numberMaxNeeded" not in l]
            if vals != prev or n in (0, len(seq) - 1):
                keep.update((i, j) for j, _ in sel)
            prev = vals
    # 2. A slice of everything else, from reports in the middle of the job: up to 3 lines per
    #    (instance, source), the whole timer that names ExecutorAllocationManager (a decoy for
    #    decoders), and the master's "applications" instance.
    mid = len(reps) // 2
    seen = {}
    for i, ls in reps[mid:mid + 12]:
        for j, l in enumerate(ls):
            path = l.split(" ", 1)[0]
            if kind(l):
                continue
            if "ExecutorAllocationManager$" in path:
                if re.search(r"\.(count|max|mean|p99|m1_rate)$", path) and seen.get("decoy", i) == i:
                    seen["decoy"] = i
                    keep.add((i, j))
                continue
            parts = path.split(".")
            if len(parts) > 2 and parts[1].startswith("app-"):
                key = (parts[2] if parts[2] == "driver" else "executor", parts[3])
            else:
                key = ("bare", parts[1])
            if seen.get(key, 0) < 3:
                seen[key] = seen.get(key, 0) + 1
                keep.add((i, j))
    lines = [l for i, ls in reps for j, l in enumerate(ls) if (i, j) in keep]
    if len(lines) > MAX_LINES:
        sys.exit("sample has %d lines (> %d): capture a shorter job" % (len(lines), MAX_LINES))
    with open(out, "w") as f:
        f.writelines(lines)
    print("%s: %d lines from %d reports" % (out, len(lines), len(reps)))


if __name__ == "__main__":
    main()
