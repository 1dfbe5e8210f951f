#!/usr/bin/env bash
# berth benchmarks. 1 (issue 2): wall time of `run --rm IMAGE true`, --net none and --net host,
# beside the floor (bare `runc run` of an equivalent bundle) and podman when installed; peak RSS
# of the berth CLI. 2 (issue 3, lib/bridge.sh): per-endpoint bridge network setup/teardown at
# 0/100/500 endpoints beside the CNI plugins, one `run` publishing 1000 ports, iperf3 throughput.
# 3 (issue 4, lib/underlay.sh): macvlan per-endpoint setup/teardown (beside podman's macvlan run)
# and iperf3 throughput macvlan to macvlan and from a second host on a lab L2 segment.
# Writes bench/results/<UTC date>.md (quick: <UTC date>-quick.md; a BENCH_FIGURES subset adds
# its figures, e.g. <UTC date>-run-underlay.md) and the raw hyperfine JSON beside it.
#
# Usage: bench/bench.sh --full | --quick
#   --full   30 runs, 5 warmups; installs hyperfine and podman when missing
#            (BENCH_NO_PODMAN=1 skips podman)
#   --quick  3 runs, 1 warmup; installs nothing; uses podman only if already installed;
#            without hyperfine, times a bash loop with `date +%s%N`
# BERTH_BIN overrides the binary (default: cargo build --release --bin berth).
# BENCH_FIGURES=run,bridge,underlay (the default; any subset, comma-separated) picks benchmark 1
# (`run --rm`), the bridge-networking figures of issue 3 (lib/bridge.sh) and/or the underlay
# figures of issue 4 (lib/underlay.sh); BENCH_ENDPOINTS="0 100 500" overrides the endpoint
# counts of the bridge figures.
#
# Everything runs inside a throwaway network namespace; the root namespace's links, addresses,
# routes and rules are compared before and after (a difference fails the run). A trap removes
# everything this script made, pass or fail, and kills only the pids it started.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD/bench
# shellcheck source=bench/lib/sandbox.sh
. "$here/lib/sandbox.sh"
# shellcheck source=bench/lib/measure.sh
. "$here/lib/measure.sh"
# shellcheck source=bench/lib/runc.sh
. "$here/lib/runc.sh"
# shellcheck source=bench/lib/podman.sh
. "$here/lib/podman.sh"

mode=${1:-}
case $mode in
    --full) BENCH_RUNS=30 BENCH_WARMUP=5 ;;
    --quick) BENCH_RUNS=3 BENCH_WARMUP=1 ;;
    *) echo "usage: bench/bench.sh --full | --quick" >&2; exit 2 ;;
esac
mode=${mode#--}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (namespaces, mounts, containers)" >&2; exit 1; }

apt_install() {
    echo "bench: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# Peers and tools: full mode may install hyperfine, GNU time and podman; quick mode nothing.
prepare_tools() {
    local t
    for t in runc jq umoci skopeo nsenter ss; do
        command -v "$t" >/dev/null || { echo "bench: $t missing (see .ci/run)" >&2; exit 1; }
    done
    [ "$mode" = full ] || return 0
    command -v hyperfine >/dev/null || apt_install hyperfine
    command -v iperf3 >/dev/null || apt_install iperf3
    [ -x /usr/bin/time ] || apt_install time
    if [ -z "${BENCH_NO_PODMAN:-}" ] && ! command -v podman >/dev/null; then
        apt_install podman
    fi
}

berth_binary() {
    if [ -n "${BERTH_BIN:-}" ]; then
        realpath "$BERTH_BIN"
    else
        cargo build --release --bin berth >&2
        echo "$PWD/target/release/berth"
    fi
}

# Root namespace check, run from the EXIT trap after the sandbox is gone.
finish() {
    local rc=$?
    set +e
    sandbox_cleanup
    rootns_snapshot "$snap_after"
    if [ -s "$snap_before" ] && ! diff -u "$snap_before" "$snap_after" >&2; then
        echo "bench: FAILED: the root network namespace changed (diff above)" >&2
        rc=1
    fi
    rm -f "$snap_before" "$snap_before.tmp" "$snap_after"
    exit $rc
}

snap_before=$(mktemp /var/tmp/berth-bench-root.XXXXXX)
snap_after=$(mktemp /var/tmp/berth-bench-root.XXXXXX)
trap finish EXIT
rootns_snapshot "$snap_before.tmp" && mv "$snap_before.tmp" "$snap_before"
trap 'exit 130' INT TERM

prepare_tools
berth_bin=$(berth_binary)
sandbox_create
BENCH_JSON_DIR=$BENCH_WORK/json
mkdir -p "$BENCH_JSON_DIR" "$BENCH_WORK/fixtures"
bash tests/fixtures/build-image.sh "$BENCH_WORK/fixtures" >&2

# shellcheck source=bench/lib/figures.sh
. "$here/lib/figures.sh"
# shellcheck source=bench/lib/bridge.sh
. "$here/lib/bridge.sh"
# shellcheck source=bench/lib/underlay.sh
. "$here/lib/underlay.sh"
figures=,${BENCH_FIGURES:-run,bridge,underlay},
case $figures in *,run,*) run_figures ;; esac
case $figures in *,bridge,*) run_bridge_figures ;; esac
case $figures in *,underlay,*) run_underlay_figures ;; esac
write_facts >"$BENCH_WORK/facts.json"

stamp=$(date -u +%Y-%m-%d)
[ "$mode" = quick ] && stamp=$stamp-quick
# A partial run gets its own file, so it never replaces a full day's report.
[ "$figures" = ,run,bridge,underlay, ] || stamp=$stamp-$(sed 's/^,//; s/,$//; s/,/-/g' <<<"$figures")
out=$here/results/$stamp.md
mkdir -p "$here/results"
python3 "$here/report.py" "$BENCH_WORK" "$out"
jq -s 'map(.results[0])' "$BENCH_JSON_DIR"/*.json >"${out%.md}.json"
cat "$out"
echo "bench: wrote $out" >&2
