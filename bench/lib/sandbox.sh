# shellcheck shell=bash
# Sandbox for the benchmark: a throwaway network namespace that plays the host (every berth,
# runc and podman call runs inside it via `nsenter --net`), a second one whose path the bare
# runc "none" bundle joins, a scratch dir, and a snapshot of the root namespace that must be
# identical before and after. Sourced by bench/bench.sh; defines:
#   sandbox_create            sets BENCH_NS, BENCH_CTR_NS, BENCH_WORK, BENCH_RUNROOT (a short
#                             path on /run: berth's unix sockets live below it, and a socket
#                             path must fit sun_path's 108 bytes, unix(7))
#   in_ns CMD...              runs CMD inside BENCH_NS (nsenter, not `ip netns exec`: that
#                             remounts /sys and hides the cgroup mounts runc needs)
#   rootns_snapshot FILE      writes the root namespace's links, addresses, routes, rules
#   bench_track_pid PID       remembers a pid this run started, killed by pid on cleanup
#   sandbox_cleanup           best-effort teardown of everything above (trap EXIT)

BENCH_PIDS=()
BENCH_CLEANUP_HOOKS=()

sandbox_create() {
    local suffix
    suffix=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    BENCH_WORK=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
    BENCH_RUNROOT=$(mktemp -d /run/bb.XXXXXX)
    BENCH_NS=berth-b-$suffix
    BENCH_CTR_NS=berth-b-$suffix-c
    ip netns add "$BENCH_NS"
    ip -n "$BENCH_NS" link set lo up
    ip netns add "$BENCH_CTR_NS"
    ip -n "$BENCH_CTR_NS" link set lo up
}

in_ns() { nsenter --net="/run/netns/$BENCH_NS" "$@"; }

# Everything that a container engine could change in the machine's root namespace: links,
# addresses, routes, policy rules, the nft ruleset, iptables-save and ip6tables-save, and the
# forwarding, route_localnet and bridge-nf sysctls. Comment lines of iptables-save carry a
# timestamp, so they are dropped.
rootns_snapshot() {
    {
        echo "## ip -br link"; ip -br link
        echo "## ip -br addr"; ip -br addr
        echo "## ip route"; ip route; ip -6 route
        echo "## ip rule"; ip rule; ip -6 rule
        echo "## nft list ruleset"; nft list ruleset 2>&1
        if command -v iptables-save >/dev/null; then
            echo "## iptables-save"; iptables-save 2>/dev/null | { grep -v '^#' || true; }
        fi
        if command -v ip6tables-save >/dev/null; then
            echo "## ip6tables-save"; ip6tables-save 2>/dev/null | { grep -v '^#' || true; }
        fi
        echo "## sysctl"
        sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet
        sysctl net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables 2>&1
    } >"$1"
}

bench_track_pid() { BENCH_PIDS+=("$1"); }

# Hooks run first (last registered first), then started pids are killed, then mounts under
# the scratch dir are lazily unmounted and the namespaces and scratch dir removed.
sandbox_cleanup() {
    local i pid m d
    for ((i = ${#BENCH_CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do
        "${BENCH_CLEANUP_HOOKS[$i]}" || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    for d in ${BENCH_RUNROOT:-} ${BENCH_WORK:-}; do
        grep -o " $d/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null
        done
    done
    [ -n "${BENCH_CTR_NS:-}" ] && ip netns del "$BENCH_CTR_NS" 2>/dev/null
    [ -n "${BENCH_NS:-}" ] && ip netns del "$BENCH_NS" 2>/dev/null
    [ -n "${BENCH_RUNROOT:-}" ] && rm -rf "$BENCH_RUNROOT"
    [ -n "${BENCH_WORK:-}" ] && rm -rf "$BENCH_WORK"
    return 0
}
