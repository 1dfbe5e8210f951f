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
- json/ep-<N>-{bridge,none}-{run,rm}.json, json/cni-<N>-{add,del}.json, json/ports1000.json
                       the bridge figures of bench/lib/bridge.sh (same shape)
- iperf/{loopback,c2c,published}.json   iperf3 -J output
- json/ul-{macvlan,none}-{run,rm}.json, json/podman-ul-{macvlan,none}.json
                       the underlay figures of bench/lib/underlay.sh (same shape)
- iperf/ul-{loopback,bridge,macvlan,hostb}.json   their iperf3 -J output
The goals checked come from issue 2 (berth adds at most 15 ms over bare runc, and takes at
most half of podman's time) and issue 3 (per-endpoint setup and teardown at most 5 ms each, at
500 endpoints at most 1.1x of the empty case; one `run` publishing 1000 ports under 1 s) and
issue 4 (per-endpoint macvlan setup at most 3 ms).
Standard library only.
"""

import json
import sys
from pathlib import Path

MODES = ("none", "host")
ENGINES = ("berth", "runc", "podman")
GOAL_OVER_RUNC_MS = 15.0
GOAL_PODMAN_RATIO = 0.5
GOAL_ENDPOINT_MS = 5.0
GOAL_SCALING_RATIO = 1.1
GOAL_PORTS1000_MS = 1000.0
GOAL_UNDERLAY_SETUP_MS = 3.0
UL_IPERF_PATHS = (
    ("ul-loopback", "loopback in host A (127.0.0.1)"),
    ("ul-bridge", "container to container, one bridge network"),
    ("ul-macvlan", "container to container, one macvlan network (host A)"),
    ("ul-hostb", "host B to a macvlan container on host A (lab segment)"),
)
IPERF_PATHS = (
    ("loopback", "loopback in the sandbox host (127.0.0.1)"),
    ("c2c", "container to container, one bridge network"),
    ("published", "sandbox host to a published port (127.0.0.1:15201 -> 5201)"),
)


def load_figure(json_dir, name):
    """One figure as {median, min, max (ms), runs, command}, or None when not measured."""
    path = json_dir / f"{name}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())["results"][0]
    return {
        "median": result["median"] * 1e3,
        "min": result["min"] * 1e3,
        "max": result["max"] * 1e3,
        "runs": len(result["times"]),
        "command": (json_dir / f"{name}.cmd").read_text().strip(),
    }


def load_figures(json_dir):
    """Returns {(engine, mode): result dict with median/min/max in ms}."""
    figures = {}
    for engine in ENGINES:
        for mode in MODES:
            figure = load_figure(json_dir, f"{engine}-{mode}")
            if figure is not None:
                figures[(engine, mode)] = figure
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


def endpoint_levels(json_dir):
    """{N: {key: figure}} for every fill level N with berth figures; keys are bridge-run,
    none-run, bridge-rm, none-rm, cni-add, cni-del (the cni ones may be missing)."""
    levels = {}
    for path in json_dir.glob("ep-*-bridge-run.json"):
        n = int(path.name.split("-")[1])
        level = {}
        for key in ("bridge-run", "none-run", "bridge-rm", "none-rm"):
            level[key] = load_figure(json_dir, f"ep-{n}-{key}")
        for key in ("add", "del"):
            level[f"cni-{key}"] = load_figure(json_dir, f"cni-{n}-{key}")
        if all(level[k] for k in ("bridge-run", "none-run", "bridge-rm", "none-rm")):
            level["setup"] = level["bridge-run"]["median"] - level["none-run"]["median"]
            level["teardown"] = level["bridge-rm"]["median"] - level["none-rm"]["median"]
            levels[n] = level
    return dict(sorted(levels.items()))


def ms(figure):
    return "not measured" if figure is None else f"{figure['median']:.1f}"


def endpoint_table(levels):
    rows = [
        "| endpoints already on the network | `run` bridge+`-p` | `run` none | **setup** "
        "| `rm -f` bridge+`-p` | `rm -f` none | **teardown** | CNI bridge+portmap ADD | CNI DEL |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, lv in levels.items():
        rows.append(
            f"| {n} | {ms(lv['bridge-run'])} | {ms(lv['none-run'])} | **{lv['setup']:.1f}** | "
            f"{ms(lv['bridge-rm'])} | {ms(lv['none-rm'])} | **{lv['teardown']:.1f}** | "
            f"{ms(lv['cni-add'])} | {ms(lv['cni-del'])} |"
        )
    return rows


def scaling_goal(levels, what):
    """The 'at the largest fill level at most 1.1x of the empty case' verdict for setup or teardown."""
    top = max(levels)
    if 0 not in levels or top == 0:
        return f"- {what} scaling: needs the 0-endpoint level and a larger one: not measured"
    base, last = levels[0][what], levels[top][what]
    if base <= 0:
        return (f"- {what} at {top} endpoints: {last:.1f} ms vs {base:.1f} ms empty; the empty "
                f"case is ≤ 0 ms (within noise), so the ratio is undefined: **not decided**")
    ratio = last / base
    ok = "met" if ratio <= GOAL_SCALING_RATIO else "NOT met"
    return (f"- {what} at {top} endpoints: {last:.1f} ms = ×{ratio:.2f} of the empty case "
            f"({base:.1f} ms) (goal ≤ ×{GOAL_SCALING_RATIO}): **{ok}**")


def endpoint_goals(levels):
    lines = []
    for what in ("setup", "teardown"):
        for n, lv in levels.items():
            ok = "met" if lv[what] <= GOAL_ENDPOINT_MS else "NOT met"
            lines.append(f"- {what} with {n} endpoints: {lv[what]:.1f} ms "
                         f"(goal ≤ {GOAL_ENDPOINT_MS:.0f} ms): **{ok}**")
        lines.append(scaling_goal(levels, what))
    return lines


def ports_lines(json_dir):
    f = load_figure(json_dir, "ports1000")
    if f is None:
        return ["- not measured"]
    ok = "met" if f["median"] < GOAL_PORTS1000_MS else "NOT met"
    return [
        "| figure | median ms | min ms | max ms |",
        "|---|---:|---:|---:|",
        f"| `run -d -p 20000-20999:20000-20999` | {f['median']:.1f} | {f['min']:.1f} | {f['max']:.1f} |",
        "",
        f"- one `run` publishing 1000 ports: {f['median']:.0f} ms (goal < 1 s): **{ok}**",
    ]


def gbits(workdir, name):
    """Receiver-side Gbit/s of an iperf3 -J run, or None when not measured."""
    path = workdir / "iperf" / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["end"]["sum_received"]["bits_per_second"] / 1e9


def throughput_lines(workdir):
    loop = gbits(workdir, "loopback")
    rows = ["| path | Gbit/s | vs loopback |", "|---|---:|---:|"]
    for name, label in IPERF_PATHS:
        g = gbits(workdir, name)
        if g is None:
            rows.append(f"| {label} | not measured | |")
            continue
        ratio = "—" if not loop else f"×{g / loop:.2f}"
        rows.append(f"| {label} | {g:.2f} | {ratio} |")
    return rows


def bridge_sections(workdir):
    json_dir = workdir / "json"
    levels = endpoint_levels(json_dir)
    if not levels and not (json_dir / "ports1000.json").exists():
        return []
    out = ["", "## Bridge network: per-endpoint setup and teardown (issue 3), medians in ms", ""]
    out += [
        "setup = `run -d --net N -p PORT:80 web sleep 1000` − the same with `--net none`; "
        "teardown = `rm -f` of each; CNI = netns + plugins called directly, for comparison.",
        "",
    ]
    out += endpoint_table(levels)
    out += ["", "## Goals (issue 3)", ""] + endpoint_goals(levels)
    out += ["", "## One `run` publishing 1000 ports", ""] + ports_lines(json_dir)
    out += ["", "## TCP throughput (iperf3, one stream)", ""] + throughput_lines(workdir)
    return out


def underlay_endpoint_lines(json_dir):
    """The macvlan setup/teardown table and its goal; [] when not measured."""
    f = {k: load_figure(json_dir, f"ul-{k}") for k in ("macvlan-run", "none-run", "macvlan-rm", "none-rm")}
    if not all(f.values()):
        return []
    setup = f["macvlan-run"]["median"] - f["none-run"]["median"]
    teardown = f["macvlan-rm"]["median"] - f["none-rm"]["median"]
    ok = "met" if setup <= GOAL_UNDERLAY_SETUP_MS else "NOT met"
    noise = " (≤ 0 ms: within the noise of the `--net none` run)" if setup <= 0 else ""
    lines = [
        "| `run` macvlan | `run` none | **setup** | `rm -f` macvlan | `rm -f` none | **teardown** |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {ms(f['macvlan-run'])} | {ms(f['none-run'])} | **{setup:.1f}** | "
        f"{ms(f['macvlan-rm'])} | {ms(f['none-rm'])} | **{teardown:.1f}** |",
        "",
        "## Goals (issue 4)",
        "",
        f"- macvlan setup per endpoint: {setup:.1f} ms (goal ≤ {GOAL_UNDERLAY_SETUP_MS:.0f} ms): **{ok}**{noise}",
        f"- macvlan teardown per endpoint: {teardown:.1f} ms (no numeric goal)",
    ]
    pm, pn = load_figure(json_dir, "podman-ul-macvlan"), load_figure(json_dir, "podman-ul-none")
    if pm and pn:
        cost = pm["median"] - pn["median"]
        lines.append(
            f"- podman's macvlan `run --rm true`: {pm['median']:.1f} ms vs {pn['median']:.1f} ms "
            f"with `--net none`, so {cost:.1f} ms for its macvlan endpoint (berth: {setup:.1f} ms)"
        )
    else:
        lines.append("- podman's macvlan run cost: not measured (see notes)")
    return lines


def underlay_throughput_lines(workdir):
    loop, bridge = gbits(workdir, "ul-loopback"), gbits(workdir, "ul-bridge")
    rows = ["| path | Gbit/s | vs loopback | vs bridge c2c |", "|---|---:|---:|---:|"]
    for name, label in UL_IPERF_PATHS:
        g = gbits(workdir, name)
        if g is None:
            rows.append(f"| {label} | not measured | | |")
            continue
        vs_loop = "—" if not loop else f"×{g / loop:.2f}"
        vs_bridge = "—" if not bridge else f"×{g / bridge:.2f}"
        rows.append(f"| {label} | {g:.2f} | {vs_loop} | {vs_bridge} |")
    return rows


def underlay_sections(workdir):
    json_dir = workdir / "json"
    endpoint = underlay_endpoint_lines(json_dir)
    if not endpoint and not (workdir / "iperf" / "ul-loopback.json").exists():
        return []
    out = ["", "## Macvlan network: per-endpoint setup and teardown (issue 4), medians in ms", ""]
    out += [
        "setup = `run -d --net MACVLAN web sleep 1000` − the same with `--net none`; "
        "teardown = `rm -f` of each; both measured in this run in ABBA order (half the runs each).",
        "",
    ]
    out += endpoint or ["- not measured"]
    out += ["", "## TCP throughput on the underlay (iperf3, one stream)", ""]
    out += underlay_throughput_lines(workdir)
    return out


def all_figure_names(json_dir):
    return sorted(p.stem for p in json_dir.glob("*.json"))


def render(workdir):
    facts = json.loads((workdir / "facts.json").read_text())
    figures = load_figures(workdir / "json")
    out = [
        f"# berth benchmarks ({facts['date']}, {facts['mode']})",
        "",
        "## Machine and run",
        "",
    ]
    out += [f"- {key}: {value}" for key, value in facts.items() if key not in ("date", "notes")]
    if figures:
        out += ["", "## `run --rm IMAGE true`: wall time per container (create, start, wait, remove)", ""]
        out += table(figures)
        out += ["", "## Goals (issue 2)", ""] + goals(figures)
        out += ["", "## Peak RSS of the berth CLI during `run`", ""] + rss_lines(workdir)
    out += bridge_sections(workdir)
    out += underlay_sections(workdir)
    out += ["", "## Notes", ""] + [f"- {note}" for note in facts.get("notes", [])]
    out += ["", "## Command lines", ""]
    for name in all_figure_names(workdir / "json"):
        f = load_figure(workdir / "json", name)
        out.append(f"- {name} ({f['runs']} runs): `{f['command']}`")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: report.py WORKDIR OUT.md")
    Path(argv[2]).write_text(render(Path(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
