# shellcheck shell=bash
# Figure module `memory` (issue 6, figure 6, at rest; the CLI's peak during `run` is in the run
# module): resident memory (VmRSS and VmHWM of /proc/PID/status, proc(5)) of the processes an
# engine keeps per container or per host while a container idles. Sourced by bench/bench.sh;
# defines:
#   memory_figures   writes $BENCH_WORK/memory.json: [{engine, process, rss_kb, hwm_kb}] for
#                      berth     its monitor of one idle container (`berth __monitor`, found by
#                                the container id and this run's runroot in /proc/*/cmdline)
#                                and `berth dns` (its pid file in the runroot), one user network
#                      podman    conmon of one idle container (inspect's ConmonPid)
#                      docker    containerd-shim of one idle container (parent of its pid),
#                                containerd and dockerd
# Only processes of this run are read; none is signalled.

MEM_NET=benchmem

memory_cleanup() {
    berth_in rm -f mem-idle >/dev/null 2>&1
    berth_in network rm "$MEM_NET" >/dev/null 2>&1
    return 0
}

# One row: ENGINE PROCESS PID -> a JSON object appended to $BENCH_WORK/memory.rows (not a
# pipe: the callers start peers, whose state and cleanup hooks must stay in this shell).
memory_row() {
    local rss hwm
    [ -n "$3" ] && [ -r "/proc/$3/status" ] || { echo "bench: memory: no process for $1 $2" >&2; return 0; }
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$3/status")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$3/status")
    jq -n --arg e "$1" --arg p "$2" --argjson r "$rss" --argjson h "$hwm" \
        '{engine: $e, process: $p, rss_kb: $r, hwm_kb: $h}' >>"$BENCH_WORK/memory.rows"
}

# The monitor of berth container $1: the `__monitor` process naming its id and our runroot.
berth_monitor_pid() {
    local id=$1 f
    for f in /proc/[0-9]*/cmdline; do
        tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "__monitor.*$id" || continue
        tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "$BENCH_RUNROOT" || continue
        basename "$(dirname "$f")"
        return 0
    done
}

memory_berth() {
    local id
    berth_image
    BENCH_CLEANUP_HOOKS+=(memory_cleanup)
    berth_in network create "$MEM_NET" >/dev/null
    berth_in run -d --net "$MEM_NET" --name mem-idle web sleep 100000 >/dev/null
    id=$(berth_in inspect mem-idle | jq -r '.[0].Id')
    sleep 1
    memory_row berth "monitor (berth __monitor), per container" "$(berth_monitor_pid "$id")"
    memory_row berth "berth dns, per host" "$(cat "$BENCH_RUNROOT/dns.pid" 2>/dev/null)"
}

memory_podman() {
    command -v podman >/dev/null || { skip_note "memory, podman: $(absent_reason podman)"; return 0; }
    podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
    podman_in run -d --net podman --name mem-idle web sleep 100000 >/dev/null
    sleep 1
    memory_row podman "conmon, per container" "$(podman_in inspect mem-idle --format '{{.State.ConmonPid}}')"
    podman_in rm -f -t 0 mem-idle >/dev/null 2>&1
}

memory_docker() {
    local pid
    docker_available && docker_setup "$BENCH_WORK/fixtures/web.docker.tar" ||
        { skip_note "memory, docker: $(absent_reason docker.io)"; return 0; }
    docker_in run -d --net bridge --name mem-idle web sleep 100000 >/dev/null
    sleep 1
    pid=$(docker_in inspect mem-idle --format '{{.State.Pid}}')
    memory_row docker "containerd-shim-runc-v2, per container" "$(awk '{print $4}' "/proc/$pid/stat")"
    memory_row docker "containerd, per host" "$(pgrep -P "$DOCKER_PID" -x containerd | head -1)"
    memory_row docker "dockerd, per host" "$DOCKER_PID"
    docker_in rm -f mem-idle >/dev/null 2>&1
}

memory_figures() {
    : >"$BENCH_WORK/memory.rows"
    memory_berth
    memory_podman
    memory_docker
    jq -s . "$BENCH_WORK/memory.rows" >"$BENCH_WORK/memory.json"
}
