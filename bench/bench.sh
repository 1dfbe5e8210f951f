#!/usr/bin/env bash
# berth benchmarks, side by side with Docker, Podman/netavark, the CNI plugins and bare runc
# (issue 6). Every figure is a module bench/lib/NAME.sh defining NAME_figures; the default
# modules, in order:
#   run         `run --rm web true` per mode (none, host, bridge, bridge + -p) vs runc, podman,
#               docker; peak RSS of the berth CLI during `run`
#   bridge      per-endpoint bridge setup/teardown at 0/100/500/1000 endpoints vs the CNI
#               plugins and netavark called directly; iperf3 throughput
#   underlay    macvlan setup/teardown and `run --rm` vs podman/docker; iperf3 on a lab segment
#   ports       one container publishing 1, 10, 100, 1000 ports vs podman, docker
#   concurrent  50 containers started at once: total time, failures, duplicate addresses
#   datapath    TCP round trips (sockperf) loopback/floor/c2c/published/macvlan
#   memory      RSS at rest of the monitor and `berth dns` vs conmon, containerd-shim, dockerd
# Writes bench/results/<UTC date>.md (quick: <UTC date>-quick.md; a BENCH_FIGURES subset adds
# its names, e.g. <UTC date>-run-ports.md), PNG plots beside it (<stem>-plot-<name>.png) and the raw
# hyperfine JSON (<stem>.json).
#
# Usage: bench/bench.sh --full | --quick
#   --full   berth and runc 30 runs + 5 warmups, peers 15 + 2; endpoints 0 100 500 1000;
#            installs hyperfine, iperf3, sockperf, GNU time, matplotlib, podman and docker.io
#            when missing (BENCH_NO_PODMAN=1 / BENCH_NO_DOCKER=1 skip those peers)
#   --quick  3 runs, 1 warmup (peers 3 + 0); endpoints 0 100; installs nothing and skips what
#            is absent with a printed reason; without hyperfine, times a bash loop
# BERTH_BIN overrides the binary (default: cargo build --release --bin berth).
# BENCH_FIGURES=run,bridge,... picks modules (comma-separated, in that order). A new module
# (e.g. pull) is a file bench/lib/NAME.sh defining NAME_figures, which writes its data into
# $BENCH_WORK, plus optionally bench/report_NAME.py (section(workdir) -> Markdown lines, and
# plots(workdir, prefix) -> PNG paths) that report.py and plots.py pick up; see bench/README.md.
# BENCH_KEEP=DIR keeps a copy of the raw data for `report.py DIR OUT.md` / `plots.py DIR PREFIX`.
# BENCH_ENDPOINTS="0 100" overrides the endpoint counts of the bridge module.
#
# Everything runs inside throwaway network namespaces; the root namespace's links, addresses,
# routes, rules, nft ruleset, iptables-save and forwarding sysctls are compared before and
# after (a difference fails the run). A trap removes everything this script made, pass or
# fail, and kills only the pids it started.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD/bench
BENCH_T0=$(date +%s)
BENCH_DEFAULT_FIGURES=run,bridge,underlay,ports,concurrent,datapath,memory,pull
# shellcheck source=bench/lib/sandbox.sh
. "$here/lib/sandbox.sh"
# shellcheck source=bench/lib/measure.sh
. "$here/lib/measure.sh"
# shellcheck source=bench/lib/runc.sh
. "$here/lib/runc.sh"
# shellcheck source=bench/lib/podman.sh
. "$here/lib/podman.sh"
# shellcheck source=bench/lib/docker.sh
. "$here/lib/docker.sh"

mode=${1:-}
case $mode in
    --full) BENCH_RUNS=30 BENCH_WARMUP=5 BENCH_PEER_RUNS=15 BENCH_PEER_WARMUP=2 ;;
    --quick) BENCH_RUNS=3 BENCH_WARMUP=1 BENCH_PEER_RUNS=3 BENCH_PEER_WARMUP=0 ;;
    *) echo "usage: bench/bench.sh --full | --quick" >&2; exit 2 ;;
