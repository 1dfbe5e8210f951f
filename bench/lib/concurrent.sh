# shellcheck shell=bash
# Figure module `concurrent` (issue 6, figure 4): 50 containers started at once on one network.
# Sourced by bench/bench.sh; defines:
#   concurrent_figures   writes $BENCH_WORK/concurrent-ENGINE.json:
#                        {containers, reps: [{total_s, failures, duplicates, addresses}]}
#     total_s      wall time from launching the 50 `run -d --net NET --name conc-I web sleep
#                  1000` (background jobs of one shell) until the last one exited
#     failures     how many of them exited non-zero (must be 0)
#     duplicates   addresses held by more than one container, read back with `inspect`
#                  (must be 0); addresses = how many containers had one
# berth on a user bridge network (3 reps full, 1 quick); podman (`podman` network) and docker
# (`bridge`) in full mode only, 2 reps each. Containers are removed, untimed, after each rep.

CONC_N=${BENCH_CONC_N:-50}
CONC_NET=benchconc

concurrent_cleanup() {
    seq -f 'conc-%.0f' 0 $((CONC_N - 1)) | xargs -r -n 100 nsenter --net="/run/netns/$BENCH_NS" "$berth_bin" \
            --root "$BENCH_WORK/berth/root" --runroot "$BENCH_RUNROOT" rm -f >/dev/null 2>&1
    berth_in network rm "$CONC_NET" >/dev/null 2>&1
    return 0
}

# One rep: CMD_FN ARGS... runs the engine's CLI; NET the network. Prints one JSON object.
concurrent_rep() {
    local fn=$1 net=$2 i t0 t1 fail=0 pids=() ips
    t0=$(date +%s%N)
    for ((i = 0; i < CONC_N; i++)); do
        $fn run -d --net "$net" --name "conc-$i" web sleep 1000 >/dev/null 2>"$BENCH_WORK/conc-$i.err" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || fail=$((fail + 1))
    done
    t1=$(date +%s%N)
    [ "$fail" = 0 ] || echo "bench: concurrent $fn: $fail failed; first error: $(cat "$BENCH_WORK"/conc-*.err | head -3)" >&2
    ips=$(for ((i = 0; i < CONC_N; i++)); do
        $fn inspect "conc-$i" 2>/dev/null | jq -r '.[0].NetworkSettings.Networks[]?.IPAddress // empty'
    done | grep -v '^$' || true)
    jq -n --argjson t "$(((t1 - t0) / 1000000))" --argjson f "$fail" \
        --argjson d "$(sort <<<"$ips" | uniq -d | grep -c . || true)" \
        --argjson a "$(grep -c . <<<"$ips" || true)" \
        '{total_s: ($t / 1000), failures: $f, duplicates: $d, addresses: $a}'
    # shellcheck disable=SC2046 # one name per word; podman's rm waits 10 s for SIGTERM without -t 0
    $fn rm -f $([ "$fn" = podman_in ] && echo "-t 0") $(seq -f 'conc-%.0f' 0 $((CONC_N - 1))) >/dev/null 2>&1
    rm -f "$BENCH_WORK"/conc-*.err
}

concurrent_engine() { # ENGINE CMD_FN NET REPS
    local engine=$1 fn=$2 net=$3 reps=$4 r
    echo "bench: $CONC_N concurrent \`run -d\` on $engine, $reps reps" >&2
    for ((r = 0; r < reps; r++)); do
        concurrent_rep "$fn" "$net"
    done | jq -s --argjson n "$CONC_N" '{containers: $n, reps: .}' >"$BENCH_WORK/concurrent-$engine.json"
}

concurrent_figures() {
    local reps=1
    [ "$mode" = full ] && reps=3
    berth_image
    BENCH_CLEANUP_HOOKS+=(concurrent_cleanup)
    berth_in network create "$CONC_NET" >/dev/null
    concurrent_engine berth berth_in "$CONC_NET" "$reps"
    if [ "$mode" != full ]; then
        skip_note "concurrent starts of podman and docker: full mode only (\`make bench\`)"
        return 0
    fi
    if command -v podman >/dev/null; then
        podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
        concurrent_engine podman podman_in podman 2
    else
        skip_note "concurrent, podman: $(absent_reason podman)"
    fi
    if docker_available && docker_setup "$BENCH_WORK/fixtures/web.docker.tar"; then
        concurrent_engine docker docker_in bridge 2
    else
        skip_note "concurrent, docker: $(absent_reason docker.io)"
    fi
}
