#!/usr/bin/env python3
"""Peak resident memory of a CLI command, written as JSON (kB).

Usage: peak_rss.py RUNS -- CMD [ARGS...]

Two figures, each the maximum over RUNS runs (every run must exit 0):
- "process_kb": VmHWM of the command's own process, polled from /proc/PID/status every
  0.5 ms until it exits (the command must exec, not fork, its final program: nsenter does).
  VmHWM is the mm's high-water mark (proc(5)), so the last read before exit is the peak, save
  for whatever is allocated in the final half millisecond.
- "tree_kb": "Maximum resident set size" of GNU `time -v` (ru_maxrss of wait4: the largest
  of the process and the children it waited for, e.g. runc), or null when /usr/bin/time is
  missing.
Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import time

GNU_TIME = "/usr/bin/time"


def poll_hwm(cmd):
    """Runs cmd once; returns the last VmHWM (kB) read before it exited."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    path = f"/proc/{proc.pid}/status"
    peak = 0
    while proc.poll() is None:
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        except OSError:
            m = None
        if m:
            peak = max(peak, int(m.group(1)))
        time.sleep(0.0005)
    if proc.returncode != 0:
        sys.exit(f"peak_rss: {cmd[0]} exited {proc.returncode}; fix the command first")
    return peak


def gnu_time_max(cmd):
    """Runs cmd once under `time -v`; returns its Maximum resident set size (kB)."""
    out = subprocess.run(
        [GNU_TIME, "-v", *cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"peak_rss: time -v {cmd[0]} exited {out.returncode}: {out.stderr[-400:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    if not m:
        sys.exit("peak_rss: no 'Maximum resident set size' in GNU time's output")
    return int(m.group(1))


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: peak_rss.py RUNS -- CMD [ARGS...]")
    runs, cmd = int(argv[1]), argv[3:]
    process_kb = max(poll_hwm(cmd) for _ in range(runs))
    tree_kb = None
    if os.access(GNU_TIME, os.X_OK):
        tree_kb = max(gnu_time_max(cmd) for _ in range(runs))
    json.dump({"runs": runs, "process_kb": process_kb, "tree_kb": tree_kb}, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv)