esac
mode=${mode#--}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (namespaces, mounts, containers)" >&2; exit 1; }
BENCH_FIGURE_LIST=${BENCH_FIGURES:-$BENCH_DEFAULT_FIGURES}
for f in ${BENCH_FIGURE_LIST//,/ }; do
    [ -f "$here/lib/$f.sh" ] || { echo "bench: no figure module bench/lib/$f.sh" >&2; exit 2; }
done

# apt-get update once per run (a fresh machine's package lists may be empty), then install.
apt_install() {
    echo "bench: installing $*" >&2
    if [ -z "${BENCH_APT_UPDATED:-}" ]; then
        apt-get update -q >&2
        BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# Peers and tools: full mode installs what is missing; quick mode nothing.
prepare_tools() {
    local t
    for t in runc jq umoci skopeo nsenter ss; do
        command -v "$t" >/dev/null || { echo "bench: $t missing (see .ci/run)" >&2; exit 1; }
    done
    [ "$mode" = full ] || return 0
    command -v hyperfine >/dev/null || apt_install hyperfine
    command -v iperf3 >/dev/null || apt_install iperf3
    command -v sockperf >/dev/null || apt_install sockperf
    [ -x /usr/bin/time ] || apt_install time
    /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || apt_install python3-matplotlib
    # The CNI peer (bridge module) and the registry the pull module serves from.
    [ -x /usr/lib/cni/bridge ] || apt_install containernetworking-plugins
    command -v iptables >/dev/null || apt_install iptables
    command -v docker-registry >/dev/null || apt_install docker-registry
    # podman with --no-install-recommends gets containernetworking-plugins for its network
    # dependency, not netavark: without netavark (and aardvark-dns) it refuses every run.
    if [ -z "${BENCH_NO_PODMAN:-}" ]; then
        command -v podman >/dev/null || apt_install podman
        [ -x /usr/lib/podman/netavark ] && [ -x /usr/lib/podman/aardvark-dns ] ||
            apt_install netavark aardvark-dns
    fi
    if [ -z "${BENCH_NO_DOCKER:-}" ] && ! command -v dockerd >/dev/null; then
        apt_install docker.io
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

# Markdown report, PNG plots and raw JSON under bench/results.
write_results() {
    local stem out
    stem=$(date -u +%Y-%m-%d)
    [ "$mode" = quick ] && stem=$stem-quick
    # A partial run gets its own file, so it never replaces a full day's report.
    [ "$BENCH_FIGURE_LIST" = "$BENCH_DEFAULT_FIGURES" ] || stem=$stem-${BENCH_FIGURE_LIST//,/-}
    out=$here/results/$stem.md
    mkdir -p "$here/results"
    rm -f "$here/results/$stem"-plot-*.png
    # BENCH_KEEP=DIR keeps a copy of the raw data (to rework report.py/plots.py without a rerun).
    [ -z "${BENCH_KEEP:-}" ] || { mkdir -p "$BENCH_KEEP" && { cp -r "$BENCH_WORK"/{json,iperf,rtt,*.json} "$BENCH_KEEP"/ 2>/dev/null || true; }; }
    if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
        /usr/bin/python3 "$here/plots.py" "$BENCH_WORK" "${out%.md}" >&2
    else
        echo "SKIP: plots: python3-matplotlib is not installed (\`make bench\` installs it)" >&2
    fi
    python3 "$here/report.py" "$BENCH_WORK" "$out"
    if compgen -G "$BENCH_JSON_DIR/*.json" >/dev/null; then
        jq -s 'map(.results[0])' "$BENCH_JSON_DIR"/*.json >"${out%.md}.json"
    fi
    cat "$out"
    echo "bench: wrote $out ($(($(date +%s) - BENCH_T0)) s)" >&2
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

# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"
# The built-in modules are all sourced (they share helpers, e.g. iperf_server), then any extra
# module named in BENCH_FIGURES; then the chosen ones run, in order.
for f in $(tr , ' ' <<<"$BENCH_DEFAULT_FIGURES,$BENCH_FIGURE_LIST" | xargs -n1 | awk '!seen[$0]++'); do
    # shellcheck disable=SC1090 # the modules are sourced by name
    . "$here/lib/$f.sh"
done
for f in ${BENCH_FIGURE_LIST//,/ }; do
    echo "bench: == module $f ($(($(date +%s) - BENCH_T0)) s) ==" >&2
    "${f}_figures"
done
# Peers may be skipped; berth's own figures never are (issue 10).
if [ "${BENCH_BERTH_TIMED:-0}" = 0 ]; then
    echo "bench: FAILED: no berth figure was timed (modules: $BENCH_FIGURE_LIST)" >&2
    exit 1
fi
write_facts >"$BENCH_WORK/facts.json"
write_results
