# shellcheck shell=bash
# Figure module `run` (issues 2 and 6, figure 1): wall time of `run --rm web true` per mode for
# berth, the runc floor, podman and Docker, and the peak RSS of the berth CLI. Sourced by
# bench/bench.sh; defines:
#   run_figures    writes into $BENCH_JSON_DIR (hyperfine JSON + .cmd):
#                    ENGINE-MODE for berth (none host bridge bridgep), runc (none host),
#                    podman and docker (none host bridge bridgep) when installed; bridge is a
#                    user network for berth (benchrun) and each peer's default bridge network,
#                    bridgep the same plus one published port; the macvlan mode is measured
#                    by the underlay module (it owns the lab segment)
#                  and rss-{none,host}.json (peak RSS of the berth CLI, bench/peak_rss.py)

RUN_NET=benchrun
RUN_PORT=18081

BENCH_NOTES+=(
    "runc floor: \`runc run --keep\` + \`runc delete\` of \`runc spec\`'s config (terminal false, args [\"true\"], writable root) over the fixture rootfs unpacked once into a plain dir (no overlay mount per run); \`none\` joins a netns made once outside the timing (berth makes one per run), \`host\` has no network namespace"
)

berth_cmdline() {
    case $1 in
        bridge) berth_line run --rm --net "$RUN_NET" web true ;;
        bridgep) berth_line run --rm --net "$RUN_NET" -p "$RUN_PORT:80" web true ;;
        *) berth_line run --rm --net "$1" web true ;;
    esac
}

run_cleanup() { berth_in network rm "$RUN_NET" >/dev/null 2>&1; return 0; }

figures_berth() {
    berth_image
    BENCH_CLEANUP_HOOKS+=(run_cleanup)
    berth_in network create "$RUN_NET" >/dev/null
    local m
    for m in none host bridge bridgep; do
        measure "berth-$m" "$(berth_cmdline "$m")"
    done
}

figures_runc() {
    runc_bundles "$BENCH_WORK/fixtures/rootfs.tar"
    local m
    for m in none host; do
        measure "runc-$m" "$(runc_cmdline "$m")"
    done
}

figures_podman() {
    command -v podman >/dev/null || { skip_note "podman run: $(absent_reason podman "BENCH_NO_PODMAN set")"; return 0; }
    podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
    local m
    for m in none host bridge bridgep; do
        peer_runs measure "podman-$m" "$(podman_cmdline "$m")"
    done
    BENCH_NOTES+=("podman: confined per /work/shared/PEERS.md (state in scratch, runc runtime, cgroupfs, netavark with its iptables driver, private mount ns pinned by a sleeper, same sandbox netns); bridge = its default network \`podman\`, bridgep = the same with \`-p 18083:80\`")
}

figures_docker() {
    docker_available || { skip_note "docker run: $(absent_reason docker.io "BENCH_NO_DOCKER set")"; return 0; }
    docker_setup "$BENCH_WORK/fixtures/web.docker.tar" || { skip_note "docker run: dockerd did not start"; return 0; }
    local m
    for m in none host bridge bridgep; do
        peer_runs measure "docker-$m" "$(docker_cmdline "$m")"
    done
    BENCH_NOTES+=("docker: Debian docker.io $(tool_version 3 dockerd --version | tr -d ,) confined per /work/shared/PEERS.md (dockerd in the sandbox netns and a private mount namespace, data/exec root in scratch, cgroupfs, its own containerd and runc); bridge = its default \`bridge\`, bridgep = \`-p 18082:80\` (docker-proxy for loopback traffic)")
}

figures_rss() {
    local runs=3 m
    [ "$mode" = full ] && runs=10
    for m in none host; do
        # shellcheck disable=SC2046 # the command line is split into argv on purpose
        python3 "$here/peak_rss.py" "$runs" -- $(berth_cmdline "$m") >"$BENCH_WORK/rss-$m.json"
    done
}

run_figures() {
    figures_berth
    figures_runc
    figures_podman
    figures_docker
    figures_rss
}
