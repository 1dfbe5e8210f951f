#!/usr/bin/env bash
# Self-test of the benchmark's own logic, no root and no containers needed:
#   1) the bash-loop fallback of measure.sh writes hyperfine's JSON shape with real timings,
#      and fails when the command fails
#   2) report.py turns canned figures into the right deltas, ratios and goal verdicts
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
expect '| berth `--net none` | 50.0 | 50.0 | 50.0 | +30.0 ms (×2.50) | ×0.40 |'
expect '| berth `--net host` | 40.0 | 40.0 | 40.0 | +10.0 ms (×1.33) | — |'
expect '| podman `--net host` | not measured |'
expect 'berth adds 30.0 ms over bare runc (goal ≤ 15 ms): **NOT met**'
expect 'berth adds 10.0 ms over bare runc (goal ≤ 15 ms): **met**'
expect "berth takes ×0.40 of podman's time (goal ≤ ×0.5): **met**"
expect '`--net host`: podman comparison not measured'
expect '| `--net none` (max of 3) | 25.0 MiB | n/a (no /usr/bin/time) |'
expect '- a note'
echo "selftest: all checks passed"
