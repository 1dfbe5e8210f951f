"""Report sections of the network figures: bridge endpoints (issue 3), published ports,
concurrent starts, data path (throughput and round trips) and the underlay (issue 4).

Each *_section(workdir) returns Markdown lines ([] when its figures were not measured).
Standard library only.
"""

from benchdata import (
    endpoint_levels,
    gbits,
    json_file,
    load_figure,
    median,
    port_figures,
    rtt,
    run_setup_cost,
    PORT_COUNTS,
)

GOAL_ENDPOINT_MS = 5.0
GOAL_SCALING_RATIO = 1.1
GOAL_PORTS1000_MS = 1000.0
GOAL_UNDERLAY_SETUP_MS = 3.0
IPERF_PATHS = (
    ("loopback", "loopback in the sandbox host (127.0.0.1)"),
    ("floor", "floor: veth + bridge + veth built by hand with `ip`"),
    ("c2c", "container to container, one bridge network"),
    ("published", "sandbox host to a published port (127.0.0.1:15201 -> 5201)"),
)
RTT_PATHS = (
    ("loopback", "loopback in the sandbox host (127.0.0.1)"),
    ("floor", "floor: veth + bridge + veth built by hand with `ip`"),
    ("c2c", "container to container, one bridge network"),
    ("published", "sandbox host to a published port (127.0.0.1:11112 -> 11111)"),
    ("macvlan", "container to container, one macvlan network"),
)
UL_IPERF_PATHS = (
    ("ul-loopback", "loopback in host A (127.0.0.1)"),
    ("ul-bridge", "container to container, one bridge network"),
    ("ul-macvlan", "container to container, one macvlan network (host A)"),
    ("ul-hostb", "host B to a macvlan container on host A (lab segment)"),
)


def ms(figure):
    return "not measured" if figure is None else f"{figure['median']:.1f}"


def mmm(figure):
    """'median (min–max)' in ms, or 'not measured'."""
    if figure is None:
        return "not measured"
    return f"{figure['median']:.1f} ({figure['min']:.1f}–{figure['max']:.1f})"


def times(value, base):
    """'×R' of value over base (berth's ratio to a peer), or an em dash; a value ≤ 0 (a
    difference of medians within noise) has no meaningful ratio."""
    if value is None or not base or base <= 0:
        return "—"
    return "≤ 0 (noise)" if value <= 0 else f"×{value / base:.2f}"


