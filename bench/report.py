#!/usr/bin/env python3
"""Writes the benchmark report (Markdown) from hyperfine JSON exports.

Usage: report.py WORKDIR OUT.md

WORKDIR holds:
- json/<figure>.json   hyperfine --export-json output (or bench/lib/measure.sh's fallback in
                       the same shape, times in seconds); figures are berth-none, berth-host,
                       runc-none, runc-host, podman-none, podman-host (podman ones optional)
- json/<figure>.cmd    the command line that was timed
- rss-<mode>.json      bench/peak_rss.py output (kB)
- facts.json           machine and run facts (strings), written by bench/bench.sh
The goals checked come from issue 2: berth adds at most 15 ms over bare runc, and takes at
most half of podman's time. Standard library only.
"""

import json
import sys
from pathlib import Path

MODES = ("none", "host")
ENGINES = ("berth", "runc", "podman")
GOAL_OVER_RUNC_MS = 15.0
GOAL_PODMAN_RATIO = 0.5


def load_figures(json_dir):
    """Returns {(engine, mode): result dict with median/min/max in ms}."""
    figures = {}
    for engine in ENGINES:
        for mode in MODES:
            path = json_dir / f"{engine}-{mode}.json"
            if not path.exists():
                continue
            result = json.loads(path.read_text())["results"][0]
            figures[(engine, mode)] = {
                "median": result["median"] * 1e3,
                "min": result["min"] * 1e3,
                "max": result["max"] * 1e3,
                "runs": len(result["times"]),
                "command": (json_dir / f"{engine}-{mode}.cmd").read_text().strip(),
            }
    return figures


def versus(value, base):
    """'+12.3 ms (x1.25)' relative to base, or an em dash without one."""
    if base is None:
        return "—"
    return f"{value - base:+.1f} ms (×{value / base:.2f})"


def table(figures):
    rows = [
        "| figure | median ms | min ms | max ms | vs runc floor | vs podman |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        floor = figures.get(("runc", mode), {}).get("median")
        podman = figures.get(("podman", mode), {}).get("median")
        for engine in ENGINES:
            f = figures.get((engine, mode))
            if f is None:
                rows.append(f"| {engine} `--net {mode}` | not measured | | | | |")
                continue
            vs_podman = "—" if podman is None else f"×{f['median'] / podman:.2f}"
            rows.append(
                f"| {engine} `--net {mode}` | {f['median']:.1f} | {f['min']:.1f} | "
                f"{f['max']:.1f} | {versus(f['median'], floor)} | {vs_podman} |"
            )
    return rows


def goals(figures):
    lines = []
    for mode in MODES:
        berth = figures.get(("berth", mode))
        floor = figures.get(("runc", mode))
        podman = figures.get(("podman", mode))
        if berth and floor:
            over = berth["median"] - floor["median"]
            ok = "met" if over <= GOAL_OVER_RUNC_MS else "NOT met"
            lines.append(
                f"- `--net {mode}`: berth adds {over:.1f} ms over bare runc "
                f"(goal ≤ {GOAL_OVER_RUNC_MS:.0f} ms): **{ok}**"
            )
        if berth and podman:
            ratio = berth["median"] / podman["median"]
            ok = "met" if ratio <= GOAL_PODMAN_RATIO else "NOT met"
            lines.append(
                f"- `--net {mode}`: berth takes ×{ratio:.2f} of podman's time "
                f"(goal ≤ ×{GOAL_PODMAN_RATIO}): **{ok}**"
            )
        elif berth:
            lines.append(f"- `--net {mode}`: podman comparison not measured (see notes)")
    return lines


def rss_lines(workdir):
    lines = [
        "| `berth run --rm` | berth process (VmHWM, polled) | process tree (GNU time -v) |",
        "|---|---:|---:|",
    ]
    for mode in MODES:
        path = workdir / f"rss-{mode}.json"
        if not path.exists():
            continue
        rss = json.loads(path.read_text())
        tree = "n/a (no /usr/bin/time)" if rss["tree_kb"] is None else f"{rss['tree_kb'] / 1024:.1f} MiB"
        lines.append(f"| `--net {mode}` (max of {rss['runs']}) | {rss['process_kb'] / 1024:.1f} MiB | {tree} |")
    return lines


def render(workdir):
    facts = json.loads((workdir / "facts.json").read_text())
    figures = load_figures(workdir / "json")
    out = [
        f"# berth benchmark: `run --rm IMAGE true` ({facts['date']}, {facts['mode']})",
        "",
        "## Machine and run",
        "",
    ]
    out += [f"- {key}: {value}" for key, value in facts.items() if key not in ("date", "notes")]
    out += ["", "## Wall time per container (create, start, wait, remove)", ""]
    out += table(figures)
    out += ["", "## Goals (issue 2)", ""] + goals(figures)
    out += ["", "## Peak RSS of the berth CLI during `run`", ""] + rss_lines(workdir)
    out += ["", "## Notes", ""] + [f"- {note}" for note in facts.get("notes", [])]
    out += ["", "## Command lines", ""]
    for (engine, mode), f in figures.items():
        out.append(f"- {engine}-{mode} ({f['runs']} runs): `{f['command']}`")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: report.py WORKDIR OUT.md")
    Path(argv[2]).write_text(render(Path(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
