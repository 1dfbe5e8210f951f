# shellcheck shell=bash
# The floor: bare `runc run` of bundles equivalent to what berth runs. Sourced by
# bench/bench.sh; defines:
#   runc_bundles ROOTFS_TAR   unpacks the fixture rootfs once into $BENCH_WORK/runc/rootfs and
#                             writes two bundles sharing it: bundle-none (joins the netns at
#                             /run/netns/$BENCH_CTR_NS, lo up, made once outside the timing)
#                             and bundle-host (no network namespace: the sandbox host's)
#   runc_cmdline MODE         the timed command line: `runc run --keep` then `runc delete`,
#                             so create, start, wait and delete are all in, as in berth
# The config is `runc spec`'s default with terminal false, args ["true"], a writable root.

runc_bundles() {
    local tar=$1 dir=$BENCH_WORK/runc
    mkdir -p "$dir/rootfs" "$dir/state" "$dir/bundle-none" "$dir/bundle-host"
    tar -xf "$tar" -C "$dir/rootfs"
    (cd "$dir" && runc spec && mv config.json config.default.json)
    jq --arg root "$dir/rootfs" --arg netns "/run/netns/$BENCH_CTR_NS" '
        .process.terminal = false | .process.args = ["true"]
        | .root = {path: $root, readonly: false} | .hostname = "bench"
        | .linux.namespaces |= map(if .type == "network" then .path = $netns else . end)' \
        "$dir/config.default.json" >"$dir/bundle-none/config.json"
    jq --arg root "$dir/rootfs" '
        .process.terminal = false | .process.args = ["true"]
        | .root = {path: $root, readonly: false} | .hostname = "bench"
        | .linux.namespaces |= map(select(.type != "network"))' \
        "$dir/config.default.json" >"$dir/bundle-host/config.json"
    BENCH_CLEANUP_HOOKS+=(runc_cleanup)
}

runc_cmdline() {
    local mode=$1 dir=$BENCH_WORK/runc
    local rc="runc --root $dir/state"
    echo "nsenter --net=/run/netns/$BENCH_NS $rc run --keep --bundle $dir/bundle-$mode bench-$mode" \
        "&& $rc delete bench-$mode"
}

# A failed run can leave a stopped container behind (and its cgroup): delete it.
runc_cleanup() {
    local dir=$BENCH_WORK/runc id
    [ -d "$dir/state" ] || return 0
    for id in $(runc --root "$dir/state" list -q 2>/dev/null); do
        runc --root "$dir/state" delete -f "$id" 2>/dev/null
    done
    return 0
}
