#!/usr/bin/env bash
# Self-test of the benchmark's own logic, no root and no containers needed:
#   1) the bash-loop fallback of measure.sh writes hyperfine's JSON shape with real timings,
#      and fails when the command fails
#   2) report.py turns canned figures into the right deltas, ratios and goal verdicts
#   3) the same for the bridge figures (setup/teardown differences, scaling, 1000 ports, iperf3)
#   4) the same for the underlay figures (macvlan setup goal, podman's cost, iperf3 ratios)
#   5) ports, concurrent starts, round trips, memory, the extra-module hook, and the PNG plots
#      (when Debian's python3-matplotlib is installed; SKIP otherwise)
# Usage: bench/selftest.sh (exits non-zero on the first failed check).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "selftest: FAILED: $*" >&2; exit 1; }
# shellcheck source=bench/lib/measure.sh
. lib/measure.sh

# 1) fallback timing: 3 runs of a 20 ms sleep.
BENCH_RUNS=3 BENCH_WARMUP=1
measure_loop sleep "sleep 0.02" >"$tmp/sleep.json"
jq -e '.results[0] | (.times | length) == 3 and .median >= 0.02 and .median < 0.5
    and .min <= .median and .median <= .max and .command == "sleep"' "$tmp/sleep.json" >/dev/null ||
    fail "fallback JSON wrong: $(cat "$tmp/sleep.json")"
if measure_loop false "false" >/dev/null 2>&1; then fail "fallback accepted a failing command"; fi

# 2) report: berth 30 ms over runc in none (not met), 10 ms in host (met); podman only for none.
mkdir -p "$tmp/w/json"
fig() { # NAME MEDIAN_MS
    jq -n --argjson m "$2" '{results: [{command: "x", times: [($m / 1000)],
        median: ($m / 1000), min: ($m / 1000), max: ($m / 1000)}]}' >"$tmp/w/json/$1.json"
    echo "cmd $1" >"$tmp/w/json/$1.cmd"
}
fig berth-none 50; fig runc-none 20; fig podman-none 125
fig berth-host 40; fig runc-host 30
echo '{"runs": 3, "process_kb": 25600, "tree_kb": null}' >"$tmp/w/rss-none.json"
jq -n '{date: "D", mode: "quick", kernel: "k", notes: ["a note"]}' >"$tmp/w/facts.json"
python3 report.py "$tmp/w" "$tmp/out.md"
expect() { grep -qF -- "$1" "$tmp/out.md" || fail "report lacks '$1':
$(cat "$tmp/out.md")"; }
expect '| none | berth | 50.0 | 50.0 | 50.0 | +30.0 ms (×2.50) | — |'
expect '| none | podman | 125.0 | 125.0 | 125.0 | +105.0 ms (×6.25) | ×0.40 |'
expect '| host | berth | 40.0 | 40.0 | 40.0 | +10.0 ms (×1.33) | — |'
expect 'berth adds 30.0 ms over bare runc (goal ≤ 15 ms): **NOT met**, over by 15.0 ms'
expect 'berth adds 10.0 ms over bare runc (goal ≤ 15 ms): **met**'
expect "berth takes ×0.40 of podman's time (goal ≤ ×0.5): **met**"
expect '`--net host`: podman comparison not measured'
expect '| `--net none` (max of 3) | 25.0 MiB | n/a (no /usr/bin/time) |'
expect '- a note'

# 3) bridge: setup 4 ms at 0 and 6 ms at 500 (x1.50), teardown 3 ms at both (x1.00); CNI only at 0.
w=$tmp/w; rm -rf "$w/json"; mkdir -p "$w/json" "$w/iperf"
fig ep-0-bridge-run 34; fig ep-0-none-run 30; fig ep-0-bridge-rm 23; fig ep-0-none-rm 20
fig ep-500-bridge-run 40; fig ep-500-none-run 34; fig ep-500-bridge-rm 25; fig ep-500-none-rm 22
fig cni-0-add 60; fig cni-0-del 170; fig nv-0-add 40; fig ports-berth-1000 1200
fig ports-berth-1 50; fig ports-podman-1 200; fig docker-bridgep 300; fig docker-none 200
iperf() { jq -n --argjson b "$2" '{end: {sum_received: {bits_per_second: $b}}}' >"$w/iperf/$1.json"; }
iperf loopback 40e9; iperf c2c 30e9; iperf published 20e9
python3 report.py "$w" "$tmp/out.md"
expect '| 0 | 34.0 (34.0–34.0) | 30.0 (30.0–30.0) | **4.0** | 23.0 (23.0–23.0) | 20.0 (20.0–20.0) | **3.0** | 60.0 (60.0–60.0) | 170.0 (170.0–170.0) | 40.0 (40.0–40.0) | not measured |'
expect '| 500 | 40.0 (40.0–40.0) | 34.0 (34.0–34.0) | **6.0** |'
expect '| 0 | ×0.07 | ×0.10 | ×0.02 | — |'
expect 'setup with 0 endpoints: 4.0 ms (goal ≤ 5 ms): **met**'
expect 'setup with 500 endpoints: 6.0 ms (goal ≤ 5 ms): **NOT met**'
expect 'setup at 500 endpoints: 6.0 ms = ×1.50 of the empty case (4.0 ms) (goal ≤ ×1.1): **NOT met**'
expect 'teardown at 500 endpoints: 3.0 ms = ×1.00 of the empty case (3.0 ms) (goal ≤ ×1.1): **met**'
expect 'one `run` publishing 1000 ports: 1200 ms (goal < 1 s, issue 3): **NOT met**'
expect '| container to container, one bridge network | 30.00 | ×0.75 | — |'
expect '| 20.00 | ×0.50 | — |'
expect '| 1 | 50.0 (50.0–50.0) | 200.0 (200.0–200.0) | ×0.25 | — |'
expect '- docker: 100.0 ms'
expect '- podman: not measured'
if grep -qF 'Goals (issue 2)' "$tmp/out.md" && ! grep -qF '| none | docker |' "$tmp/out.md"; then fail "issue 2 section printed without its figures"; fi
if grep -qF 'Macvlan network' "$tmp/out.md"; then fail "underlay section printed without its figures"; fi

# 4) underlay: setup 2.5 ms (met), teardown 1.5 ms; podman 40 ms; iperf ratios to loopback/bridge.
rm -rf "$w/json" "$w/iperf"; mkdir -p "$w/json" "$w/iperf"
fig ul-macvlan-run 32.5; fig ul-none-run 30; fig ul-macvlan-rm 21.5; fig ul-none-rm 20
fig podman-macvlan 170; fig podman-ul-none 130
iperf ul-loopback 40e9; iperf ul-bridge 20e9; iperf ul-macvlan 30e9; iperf ul-hostb 10e9
python3 report.py "$w" "$tmp/out.md"
expect '| 32.5 (32.5–32.5) | 30.0 (30.0–30.0) | **2.5** | 21.5 (21.5–21.5) | 20.0 (20.0–20.0) | **1.5** |'
expect 'macvlan setup per endpoint: 2.5 ms (goal ≤ 3 ms): **met**'
expect 'macvlan teardown per endpoint: 1.5 ms (no numeric goal)'
expect "podman's macvlan \`run --rm true\`: 170.0 ms vs 130.0 ms with \`--net none\`, so 40.0 ms"
expect '| container to container, one macvlan network (host A) | 30.00 | ×0.75 | ×1.50 | — |'
expect '| host B to a macvlan container on host A (lab segment) | 10.00 | ×0.25 | ×0.50 | — |'
expect '| container to container, one bridge network | 20.00 | ×0.50 | ×1.00 | — |'
fig ul-macvlan-run 34
python3 report.py "$w" "$tmp/out.md"
expect 'macvlan setup per endpoint: 4.0 ms (goal ≤ 3 ms): **NOT met**'
fig ul-macvlan-run 29
python3 report.py "$w" "$tmp/out.md"
expect 'macvlan setup per endpoint: -1.0 ms (goal ≤ 3 ms): **met** (≤ 0 ms: within the noise'

# 5) concurrent (a failure in one rep: NOT met), round trips, memory, extra module, plots.
rm -rf "$w/json" "$w/iperf"; mkdir -p "$w/json" "$w/iperf" "$w/rtt"
jq -n '{containers: 50, reps: [{total_s: 2.0, failures: 0, duplicates: 0, addresses: 50},
    {total_s: 3.0, failures: 1, duplicates: 0, addresses: 49}]}' >"$w/concurrent-berth.json"
