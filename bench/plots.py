#!/usr/bin/python3
"""Draws the benchmark's PNG plots from the raw data of one run (matplotlib, Agg backend).

Usage: /usr/bin/python3 plots.py WORKDIR PREFIX

Writes PREFIX-plot-<name>.png for each plot whose data exists (WORKDIR laid out as
bench/benchdata.py says):
- run         bars: `run --rm web true` median per mode and engine, min–max whiskers
- endpoints   lines: per-endpoint setup and teardown vs endpoints on the network (berth's
              differences of medians; CNI and netavark direct calls with min–max whiskers;
              Docker's and podman's run-minus-none cost as single points at 0)
- ports       lines: `run -d` time vs published ports, per engine, min–max whiskers
- datapath    bars: throughput ÷ loopback and ÷ floor; round trip ÷ loopback and ÷ floor
- memory      bars: VmRSS at rest of per-container and per-host processes
plus, for every extra module NAME listed in facts.json's "figures" with a
bench/report_NAME.py defining plots(workdir, prefix), what that function draws (it should
write PREFIX-plot-NAME.png to be linked from the report).
Needs Debian's python3-matplotlib (run with /usr/bin/python3, not a pyenv shim).
"""

import importlib
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdata import (  # noqa: E402
    ENGINES,
    MODE_LABELS,
    PORT_COUNTS,
    RUN_MODES,
    endpoint_levels,
    gbits,
    json_file,
    port_figures,
    rtt,
    run_figures,
    run_setup_cost,
)

COLORS = {"berth": "#1f77b4", "runc": "#7f7f7f", "podman": "#9467bd", "docker": "#2ca02c",
          "cni": "#ff7f0e", "netavark": "#d62728"}
BUILTIN = ("run", "bridge", "underlay", "ports", "concurrent", "datapath", "memory")


def save(fig, prefix, name):
    path = Path(f"{prefix}-plot-{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plots: wrote {path}", file=sys.stderr)
    return path


def whiskers(figures):
    """(medians, [lower errors, upper errors]) for errorbar from figure dicts."""
    med = [f["median"] for f in figures]
    return med, [[m - f["min"] for m, f in zip(med, figures)], [f["max"] - m for m, f in zip(med, figures)]]


def plot_run(workdir, prefix):
    figures = run_figures(workdir / "json")
    if not figures:
        return None
    modes = [m for m in RUN_MODES if any((e, m) in figures for e in ENGINES)]
    engines = [e for e in ENGINES if any((e, m) in figures for m in modes)]
    fig, ax = plt.subplots(figsize=(10, 5.2))
    width = 0.8 / len(engines)
    for i, engine in enumerate(engines):
        xs, fs = [], []
        for j, mode in enumerate(modes):
            if (engine, mode) in figures:
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                fs.append(figures[(engine, mode)])
        med, err = whiskers(fs)
        bars = ax.bar(xs, med, width, yerr=err, capsize=3, label=engine, color=COLORS[engine])
        ax.bar_label(bars, labels=[f"{m:.0f}" for m in med], fontsize=8, padding=2)
    ax.set_xticks(range(len(modes)), [MODE_LABELS[m] for m in modes])
    ax.set_ylabel("wall time, ms (median; whiskers min–max)")
    ax.set_title("run --rm web true: create, start, wait, remove")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save(fig, prefix, "run")


def endpoint_series(levels, key):
    pts = [(n, lv[key]) for n, lv in levels.items() if lv.get(key)]
    return [n for n, _ in pts], [f for _, f in pts]


