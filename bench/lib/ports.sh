# shellcheck shell=bash
# Figure module `ports` (issue 6, figure 3): one container publishing 1, 10, 100 and 1000 ports,
# wall time of its `run -d ... sleep 1000` (each run prepared, untimed, by `rm -f`). Sourced by
# bench/bench.sh; defines:
#   ports_figures   writes ports-ENGINE-N (hyperfine JSON + .cmd) into $BENCH_JSON_DIR:
#                   berth on its own bridge network benchports, podman on its default network,
#                   docker on its default bridge, each with `-p 20000-2000N:20000-2000N`
# Docker publishes through docker-proxy, two processes per port (0.0.0.0 and ::): it is capped
# at BENCH_DOCKER_PORTS_MAX ports (default 100), and the report says so. The peers take
# BENCH_PEER_RUNS runs (3 at most for 1000 ports); in quick mode only with 1 and 10 ports
# (their `rm -f` of a container with many ports takes seconds).

PORTS_NET=benchports
PORTS_COUNTS="1 10 100 1000"
PORTS_CTR=bench-ports

ports_cleanup() {
    berth_in rm -f "$PORTS_CTR" >/dev/null 2>&1
    berth_in network rm "$PORTS_NET" >/dev/null 2>&1
    return 0
}

ports_range() {
    if [ "$1" = 1 ]; then echo 20000:20000; else echo "20000-$((20000 + $1 - 1)):20000-$((20000 + $1 - 1))"; fi
}

# ports_measure ENGINE N LINE_FN: LINE_FN ARGS... prints the engine's command line.
ports_measure() {
    local engine=$1 n=$2 fn=$3 run rm
    run=$($fn run -d --net "$(ports_net "$engine")" -p "$(ports_range "$n")" --name "$PORTS_CTR" web sleep 1000)
    # podman's rm -f stops with SIGTERM and waits 10 s for `sleep` (pid 1 ignores it): -t 0.
    rm=$($fn rm -f $([ "$engine" = podman ] && echo "-t 0") "$PORTS_CTR")
    if [ "$engine" = berth ]; then
        measure_prepared "ports-$engine-$n" "$rm >/dev/null 2>&1 || true" "$run >/dev/null"
    elif [ "$n" -ge 1000 ]; then
        BENCH_PEER_RUNS=$((BENCH_PEER_RUNS < 3 ? BENCH_PEER_RUNS : 3)) BENCH_PEER_WARMUP=0 \
            peer_runs measure_prepared "ports-$engine-$n" "$rm >/dev/null 2>&1 || true" "$run >/dev/null"
    else
        peer_runs measure_prepared "ports-$engine-$n" "$rm >/dev/null 2>&1 || true" "$run >/dev/null"
    fi
    bash -c "$rm" >/dev/null 2>&1 || true
}

ports_net() {
    case $1 in
        berth) echo "$PORTS_NET" ;;
        podman) echo podman ;;
        docker) echo bridge ;;
    esac
}

ports_figures() {
    local n cap=${BENCH_DOCKER_PORTS_MAX:-100} peer_counts=$PORTS_COUNTS
    [ "$mode" = full ] || peer_counts="1 10"
    berth_image
    BENCH_CLEANUP_HOOKS+=(ports_cleanup)
    berth_in network create "$PORTS_NET" >/dev/null
    for n in $PORTS_COUNTS; do
        ports_measure berth "$n" berth_line
    done
    if command -v podman >/dev/null; then
        podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
        for n in $peer_counts; do
            ports_measure podman "$n" podman_line
        done
    else
        skip_note "ports, podman: $(absent_reason podman)"
    fi
    if docker_available && docker_setup "$BENCH_WORK/fixtures/web.docker.tar"; then
        for n in $peer_counts; do
            [ "$n" -le "$cap" ] || { BENCH_NOTES+=("ports: docker not measured with $n ports (capped at $cap: docker-proxy starts two processes per published port)"); continue; }
            ports_measure docker "$n" docker_line
        done
    else
        skip_note "ports, docker: $(absent_reason docker.io)"
    fi
    BENCH_NOTES+=("ports: \`run -d --net NET -p 20000-2000N:20000-2000N web sleep 1000\`, each run prepared by \`rm -f\`; berth on a user bridge network, podman on \`podman\`, docker on \`bridge\`; peers with 1000 ports take at most 3 runs")
}
