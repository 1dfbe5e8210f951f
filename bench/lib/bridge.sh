# shellcheck shell=bash
# Figure module `bridge` (issues 3 and 6, figure 2). Sourced by bench/bench.sh (needs
# berth_in, berth_line from lib/common.sh, mode, BENCH_*); defines:
#   bridge_figures       writes into $BENCH_JSON_DIR (hyperfine JSON + .cmd, as measure does):
#     ep-<N>-{bridge,none}-{run,rm}   berth `run -d` / `rm -f` with N idle containers already on
#                                     the network (bridge: --net benchnet -p 18080:80; none:
#                                     --net none); setup = bridge run - none run, teardown =
#                                     bridge rm - none rm (report.py does the arithmetic)
#     cni-<N>-{add,del}               the CNI bridge + portmap plugins called directly, with N
#                                     endpoints already on the CNI bridge (lib/cni_endpoint.sh)
#     nv-<N>-{add,del}                netavark setup/teardown called directly, N endpoints
#                                     already on its bridge (lib/netavark_endpoint.sh)
#   and $BENCH_WORK/iperf/{loopback,c2c,published}.json (iperf3 -J output).
# BENCH_ENDPOINTS overrides the endpoint counts (default "0 100 500 1000" full, "0 20" quick).
# The peers (CNI, netavark) take BENCH_PEER_RUNS runs per level.
# Cleanup (a hook): every container, the network, and the `berth dns` server this run caused.

BRIDGE_NET=benchnet
BRIDGE_FILLED=0
CNI_FILLED=0
NV_FILLED=0
BRIDGE_CTR=bench-ep
BRIDGE_PORT=18080

bridge_cleanup() {
    local pid
    berth_cleanup
    berth_in network rm "$BRIDGE_NET" >/dev/null 2>&1
    # `berth dns` leaves when no user-defined network is left; a straggler of this run's
    # runroot is killed by its own pid file, never by name.
    pid=$(cat "$BENCH_RUNROOT/dns.pid" 2>/dev/null) || return 0
    if [ -n "$pid" ] && grep -qF -- "$BENCH_RUNROOT" "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid" 2>/dev/null
    fi
    return 0
}

# No plugin DEL or netavark teardown needed: the CNI and netavark bridges and its iptables rules live in the sandbox host's netns
# and host-local's state in the scratch dir, both removed by sandbox_cleanup; only the
# endpoints' own namespaces remain.
cni_cleanup() {
    local f
    for f in /run/netns/"$CNI_BENCH_NS"-* /run/netns/"$NV_BENCH_NS"-*; do
        [ -e "$f" ] && ip netns del "$(basename "$f")" 2>/dev/null
    done
    return 0
}

# Idle containers on the network up to $1 (no published ports), one at a time.
bridge_fill() {
    local target=$1 i t0
    t0=$(date +%s)
    for ((i = BRIDGE_FILLED; i < target; i++)); do
        berth_in run -d --net "$BRIDGE_NET" --name "fill-$i" web sleep 100000 >/dev/null
    done
    BRIDGE_FILLED=$target
    echo "bench: $target idle containers on $BRIDGE_NET ($(($(date +%s) - t0)) s to fill)" >&2
}

cni_fill() {
    local target=$1 i
    for ((i = CNI_FILLED; i < target; i++)); do
        in_ns "$here/lib/cni_endpoint.sh" add "fill-$i"
    done
    CNI_FILLED=$target
}

# setup and teardown at one fill level: the `run` is prepared by `rm -f` and vice versa.
bridge_level() {
    local n=$1 net args run rm
    for net in bridge none; do
        args="--net $BRIDGE_NET -p $BRIDGE_PORT:80"
        [ "$net" = none ] && args="--net none"
        run=$(berth_line run -d $args --name "$BRIDGE_CTR" web sleep 1000)
        rm=$(berth_line rm -f "$BRIDGE_CTR")
        measure_prepared "ep-$n-$net-run" "$rm >/dev/null 2>&1 || true" "$run >/dev/null"
        measure_prepared "ep-$n-$net-rm" "$rm >/dev/null 2>&1 || true; $run >/dev/null" "$rm >/dev/null"
        berth_in rm -f "$BRIDGE_CTR" >/dev/null 2>&1 || true
    done
}

cni_level() {
    local n=$1 ep="nsenter --net=/run/netns/$BENCH_NS $here/lib/cni_endpoint.sh"
    peer_runs measure_prepared "cni-$n-add" "$ep del x $BRIDGE_PORT" "$ep add x $BRIDGE_PORT"
    peer_runs measure_prepared "cni-$n-del" "$ep del x $BRIDGE_PORT; $ep add x $BRIDGE_PORT" \
        "$ep del x $BRIDGE_PORT"
    $ep del x "$BRIDGE_PORT"
}

# netavark's address of fill endpoint $1 (10.89.0.2 up; the timed one is 10.89.255.200).
nv_ip() { echo "10.89.$((($1 + 2) / 250)).$((($1 + 2) % 250 + 2))"; }

nv_fill() {
    local target=$1 i
    for ((i = NV_FILLED; i < target; i++)); do
        in_ns "$here/lib/netavark_endpoint.sh" add "fill-$i" "$(nv_ip "$i")"
    done
    NV_FILLED=$target
}