def endpoint_table(levels):
    rows = [
        "| endpoints on the network | `run` bridge+`-p` | `run` none | **berth setup** | "
        "`rm -f` bridge+`-p` | `rm -f` none | **berth teardown** | CNI ADD | CNI DEL | "
        "netavark setup | netavark teardown |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, lv in levels.items():
        rows.append(
            f"| {n} | {mmm(lv['bridge-run'])} | {mmm(lv['none-run'])} | **{lv['setup']:.1f}** | "
            f"{mmm(lv['bridge-rm'])} | {mmm(lv['none-rm'])} | **{lv['teardown']:.1f}** | "
            f"{mmm(lv['cni-add'])} | {mmm(lv['cni-del'])} | {mmm(lv['nv-add'])} | {mmm(lv['nv-del'])} |"
        )
    return rows


def endpoint_ratio_table(levels):
    """berth's setup/teardown as a fraction of each peer's, per level."""
    rows = [
        "| endpoints | setup ÷ CNI ADD | setup ÷ netavark setup | teardown ÷ CNI DEL | "
        "teardown ÷ netavark teardown |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n, lv in levels.items():
        def r(what, key):
            f = lv.get(key)
            return times(lv[what], f["median"] if f else None)

        rows.append(f"| {n} | {r('setup', 'cni-add')} | {r('setup', 'nv-add')} | "
                    f"{r('teardown', 'cni-del')} | {r('teardown', 'nv-del')} |")
    return rows


def scaling_goal(levels, what):
    """The 'at the largest fill level at most 1.1x of the empty case' verdict."""
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
            miss = "" if ok == "met" else f", over by {lv[what] - GOAL_ENDPOINT_MS:.1f} ms"
            lines.append(f"- {what} with {n} endpoints: {lv[what]:.1f} ms "
                         f"(goal ≤ {GOAL_ENDPOINT_MS:.0f} ms): **{ok}**{miss}")
        lines.append(scaling_goal(levels, what))
    return lines


def run_cost_lines(json_dir):
    """Each engine's `run --rm` bridge + -p minus --net none: the setup figure Docker offers."""
    costs = {e: run_setup_cost(json_dir, e) for e in ("berth", "podman", "docker")}
    if all(c is None for c in costs.values()):
        return []
    lines = ["", "Endpoint cost as `run --rm` sees it (bridge + `-p` run − `--net none` run, "
             "medians of the run module; the only setup figure Docker offers):", ""]
    for engine, cost in costs.items():
        if cost is None:
            lines.append(f"- {engine}: not measured")
            continue
        vs = "" if engine == "berth" or costs["berth"] is None else \
            f" (berth's is {times(costs['berth'], cost)} of it)"
        lines.append(f"- {engine}: {cost:.1f} ms{vs}")
    return lines


def bridge_section(workdir):
    json_dir = workdir / "json"
    levels = endpoint_levels(json_dir)
    if not levels:
        return []
    out = ["", "## Bridge network: per-endpoint setup and teardown (issue 3), ms", ""]
    out += [
        "berth setup = median of `run -d --net N -p PORT:80 web sleep 1000` − the same with "
        "`--net none`; teardown = `rm -f` of each; cells are median (min–max). CNI = netns + "
        "bridge/portmap plugins called directly; netavark = netns + `netavark setup`/`teardown` "
        "called directly (both with one published port).",
        "",
    ]
    out += endpoint_table(levels) + ["", "berth ÷ peer (lower is better for berth):", ""]
    out += endpoint_ratio_table(levels)
    out += run_cost_lines(json_dir)
    out += ["", "### Goals (issue 3)", ""] + endpoint_goals(levels)
    return out


def ports_section(workdir):
    ports = port_figures(workdir / "json")
    if not ports:
        return []
    rows = ["| ports | " + " | ".join(ports) + " | berth ÷ podman | berth ÷ docker |",
            "|---:|" + "---:|" * (len(ports) + 2)]
    for n in PORT_COUNTS:
        cells = [mmm(ports[e].get(n)) for e in ports]
        berth = ports.get("berth", {}).get(n)
        ratio = [times(berth and berth["median"], (ports.get(p, {}).get(n) or {}).get("median"))
                 for p in ("podman", "docker")]
        rows.append(f"| {n} | " + " | ".join(cells) + f" | {ratio[0]} | {ratio[1]} |")
    out = ["", "## One container publishing N ports: `run -d` wall time, ms (median (min–max))", ""]
    out += rows
    f = ports.get("berth", {}).get(1000)
    if f is not None:
        ok = "met" if f["median"] < GOAL_PORTS1000_MS else "NOT met"
        out += ["", f"- one `run` publishing 1000 ports: {f['median']:.0f} ms (goal < 1 s, "
                f"issue 3): **{ok}**"]
    return out


def concurrent_section(workdir):
    rows = []
    for engine in ("berth", "podman", "docker"):
        data = json_file(workdir, f"concurrent-{engine}.json")
        if data is None:
            continue
        reps = data["reps"]
        t = [r["total_s"] for r in reps]
        rows.append(
            f"| {engine} | {data['containers']} | {len(reps)} | {median(t):.2f} ({min(t):.2f}–{max(t):.2f}) | "
            f"{max(r['failures'] for r in reps)} | {max(r['duplicates'] for r in reps)} | "
            f"{min(r['addresses'] for r in reps)} |")
    if not rows:
        return []
    berth = json_file(workdir, "concurrent-berth.json")
    verdict = []
    if berth is not None:
        bad = [r for r in berth["reps"] if r["failures"] or r["duplicates"]]
        verdict = ["", f"- berth: failures and duplicate addresses must be 0 in every rep: "
                       f"**{'met' if not bad else 'NOT met'}**"]
        bt = median([r["total_s"] for r in berth["reps"]])
        for peer in ("podman", "docker"):
            d = json_file(workdir, f"concurrent-{peer}.json")
            if d is not None:
                verdict.append(f"- berth's total time is {times(bt, median([r['total_s'] for r in d['reps']]))} of {peer}'s")
    return ["", "## Containers started concurrently on one network", "",
            "| engine | containers | reps | total s, median (min–max) | failures (max) | "
            "duplicate addresses (max) | with an address (min) |",
            "|---|---:|---:|---:|---:|---:|---:|"] + rows + verdict


def throughput_lines(workdir):
    loop, floor = gbits(workdir, "loopback"), gbits(workdir, "floor")
    rows = ["| path | Gbit/s | vs loopback | vs floor |", "|---|---:|---:|---:|"]
    for name, label in IPERF_PATHS:
        g = gbits(workdir, name)
        if g is None:
            rows.append(f"| {label} | not measured | | |")
            continue
        rows.append(f"| {label} | {g:.2f} | {times(g, loop)} | {times(g, floor)} |")
    return rows


def rtt_lines(workdir):
    loop, floor = rtt(workdir, "loopback"), rtt(workdir, "floor")
    rows = ["| path | RTT µs, median (min–max) | p99 µs | vs loopback | vs floor |",
            "|---|---:|---:|---:|---:|"]
    for name, label in RTT_PATHS:
        r = rtt(workdir, name)
        if r is None:
            rows.append(f"| {label} | not measured | | | |")
            continue
        rows.append(
            f"| {label} | {r['p50_us']:.1f} ({r['min_us']:.1f}–{r['max_us']:.1f}) | "
            f"{r['p99_us']:.1f} | {times(r['p50_us'], loop and loop['p50_us'])} | "
            f"{times(r['p50_us'], floor and floor['p50_us'])} |")
    return rows


def datapath_section(workdir):
    out = []
    if gbits(workdir, "loopback") is not None or gbits(workdir, "floor") is not None:
        out += ["", "## TCP throughput (iperf3, one stream)", ""] + throughput_lines(workdir)
    if rtt(workdir, "loopback") is not None:
        out += ["", "## TCP round trip (sockperf ping-pong, 14-byte messages)", "",
                "Ratios are RTT ÷ RTT of the reference (above 1 = slower)."]
        out += [""] + rtt_lines(workdir)
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
        f"| {mmm(f['macvlan-run'])} | {mmm(f['none-run'])} | **{setup:.1f}** | "
        f"{mmm(f['macvlan-rm'])} | {mmm(f['none-rm'])} | **{teardown:.1f}** |",
        "",
        "### Goals (issue 4)",
        "",
        f"- macvlan setup per endpoint: {setup:.1f} ms (goal ≤ {GOAL_UNDERLAY_SETUP_MS:.0f} ms): **{ok}**{noise}",
        f"- macvlan teardown per endpoint: {teardown:.1f} ms (no numeric goal)",
    ]
    pm, pn = load_figure(json_dir, "podman-macvlan"), load_figure(json_dir, "podman-ul-none")
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
    floor = gbits(workdir, "floor")
    rows = ["| path | Gbit/s | vs loopback | vs bridge c2c | vs floor |", "|---|---:|---:|---:|---:|"]
    for name, label in UL_IPERF_PATHS:
        g = gbits(workdir, name)
        if g is None:
            rows.append(f"| {label} | not measured | | | |")
            continue
        rows.append(f"| {label} | {g:.2f} | {times(g, loop)} | {times(g, bridge)} | {times(g, floor)} |")
    return rows


def underlay_section(workdir):
    json_dir = workdir / "json"
    endpoint = underlay_endpoint_lines(json_dir)
    if not endpoint and not (workdir / "iperf" / "ul-loopback.json").exists():
        return []
    out = ["", "## Macvlan network: per-endpoint setup and teardown (issue 4), ms", ""]
    out += [
        "setup = `run -d --net MACVLAN web sleep 1000` − the same with `--net none`; "
        "teardown = `rm -f` of each; both measured in this run in ABBA order (half the runs "
        "each); cells are median (min–max).",
        "",
    ]
    out += endpoint or ["- not measured"]
    out += ["", "## TCP throughput on the underlay (iperf3, one stream)", ""]
    out += underlay_throughput_lines(workdir)
    return out
