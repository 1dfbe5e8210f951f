# shellcheck shell=bash
# The figures of benchmark 1 and the facts the report prints. Sourced by bench/bench.sh after
# the sandbox exists (needs berth_bin, mode, BENCH_* from there); defines:
#   run_figures    berth-{none,host}, runc-{none,host}, podman-{none,host} when installed,
#                  and rss-{none,host}.json (peak RSS of the berth CLI)
#   write_facts    facts.json on stdout: machine, versions, runs, notes

BENCH_NOTES=(
    "runc floor: \`runc run --keep\` + \`runc delete\` of \`runc spec\`'s config (terminal false, args [\"true\"], writable root) over the fixture rootfs unpacked once into a plain dir (no overlay mount per run); \`none\` joins a netns made once outside the timing (berth makes one per run), \`host\` has no network namespace"
    "every command runs inside the sandbox netns via \`nsenter --net\` (the same ~1 ms for all); hyperfine subtracts its shell's spawn time"
)

berth_in() {
    in_ns "$berth_bin" --root "$BENCH_WORK/berth/root" --runroot "$BENCH_RUNROOT" "$@"
}

berth_cmdline() {
    echo "nsenter --net=/run/netns/$BENCH_NS $berth_bin --root $BENCH_WORK/berth/root" \
        "--runroot $BENCH_RUNROOT run --rm --net $1 web true"
}

# Containers a failed run left behind; berth's own rm tears down their sandboxes and mounts.
berth_cleanup() {
    local ids
    ids=$(berth_in ps -aq 2>/dev/null) || return 0
    [ -z "$ids" ] || berth_in rm -f $ids >/dev/null 2>&1
    return 0
}

figures_berth() {
    BENCH_CLEANUP_HOOKS+=(berth_cleanup)
    berth_in load -i "$BENCH_WORK/fixtures/web.docker.tar" >&2
    BENCH_IMAGE_LOADED=1
    local m
    for m in none host; do
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
    if ! command -v podman >/dev/null; then
        BENCH_NOTES+=("podman: not installed, not measured ($([ "$mode" = quick ] && echo "quick mode installs nothing; \`make bench\` installs it" || echo "BENCH_NO_PODMAN set"))")
        return 0
    fi
    podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
    local m
    for m in none host; do
        measure "podman-$m" "$(podman_cmdline "$m")"
    done
    BENCH_NOTES+=("podman: confined per /work/shared/PEERS.md (state in scratch, runc runtime, cgroupfs, netavark, private mount ns pinned by a sleeper, same sandbox netns)")
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
    figures_rss
}

write_facts() {
    local cgroups=v2 timer hv
    [ -d /sys/fs/cgroup/unified ] && cgroups="v1 hybrid (v2 at /sys/fs/cgroup/unified)"
    [ -e /sys/fs/cgroup/memory ] && [ ! -d /sys/fs/cgroup/unified ] && cgroups=v1
    timer="hyperfine $(hyperfine --version 2>/dev/null | awk '{print $2}')"
    command -v hyperfine >/dev/null || timer="bash loop with date +%s%N (hyperfine missing)"
    hv="not installed"
    command -v podman >/dev/null && hv=$(podman --version | awk '{print $3}')
    jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg mode "$mode" \
        --arg kernel "$(uname -r)" --arg cpus "$(nproc)" \
        --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
        --arg cgroups "$cgroups" --arg runc "$(runc --version | head -1)" \
        --arg berth "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (+ local changes)')" \
        --arg podman "$hv" --arg timer "$timer" --arg load "$(cut -d" " -f1-3 /proc/loadavg)" \
        --arg runs "$BENCH_RUNS runs, $BENCH_WARMUP warmup per figure" \
        --args '{date: $date, mode: $mode, kernel: $kernel, cpus: $cpus, "cpu model": $cpu,
            cgroups: $cgroups, runc: $runc, "berth commit": $berth, podman: $podman,
            timer: $timer, runs: $runs, "load average at end": $load,
            notes: $ARGS.positional}' "${BENCH_NOTES[@]}"
}
