# shellcheck shell=bash
# Podman as the peer, confined the way /work/shared/PEERS.md describes: all its state in the
# scratch dir, runc as runtime (Debian's crun refuses hybrid cgroups), cgroupfs, and every call
# inside the sandbox netns plus a private mount namespace pinned by a sleeper process (so its
# overlay and netns bind mounts never reach the machine's mount table and persist between
# calls). Sourced by bench/bench.sh; defines:
#   podman_setup TAR          writes the configs, starts the sleeper, loads the image
#   podman_cmdline MODE       the timed `podman run --rm --net MODE web true`; MODE bridge is
#                             its default network `podman`, bridgep the same with -p 18083:80
#   podman_line ARGS...       any podman command line, confined the same way (for measure)
# Limits: podman asks for nofile 1048576 and a large nproc by default; root here cannot raise
# hard limits, so runc would fail with EPERM: ask for this shell's nofile hard limit, and for
# nproc at most 32768 (conmon, which starts runc, runs with nproc 32768 here, found by trying).
# Cleanup (registered as a hook): `podman rm -af`, kill the sleeper by pid, remove the cgroup
# dirs and the empty state dirs podman 4.3 makes outside its configured ones (/run/runc, its
# runc root; /run/containers/networks, netavark's run dir) when they did not exist before.

PODMAN_SLEEPER=""
PODMAN_CGROUPS_BEFORE=""
PODMAN_HOST_DIRS=(/run/containers/networks /run/containers /run/runc)
PODMAN_HOST_DIRS_BEFORE=""

podman_write_conf() {
    local d=$1 nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
    mkdir -p "$d/networks" "$d/tmp" "$d/graph" "$d/runroot" "$d/volumes"
    cat >"$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[network]
network_backend = "netavark"
network_config_dir = "$d/networks"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/events.log"
tmp_dir = "$d/tmp"
volume_path = "$d/volumes"
EOF
    cat >"$d/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$d/graph"
runroot = "$d/runroot"
EOF
}

podman_setup() {
    local tar=$1 d=$BENCH_WORK/podman
    [ -z "$PODMAN_SLEEPER" ] || return 0
    podman_write_conf "$d"
    export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
    PODMAN_CGROUPS_BEFORE=$(ls -d /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/*/machine.slice 2>/dev/null || true)
    PODMAN_HOST_DIRS_BEFORE=$(ls -d "${PODMAN_HOST_DIRS[@]}" 2>/dev/null || true)
    BENCH_CLEANUP_HOOKS+=(podman_cleanup)
    # nsenter and unshare exec (no fork), so $! is the sleeper itself.
    nsenter --net="/run/netns/$BENCH_NS" unshare --mount --propagation slave sleep infinity &
    PODMAN_SLEEPER=$!
    sleep 0.2
    podman_in load -q -i "$tar" >&2
}

podman_in() {
    nsenter --mount="/proc/$PODMAN_SLEEPER/ns/mnt" --net="/run/netns/$BENCH_NS" podman "$@"
}

podman_line() {
    echo "nsenter --mount=/proc/$PODMAN_SLEEPER/ns/mnt --net=/run/netns/$BENCH_NS podman $*"
}

podman_cmdline() {
    case $1 in
        bridge) podman_line run --rm --net podman web true ;;
        bridgep) podman_line run --rm --net podman -p 18083:80 web true ;;
        *) podman_line run --rm --net "$1" web true ;;
    esac
}

podman_cleanup() {
    local dir
    [ -n "$PODMAN_SLEEPER" ] || return 0
    podman_in rm -af -t 0 >/dev/null 2>&1
    kill "$PODMAN_SLEEPER" 2>/dev/null && wait "$PODMAN_SLEEPER" 2>/dev/null
    PODMAN_SLEEPER=""
    podman_remove_cgroups
    for dir in "${PODMAN_HOST_DIRS[@]}"; do
        grep -qxF "$dir" <<<"$PODMAN_HOST_DIRS_BEFORE" || rmdir "$dir" 2>/dev/null
    done
    return 0
}

# Depth first: only empty cgroups can be removed. conmon and `podman container cleanup` of the
# last --rm container may still be exiting, so retry for up to 5 s.
podman_remove_cgroups() {
    local dir try left
    for try in $(seq 50); do
        left=0
        for dir in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/*/machine.slice; do
            [ -d "$dir" ] || continue
            grep -qxF "$dir" <<<"$PODMAN_CGROUPS_BEFORE" && continue
            find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
            [ -d "$dir" ] && left=1
        done
        [ $left = 0 ] && return 0
        sleep 0.1
    done
    echo "bench: podman's cgroups are still busy: $(ls -d /sys/fs/cgroup/*/libpod_parent)" >&2
}