nv_level() {
    local n=$1 ep="nsenter --net=/run/netns/$BENCH_NS $here/lib/netavark_endpoint.sh"
    local x="x 10.89.255.200 $BRIDGE_PORT"
    peer_runs measure_prepared "nv-$n-add" "$ep del $x" "$ep add $x"
    peer_runs measure_prepared "nv-$n-del" "$ep del $x; $ep add $x" "$ep del $x"
    $ep del $x
}

figures_endpoints() {
    local counts n
    local nv=1 cni=1
    counts=${BENCH_ENDPOINTS:-$([ "$mode" = full ] && echo "0 100 500 1000" || echo "0 20")}
    export CNI_BENCH_DIR=$BENCH_WORK/cni CNI_BENCH_NS=$BENCH_NS-n
    export NV_BENCH_DIR=$BENCH_WORK/netavark NV_BENCH_NS=$BENCH_NS-v
    mkdir -p "$CNI_BENCH_DIR" "$NV_BENCH_DIR"
    BENCH_CLEANUP_HOOKS+=(cni_cleanup)
    [ -x /usr/lib/podman/netavark ] || { nv=""; skip_note "netavark setup/teardown: $(absent_reason netavark "apt-get install netavark failed")"; }
    # The CNI peer needs the plugins and iptables (portmap and bridge's ipMasq program it).
    if [ ! -x /usr/lib/cni/bridge ] || ! command -v iptables >/dev/null; then
        cni=""
        skip_note "CNI bridge/portmap ADD/DEL: $(absent_reason "containernetworking-plugins and iptables" "apt-get install failed")"
    fi
    for n in $counts; do
        bridge_fill "$n"
        bridge_level "$n"
        [ -z "$cni" ] || { cni_fill "$n"; cni_level "$n"; }
        [ -z "$nv" ] || { nv_fill "$n"; nv_level "$n"; }
    done
    BENCH_NOTES+=("endpoints: berth figures at fill levels $counts; CNI peer: Debian containernetworking-plugins $(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?') (bridge + host-local + portmap, iptables-nft) called directly, timed with the netns creation/removal so it covers what berth's difference covers; netavark peer: netavark $(tool_version 2 /usr/lib/podman/netavark --version) setup/teardown called directly with podman's JSON (bridge, iptables driver, one port, static IP, DNS off), timed with the netns creation/removal likewise")
    # Drop the fillers so the later figures run on a small network (rm -f of many at once).
    local last=$((BRIDGE_FILLED - 1))
    [ "$last" -lt 0 ] || seq -f 'fill-%.0f' 0 "$last" | xargs -r -n 100 nsenter \
        --net="/run/netns/$BENCH_NS" "$berth_bin" --root "$BENCH_WORK/berth/root" \
        --runroot "$BENCH_RUNROOT" rm -f >/dev/null 2>&1 || true
    BRIDGE_FILLED=0
    cni_cleanup
}

# iperf3 server PID started in the netns at $1 on port $2; tracked, killed on cleanup.
iperf_server() {
    nsenter --net="$1" iperf3 -s -p "$2" >/dev/null 2>&1 &
    bench_track_pid $!
    IPERF_PID=$!
    local i
    for i in $(seq 50); do
        nsenter --net="$1" ss -Htln "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    echo "bench: iperf3 server on port $2 did not start" >&2
    return 1
}

iperf_client() { # NAME NETNS_PATH ADDR PORT
    local secs=1
    [ "$mode" = full ] && secs=5
    echo "bench: iperf3 $1: $3:$4 for $secs s" >&2
    nsenter --net="$2" iperf3 -c "$3" -p "$4" -t "$secs" -J >"$BENCH_WORK/iperf/$1.json"
}

figures_throughput() {
    local srv_key cli_key srv_ip host=/run/netns/$BENCH_NS
    if ! command -v iperf3 >/dev/null; then
        BENCH_NOTES+=("throughput: iperf3 not installed, not measured (\`make bench\` installs it)")
        return 0
    fi
    mkdir -p "$BENCH_WORK/iperf"
    berth_in run -d --net "$BRIDGE_NET" -p 15201:5201 --name bench-srv web sleep 100000 >/dev/null
    berth_in run -d --net "$BRIDGE_NET" --name bench-cli web sleep 100000 >/dev/null
    srv_key=$(berth_in inspect bench-srv | jq -r '.[0].NetworkSettings.SandboxKey')
    cli_key=$(berth_in inspect bench-cli | jq -r '.[0].NetworkSettings.SandboxKey')
    srv_ip=$(berth_in inspect bench-srv | jq -r '.[0].NetworkSettings.Networks[].IPAddress')
    iperf_server "$host" 5202
    iperf_client loopback "$host" 127.0.0.1 5202
    iperf_server "$srv_key" 5201
    iperf_client c2c "$cli_key" "$srv_ip" 5201
    iperf_client published "$host" 127.0.0.1 15201
    kill "$IPERF_PID" 2>/dev/null
    BENCH_NOTES+=("throughput: iperf3 $(tool_version 2 iperf3 --version) of the host, one TCP stream; in a container's namespace via \`nsenter --net=<SandboxKey>\`; loopback = 127.0.0.1 in the sandbox host; c2c = container to container on $BRIDGE_NET; published = sandbox host to 127.0.0.1:15201 published to the server container's 5201")
}

bridge_figures() {
    berth_image
    BENCH_CLEANUP_HOOKS+=(bridge_cleanup)
    berth_in network create "$BRIDGE_NET" >/dev/null
    figures_endpoints
    figures_throughput
}