jq -n '{containers: 50, reps: [{total_s: 10.0, failures: 0, duplicates: 0, addresses: 50}]}' >"$w/concurrent-docker.json"
rttf() { jq -n --argjson p "$2" '{p50_us: $p, p99_us: ($p * 2), min_us: ($p / 2), max_us: ($p * 10), avg_us: $p, observations: 100}' >"$w/rtt/$1.json"; }
rttf loopback 20; rttf floor 40; rttf c2c 50
iperf loopback 40e9; iperf floor 20e9; iperf c2c 10e9
jq -n '[{engine: "berth", process: "monitor (berth __monitor), per container", rss_kb: 2048, hwm_kb: 3072},
    {engine: "podman", process: "conmon, per container", rss_kb: 1024, hwm_kb: 1024}]' >"$w/memory.json"
jq -n '{date: "D", mode: "quick", kernel: "k", figures: "run,selftestextra", notes: []}' >"$w/facts.json"
cat >"$tmp/report_selftestextra.py" <<'PY'
def section(workdir):
    return ["", "## extra module section"]
PY
PYTHONPATH=$tmp python3 report.py "$w" "$tmp/out.md"
expect '| berth | 50 | 2 | 2.50 (2.00–3.00) | 1 | 0 | 49 |'
expect 'failures and duplicate addresses must be 0 in every rep: **NOT met**'
expect "berth's total time is ×0.25 of docker's"
expect '| container to container, one bridge network | 50.0 (25.0–500.0) | 100.0 | ×2.50 | ×1.25 |'
expect '| container to container, one bridge network | 10.00 | ×0.25 | ×0.50 |'
expect '| podman | conmon, per container | 1.0 | 1.0 | ×2.00 |'
expect '## extra module section'
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    /usr/bin/python3 plots.py "$w" "$tmp/p" 2>/dev/null
    for png in datapath memory; do
        [ "$(head -c4 "$tmp/p-plot-$png.png" | od -An -tx1 | tr -d ' ')" = 89504e47 ] || fail "plot $png is not a PNG"
    done
    [ ! -e "$tmp/p-plot-run.png" ] || fail "run plot drawn without its figures"
    touch "$tmp/out-plot-run.png"
    python3 report.py "$w" "$tmp/out.md"
    expect '![`run --rm web true` per mode and engine](out-plot-run.png)'
else
    echo "SKIP: plots: python3-matplotlib is not installed"
fi
echo "selftest: all checks passed"
