#!/usr/bin/env python3
"""Writes the benchmark report (Markdown) from the raw data of one run.

Usage: report.py WORKDIR OUT.md

WORKDIR is laid out as bench/benchdata.py says. Sections: machine and run; `run --rm` per
mode and engine (issues 2 and 6); memory (CLI peak, monitor and `berth dns` at rest); then
report_net.py's bridge endpoints (issue 3), ports, concurrent starts, data path and underlay
(issue 4); then the section of every extra module (bench/report_NAME.py defining
section(workdir) for a module NAME listed in facts.json's "figures"); the plots that
plots.py wrote beside OUT.md (<OUT stem>-plot-*.png); notes; command lines.
Goals checked: issue 2 (berth adds at most 15 ms over bare runc and takes at most half of
podman's time), issue 3 (per-endpoint setup/teardown ≤ 5 ms, at the largest fill level ≤ 1.1×
the empty case; one `run` publishing 1000 ports < 1 s), issue 4 (macvlan setup ≤ 3 ms).
Standard library only.
"""

import importlib
import json
import sys
from pathlib import Path

from benchdata import (
    ENGINES,
    MODE_LABELS,
    RUN_MODES,
    json_file,
    load_figure,
    run_figures,
)
import report_net

GOAL_OVER_RUNC_MS = 15.0
GOAL_PODMAN_RATIO = 0.5
BUILTIN_MODULES = ("run", "bridge", "underlay", "ports", "concurrent", "datapath", "memory")
PLOT_CAPTIONS = {
    "run": "`run --rm web true` per mode and engine",
    "endpoints": "per-endpoint setup and teardown vs endpoints on the network",
    "ports": "`run -d` time vs published ports",
    "datapath": "data path ratios (throughput and round trip) to loopback and the floor",
    "memory": "resident memory at rest",
}


def versus(value, base):
    """'+12.3 ms (×1.25)' relative to base, or an em dash without one."""
    if base is None:
        return "—"
    return f"{value - base:+.1f} ms (×{value / base:.2f})"


def ratio(value, base):
    return "—" if base is None else f"×{value / base:.2f}"


