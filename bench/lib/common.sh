# shellcheck shell=bash
# What every figure module shares: berth called inside the sandbox host, its cleanup, the
# notes and machine facts the report prints, and the per-engine run counts. Sourced by
# bench/bench.sh after the sandbox exists (needs berth_bin, mode, BENCH_* from there); defines:
#   berth_in ARGS...       berth with this run's --root/--runroot inside the sandbox host
#   berth_line ARGS...     the same as a command line (for measure)
#   berth_cleanup          `rm -f` of every berth container left (a hook of the run module)
#   peer_runs CMD...       runs CMD with BENCH_RUNS/BENCH_WARMUP lowered to the peer counts
#                          (BENCH_PEER_RUNS, BENCH_PEER_WARMUP): slow peers take fewer runs
#   skip_note TEXT         prints "SKIP: TEXT" and keeps TEXT as a note of the report
#   tool_version N CMD...  the Nth word of CMD's first output line, or "?" (never fails)
#   write_facts            facts.json on stdout: machine, versions, runs, notes

BENCH_NOTES=(
    "every command runs inside the sandbox netns via \`nsenter --net\` (the same ~1 ms for all); hyperfine subtracts its shell's spawn time"
)

berth_in() {
    in_ns "$berth_bin" --root "$BENCH_WORK/berth/root" --runroot "$BENCH_RUNROOT" "$@"
}

berth_line() {
    echo "nsenter --net=/run/netns/$BENCH_NS $berth_bin --root $BENCH_WORK/berth/root" \
        "--runroot $BENCH_RUNROOT $*"
}

# Containers a failed run left behind; berth's own rm tears down their sandboxes and mounts.
berth_cleanup() {
    local ids
    ids=$(berth_in ps -aq 2>/dev/null) || return 0
    [ -z "$ids" ] || echo "$ids" | xargs -r -n 100 nsenter --net="/run/netns/$BENCH_NS" \
        "$berth_bin" --root "$BENCH_WORK/berth/root" --runroot "$BENCH_RUNROOT" rm -f >/dev/null 2>&1
    return 0
}

berth_image() {
    [ -n "${BENCH_IMAGE_LOADED:-}" ] && return 0
    BENCH_CLEANUP_HOOKS+=(berth_cleanup)
    berth_in load -i "$BENCH_WORK/fixtures/web.docker.tar" >&2
    BENCH_IMAGE_LOADED=1
}

peer_runs() {
    BENCH_RUNS=$BENCH_PEER_RUNS BENCH_WARMUP=$BENCH_PEER_WARMUP "$@"
}

skip_note() {
    echo "SKIP: $*" >&2
    BENCH_NOTES+=("not measured: $*")
}

# A tool's version for the notes. A plain `$(tool --version | awk ...)` inside an assignment
# ends the whole run under `set -euo pipefail` when the tool is absent (issue 10): this never
# fails, and says "?" for a missing or failing tool.
tool_version() {
    local field=$1 out
    shift
    command -v "$1" >/dev/null || { echo "?"; return 0; }
    out=$("$@" 2>&1 </dev/null | head -1) || true
    out=$(awk -v f="$field" '{print $f}' <<<"$out") || true
    echo "${out:-?}"
}

# Why a peer is absent, for skip_note: quick mode installs nothing.
absent_reason() {
    if [ "$mode" = quick ]; then
        echo "$1 is not installed (quick mode installs nothing; \`make bench\` installs it)"
    else
        echo "$1 is not installed (${2:-install failed})"
    fi
}

write_facts() {
    local cgroups=v2 timer pv dv
    [ -d /sys/fs/cgroup/unified ] && cgroups="v1 hybrid (v2 at /sys/fs/cgroup/unified)"
    [ -e /sys/fs/cgroup/memory ] && [ ! -d /sys/fs/cgroup/unified ] && cgroups=v1
    timer="hyperfine $(tool_version 2 hyperfine --version)"
    command -v hyperfine >/dev/null || timer="bash loop with date +%s%N (hyperfine missing)"
    pv="not installed"
    if command -v podman >/dev/null; then
        pv="$(tool_version 3 podman --version), netavark $(tool_version 2 /usr/lib/podman/netavark --version)"
    fi
    dv="not installed"
    if command -v dockerd >/dev/null; then dv=$(tool_version 3 dockerd --version | tr -d ,); fi
    jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg mode "$mode" \
        --arg kernel "$(uname -r)" --arg cpus "$(nproc)" \
        --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
        --arg cgroups "$cgroups" --arg runc "$(tool_version 3 runc --version)" \
        --arg berth "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (+ local changes)')" \
        --arg podman "$pv" --arg docker "$dv" --arg timer "$timer" \
        --arg load "$(cut -d" " -f1-3 /proc/loadavg)" --arg figures "$BENCH_FIGURE_LIST" \
        --arg runs "berth and runc: $BENCH_RUNS runs, $BENCH_WARMUP warmup per figure; peers (podman, docker, CNI, netavark): $BENCH_PEER_RUNS runs, $BENCH_PEER_WARMUP warmup" \
        --arg secs "$(($(date +%s) - BENCH_T0))" \
        --args '{date: $date, mode: $mode, kernel: $kernel, cpus: $cpus, "cpu model": $cpu,
            cgroups: $cgroups, runc: $runc, "berth commit": $berth, podman: $podman,
            docker: $docker, timer: $timer, runs: $runs, figures: $figures,
            "wall time s": $secs, "load average at end": $load,
            notes: $ARGS.positional}' "${BENCH_NOTES[@]}"
}
