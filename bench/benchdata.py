"""Reads the raw data a benchmark run leaves in its work dir (shared by report.py, plots.py).

Layout of WORKDIR (written by bench/bench.sh and its modules in bench/lib):
- json/<figure>.json   hyperfine --export-json output (or lib/measure.sh's fallback in the same
                       shape, times in seconds); json/<figure>.cmd the timed command line
- iperf/<path>.json    iperf3 -J output; rtt/<path>.json sockperf summaries (lib/datapath.sh)
- concurrent-<engine>.json, memory.json, rss-<mode>.json, facts.json
Standard library only.
"""

import json

ENGINES = ("berth", "runc", "podman", "docker")
RUN_MODES = ("none", "host", "bridge", "bridgep", "macvlan")
MODE_LABELS = {
    "none": "none",
    "host": "host",
    "bridge": "bridge",
    "bridgep": "bridge + -p",
    "macvlan": "macvlan",
}
PORT_COUNTS = (1, 10, 100, 1000)


def load_figure(json_dir, name):
    """One figure as {median, min, max (ms), runs, command}, or None when not measured."""
    path = json_dir / f"{name}.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())["results"][0]
    cmd = json_dir / f"{name}.cmd"
    return {
        "median": result["median"] * 1e3,
        "min": result["min"] * 1e3,
        "max": result["max"] * 1e3,
        "runs": len(result["times"]),
        "command": cmd.read_text().strip() if cmd.exists() else "",
    }


def run_figures(json_dir):
    """{(engine, mode): figure} of `run --rm web true`; macvlan comes from the underlay
    module (podman's as podman-macvlan, measured beside podman-ul-none)."""
    figures = {}
    for engine in ENGINES:
        for mode in RUN_MODES:
            figure = load_figure(json_dir, f"{engine}-{mode}")
            if figure is not None:
                figures[(engine, mode)] = figure
    return figures


def endpoint_levels(json_dir):
    """{N: {key: figure or difference}} for every fill level N with berth figures: keys
    bridge-run, none-run, bridge-rm, none-rm, cni-add, cni-del, nv-add, nv-del (peers may be
    None), and setup/teardown (berth's differences of medians, ms)."""
    levels = {}
    for path in json_dir.glob("ep-*-bridge-run.json"):
        n = int(path.name.split("-")[1])
        level = {}
        for key in ("bridge-run", "none-run", "bridge-rm", "none-rm"):
            level[key] = load_figure(json_dir, f"ep-{n}-{key}")
        for peer in ("cni", "nv"):
            for key in ("add", "del"):
                level[f"{peer}-{key}"] = load_figure(json_dir, f"{peer}-{n}-{key}")
        if all(level[k] for k in ("bridge-run", "none-run", "bridge-rm", "none-rm")):
            level["setup"] = level["bridge-run"]["median"] - level["none-run"]["median"]
            level["teardown"] = level["bridge-rm"]["median"] - level["none-rm"]["median"]
            levels[n] = level
    return dict(sorted(levels.items()))


def run_setup_cost(json_dir, engine):
    """An engine's bridge + -p `run --rm` minus its `--net none` run (ms), or None."""
    p = load_figure(json_dir, f"{engine}-bridgep")
    n = load_figure(json_dir, f"{engine}-none")
    return None if p is None or n is None else p["median"] - n["median"]


def port_figures(json_dir):
    """{engine: {ports: figure}} of the ports module."""
    out = {}
    for engine in ("berth", "podman", "docker"):
        per = {n: load_figure(json_dir, f"ports-{engine}-{n}") for n in PORT_COUNTS}
        per = {n: f for n, f in per.items() if f is not None}
        if per:
            out[engine] = per
    return out


def gbits(workdir, name):
    """Receiver-side Gbit/s of an iperf3 -J run, or None when not measured."""
    path = workdir / "iperf" / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["end"]["sum_received"]["bits_per_second"] / 1e9


def rtt(workdir, name):
    """sockperf summary {p50_us, p99_us, min_us, max_us, avg_us, observations} or None."""
    path = workdir / "rtt" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def json_file(workdir, name):
    """A JSON file of the work dir, or None when that figure was not measured."""
    path = workdir / name
    return json.loads(path.read_text()) if path.exists() else None


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
