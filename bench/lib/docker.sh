# shellcheck shell=bash
# Docker Engine as a peer, confined the way /work/shared/PEERS.md describes: Debian's docker.io
# 20.10 (dockerd, its own containerd child, runc) started inside the sandbox netns and a private
# mount namespace, every path of its state in the scratch dir, cgroupfs. Sourced by
# bench/bench.sh; defines:
#   DOCKER_NS                 the name of dockerd's netns (set by docker_setup)
#   docker_available          true when dockerd and a docker client are installed
#   docker_setup TAR          writes daemon.json, starts dockerd, waits for its socket, loads
#                             the fixture image (idempotent: a second call does nothing)
#   docker_in ARGS...         the docker client against this run's daemon
#   docker_line ARGS...       the same as a command line (for measure)
#   docker_cmdline MODE       the timed `docker run --rm --net MODE web true`; MODE bridgep is
#                             `--net bridge -p 18082:80`
# Addresses: docker0 is 10.86.0.1/16 and its pools 10.85.0.0/16, clear of berth's, podman's
# (10.88/16), the CNI peer's (10.87/16) and netavark's (10.89/16) in the same sandbox netns.
# Cleanup (a hook): `rm -f` of every container and user network, SIGTERM to the dockerd pid
# (it stops its containerd), wait for it to exit, then remove what 20.10 writes outside its
# configured dirs when it did not exist before: /run/docker/plugins, /run/docker,
# /run/containerd/s, /run/containerd, and its cgroups /sys/fs/cgroup/*/docker.

DOCKER_PID=""
DOCKER_DIR=""
DOCKER_NS=""
DOCKER_HOST_DIRS=(/run/docker/plugins /run/docker /run/containerd/s /run/containerd)
DOCKER_BEFORE=""
DOCKER_PORT=18082

docker_available() { command -v dockerd >/dev/null && command -v docker >/dev/null; }

docker_write_conf() {
    local d=$1 nofile
    nofile=$(ulimit -Hn)
    mkdir -p "$d/data" "$d/exec"
    jq -n --arg d "$d" --argjson n "$nofile" '{
        "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
        "default-ulimits": {nofile: {Name: "nofile", Hard: $n, Soft: $n}},
        iptables: true, ipv6: false, bip: "10.86.0.1/16",
        "default-address-pools": [{base: "10.85.0.0/16", size: 24}], "deprecated-key-path": ($d + "/key.json"),
        "log-level": "warn"}' >"$d/daemon.json"
}

docker_setup() {
    local tar=$1 i
    [ -z "$DOCKER_PID" ] || return 0
    DOCKER_DIR=$BENCH_WORK/docker
    docker_write_conf "$DOCKER_DIR"
    DOCKER_BEFORE=$(ls -d "${DOCKER_HOST_DIRS[@]}" /sys/fs/cgroup/*/docker 2>/dev/null || true)
    BENCH_CLEANUP_HOOKS+=(docker_cleanup)
    DOCKER_NS=$BENCH_NS-d
    ip netns add "$DOCKER_NS"
    ip -n "$DOCKER_NS" link set lo up
    # setsid, nsenter and unshare all exec (no fork) from a background job, so $! is dockerd.
    setsid nsenter --net="/run/netns/$DOCKER_NS" unshare --mount --propagation slave \
        dockerd --config-file "$DOCKER_DIR/daemon.json" --data-root "$DOCKER_DIR/data" \
        --exec-root "$DOCKER_DIR/exec" --pidfile "$DOCKER_DIR/docker.pid" \
        -H "unix://$DOCKER_DIR/docker.sock" >"$DOCKER_DIR/dockerd.log" 2>&1 &
    DOCKER_PID=$!
    for i in $(seq 150); do
        docker_in version >/dev/null 2>&1 && break
        kill -0 "$DOCKER_PID" 2>/dev/null || break
        sleep 0.2
    done
    docker_in version >/dev/null 2>&1 || {
        echo "bench: dockerd did not start; its log:" >&2
        tail -20 "$DOCKER_DIR/dockerd.log" >&2
        return 1
    }
    docker_in load -q -i "$tar" >&2
}

docker_in() { DOCKER_HOST="unix://$DOCKER_DIR/docker.sock" docker "$@"; }

docker_line() { echo "DOCKER_HOST=unix://$DOCKER_DIR/docker.sock docker $*"; }

docker_cmdline() {
    case $1 in
        bridgep) docker_line run --rm --net bridge -p "$DOCKER_PORT:80" web true ;;
        *) docker_line run --rm --net "$1" web true ;;
    esac
}

docker_cleanup() {
    local ids i dir
    [ -n "$DOCKER_PID" ] || return 0
    ids=$(docker_in ps -aq 2>/dev/null)
    [ -z "$ids" ] || docker_in rm -f $ids >/dev/null 2>&1
    docker_in network prune -f >/dev/null 2>&1
    kill "$DOCKER_PID" 2>/dev/null
    for i in $(seq 150); do
        kill -0 "$DOCKER_PID" 2>/dev/null || break
        sleep 0.2
    done
    wait "$DOCKER_PID" 2>/dev/null
    DOCKER_PID=""
    [ -z "$DOCKER_NS" ] || ip netns del "$DOCKER_NS" 2>/dev/null
    for dir in /sys/fs/cgroup/*/docker; do
        [ -d "$dir" ] || continue
        grep -qxF "$dir" <<<"$DOCKER_BEFORE" && continue
        find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    for dir in "${DOCKER_HOST_DIRS[@]}"; do
        grep -qxF "$dir" <<<"$DOCKER_BEFORE" || rm -rf "$dir" 2>/dev/null
    done
    return 0
}