def plot_endpoints_axis(ax, levels, what, json_dir):
    ns = list(levels)
    ax.plot(ns, [lv[what] for lv in levels.values()], "o-", color=COLORS["berth"], lw=2,
            label="berth (run/rm bridge+-p − none, medians)")
    key = "add" if what == "setup" else "del"
    for peer, label in (("cni", "CNI bridge+portmap (direct)"), ("nv", "netavark (direct)")):
        xs, fs = endpoint_series(levels, f"{peer}-{key}")
        if xs:
            med, err = whiskers(fs)
            ax.errorbar(xs, med, yerr=err, fmt="s-", capsize=3, label=label,
                        color=COLORS["cni" if peer == "cni" else "netavark"])
    if what == "setup":
        for engine in ("podman", "docker"):
            cost = run_setup_cost(json_dir, engine)
            if cost is not None:
                ax.plot([0], [cost], "D", ms=8, color=COLORS[engine],
                        label=f"{engine}: run bridge+-p − run none (at 0)")
    ax.set_xlabel("endpoints already on the network")
    ax.set_ylabel(f"{what} per endpoint, ms")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_title(f"per-endpoint {what}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def plot_endpoints(workdir, prefix):
    levels = endpoint_levels(workdir / "json")
    if not levels:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, what in zip(axes, ("setup", "teardown")):
        plot_endpoints_axis(ax, levels, what, workdir / "json")
    return save(fig, prefix, "endpoints")


def plot_ports(workdir, prefix):
    ports = port_figures(workdir / "json")
    if not ports:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for engine, per in ports.items():
        xs = sorted(per)
        med, err = whiskers([per[n] for n in xs])
        ax.errorbar(xs, med, yerr=err, fmt="o-", capsize=3, label=engine, color=COLORS[engine])
        for x, m in zip(xs, med):
            ax.annotate(f"{m:.0f}", (x, m), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(PORT_COUNTS, [str(n) for n in PORT_COUNTS])
    ax.set_xlabel("published ports (one container)")
    ax.set_ylabel("run -d wall time, ms (median; whiskers min–max)")
    ax.set_title("one container publishing N ports")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save(fig, prefix, "ports")


def ratio_bars(ax, labels, values, title, ylabel):
    bars = ax.bar(range(len(values)), values, color=COLORS["berth"])
    ax.bar_label(bars, labels=[f"×{v:.2f}" for v in values], fontsize=8, padding=2)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_datapath(workdir, prefix):
    paths = [("floor", "floor (hand-built)"), ("c2c", "bridge c2c"), ("published", "published port"),
             ("ul-macvlan", "macvlan c2c"), ("ul-hostb", "host B → macvlan")]
    loop, floor = gbits(workdir, "loopback") or gbits(workdir, "ul-loopback"), gbits(workdir, "floor")
    rtt_paths = [("floor", "floor (hand-built)"), ("c2c", "bridge c2c"),
                 ("published", "published port"), ("macvlan", "macvlan c2c")]
    rloop, rfloor = rtt(workdir, "loopback"), rtt(workdir, "floor")
    panels = []
    for ref, refname in ((loop, "loopback"), (floor, "floor")):
        if ref:
            got = [(label, gbits(workdir, n) / ref) for n, label in paths
                   if gbits(workdir, n) is not None and not (refname == "floor" and n == "floor")]
            panels.append((got, f"iperf3 throughput ÷ {refname} (higher is better)", "ratio"))
    for ref, refname in ((rloop, "loopback"), (rfloor, "floor")):
        if ref:
            got = [(label, rtt(workdir, n)["p50_us"] / ref["p50_us"]) for n, label in rtt_paths
                   if rtt(workdir, n) is not None and not (refname == "floor" and n == "floor")]
            panels.append((got, f"TCP round trip (median) ÷ {refname} (lower is better)", "ratio"))
    panels = [p for p in panels if p[0]]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.8), squeeze=False)
    for ax, (got, title, ylabel) in zip(axes[0], panels):
        ratio_bars(ax, [g[0] for g in got], [g[1] for g in got], title, ylabel)
    return save(fig, prefix, "datapath")


def plot_memory(workdir, prefix):
    rows = json_file(workdir, "memory.json")
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [f"{r['engine']}\n{r['process'].split(',')[0]}" for r in rows]
    vals = [r["rss_kb"] / 1024 for r in rows]
    bars = ax.barh(range(len(rows)), vals, color=[COLORS.get(r["engine"], "gray") for r in rows])
    ax.bar_label(bars, labels=[f"{v:.1f} MiB" for v in vals], fontsize=8, padding=2)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("VmRSS at rest, MiB (one idle container)")
    ax.set_title("resident memory of what each engine keeps running")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, prefix, "memory")


def extra_plots(workdir, prefix):
    facts = json_file(workdir, "facts.json") or {}
    for name in facts.get("figures", "").split(","):
        if not name or name in BUILTIN:
            continue
        try:
            module = importlib.import_module(f"report_{name}")
        except ModuleNotFoundError:
            continue
        if hasattr(module, "plots"):
            module.plots(workdir, prefix)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: plots.py WORKDIR PREFIX")
    workdir, prefix = Path(argv[1]), argv[2]
    for plot in (plot_run, plot_endpoints, plot_ports, plot_datapath, plot_memory):
        plot(workdir, prefix)
    extra_plots(workdir, prefix)


if __name__ == "__main__":
    main(sys.argv)