def run_table(figures):
    rows = [
        "| mode | engine | median ms | min ms | max ms | vs runc floor | berth ÷ this |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode in RUN_MODES:
        floor = figures.get(("runc", mode), {}).get("median")
        berth = figures.get(("berth", mode), {}).get("median")
        for engine in ENGINES:
            f = figures.get((engine, mode))
            if f is None:
                continue
            mine = "—" if berth is None or engine == "berth" else ratio(berth, f["median"])
            rows.append(
                f"| {MODE_LABELS[mode]} | {engine} | {f['median']:.1f} | {f['min']:.1f} | "
                f"{f['max']:.1f} | {versus(f['median'], floor)} | {mine} |"
            )
    return rows


def run_goals(figures):
    lines = []
    for mode in ("none", "host"):
        berth = figures.get(("berth", mode))
        floor = figures.get(("runc", mode))
        podman = figures.get(("podman", mode))
        if berth and floor:
            over = berth["median"] - floor["median"]
            ok = "met" if over <= GOAL_OVER_RUNC_MS else "NOT met"
            miss = "" if ok == "met" else f", over by {over - GOAL_OVER_RUNC_MS:.1f} ms"
            lines.append(
                f"- `--net {mode}`: berth adds {over:.1f} ms over bare runc "
                f"(goal ≤ {GOAL_OVER_RUNC_MS:.0f} ms): **{ok}**{miss}"
            )
        if berth and podman:
            r = berth["median"] / podman["median"]
            ok = "met" if r <= GOAL_PODMAN_RATIO else "NOT met"
            lines.append(
                f"- `--net {mode}`: berth takes ×{r:.2f} of podman's time "
                f"(goal ≤ ×{GOAL_PODMAN_RATIO}): **{ok}**"
            )
        elif berth:
            lines.append(f"- `--net {mode}`: podman comparison not measured (see notes)")
    return lines


def run_section(workdir):
    figures = run_figures(workdir / "json")
    if not figures:
        return []
    out = ["", "## `run --rm IMAGE true`: wall time per container (create, start, wait, remove)", ""]
    out += ["bridge = berth's user network / each peer's default bridge network; bridge + -p adds "
            "one published port; macvlan from the underlay module's lab segment.", ""]
    out += run_table(figures)
    out += ["", "### Goals (issue 2)", ""] + run_goals(figures)
    return out


def rss_lines(workdir):
    lines = [
        "| `berth run --rm` | berth process (VmHWM, polled) | process tree (GNU time -v) |",
        "|---|---:|---:|",
    ]
    for mode in ("none", "host"):
        rss = json_file(workdir, f"rss-{mode}.json")
        if rss is None:
            continue
        tree = "n/a (no /usr/bin/time)" if rss["tree_kb"] is None else f"{rss['tree_kb'] / 1024:.1f} MiB"
        lines.append(f"| `--net {mode}` (max of {rss['runs']}) | {rss['process_kb'] / 1024:.1f} MiB | {tree} |")
    return lines


def memory_section(workdir):
    out = []
    if (workdir / "rss-none.json").exists():
        out += ["", "## Peak RSS of the berth CLI during `run`", ""] + rss_lines(workdir)
    rows = json_file(workdir, "memory.json")
    if rows:
        berth_mon = next((r for r in rows if r["engine"] == "berth" and "monitor" in r["process"]), None)
        out += ["", "## Resident memory at rest (one idle container)", "",
                "| engine | process | VmRSS MiB | VmHWM MiB | berth monitor ÷ this |",
                "|---|---|---:|---:|---:|"]
        for r in rows:
            per = "per container" in r["process"]
            vs = ratio(berth_mon["rss_kb"], r["rss_kb"]) if berth_mon and per and r is not berth_mon else "—"
            out.append(f"| {r['engine']} | {r['process']} | {r['rss_kb'] / 1024:.1f} | "
                       f"{r['hwm_kb'] / 1024:.1f} | {vs} |")
    return out


def extra_sections(workdir, facts):
    """Sections of modules beyond the built-in ones (bench/report_NAME.py: section(workdir))."""
    out = []
    for name in facts.get("figures", "").split(","):
        if not name or name in BUILTIN_MODULES:
            continue
        try:
            module = importlib.import_module(f"report_{name}")
        except ModuleNotFoundError:
            continue
        out += module.section(workdir)
    return out


def plot_lines(out_md):
    pngs = sorted(out_md.parent.glob(f"{out_md.stem}-plot-*.png"))
    if not pngs:
        return []
    lines = ["", "## Plots", ""]
    for png in pngs:
        key = png.stem[len(out_md.stem) + len("-plot-"):]
        lines += [f"![{PLOT_CAPTIONS.get(key, key)}]({png.name})", ""]
    return lines


def render(workdir, out_md):
    facts = json.loads((workdir / "facts.json").read_text())
    out = [f"# berth benchmarks ({facts['date']}, {facts['mode']})", "", "## Machine and run", ""]
    out += [f"- {key}: {value}" for key, value in facts.items() if key not in ("date", "notes")]
    out += run_section(workdir)
    out += memory_section(workdir)
    out += report_net.bridge_section(workdir)
    out += report_net.ports_section(workdir)
    out += report_net.concurrent_section(workdir)
    out += report_net.datapath_section(workdir)
    out += report_net.underlay_section(workdir)
    out += extra_sections(workdir, facts)
    out += plot_lines(out_md)
    out += ["", "## Notes", ""] + [f"- {note}" for note in facts.get("notes", [])]
    out += ["", "## Command lines", ""]
    for path in sorted((workdir / "json").glob("*.json")):
        f = load_figure(workdir / "json", path.stem)
        out.append(f"- {path.stem} ({f['runs']} runs): `{f['command']}`")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: report.py WORKDIR OUT.md")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    out = Path(argv[2])
    out.write_text(render(Path(argv[1]), out))


if __name__ == "__main__":
    main(sys.argv)
