# shellcheck shell=bash
# Figure module `datapath` (issue 6, figure 5, round trips; the iperf3 throughput is in the
# bridge and underlay modules): TCP round-trip time of a small message with sockperf
# ping-pong (`--tcp -m 14`, sockperf's smallest message: its 14-byte header; `--full-rtt`),
# and the floor: a veth pair per side plus a bridge built by hand with `ip`. Sourced by
# bench/bench.sh; defines:
#   datapath_figures   writes $BENCH_WORK/rtt/PATH.json ({p50_us, min_us, max_us, p99_us,
#                      avg_us, observations}) for PATH in
#                        loopback    127.0.0.1 in the sandbox host
#                        floor       hand-built: namespaces <ns>-f1 and <ns>-f2, each with a
#                                    veth whose peer is enslaved to bridge flbr0 in the
#                                    sandbox host (10.84.0.2 -> 10.84.0.3), no firewall rules
#                        c2c         berth container to container on bridge network benchdp
#                        published   sandbox host to 127.0.0.1:11112 published to the server
#                                    container's 11111
#                        macvlan     container to container on the underlay module's
#                                    macvlan network (when that module ran first)
#                      and $BENCH_WORK/iperf/floor.json (iperf3 over the floor, for the
#                      throughput tables' "vs floor" column)
# The floor's bridge lives in the sandbox host, as berth's do, so the same netfilter hooks
# (bridge-nf from the peers' daemons, if loaded) apply to both.

DP_NET=benchdp
DP_PORT=11111
DP_PUB=11112
DP_SOCKPERF_PID=""

datapath_cleanup() {
    berth_in rm -f dp-srv dp-cli >/dev/null 2>&1
    berth_in network rm "$DP_NET" >/dev/null 2>&1
    ip netns del "$BENCH_NS-f1" 2>/dev/null
    ip netns del "$BENCH_NS-f2" 2>/dev/null
    return 0
}

# Two namespaces on a hand-built bridge in the sandbox host: the floor of berth's plumbing.
datapath_floor() {
    local i
    in_ns ip link add flbr0 type bridge
    in_ns ip link set flbr0 up
    for i in 1 2; do
        ip netns add "$BENCH_NS-f$i"
        ip -n "$BENCH_NS-f$i" link set lo up
        in_ns ip link add "flv$i" type veth peer name eth0 netns "/run/netns/$BENCH_NS-f$i"
        in_ns ip link set "flv$i" master flbr0 up
        ip -n "$BENCH_NS-f$i" addr add "10.84.0.$((i + 1))/24" dev eth0
        ip -n "$BENCH_NS-f$i" link set eth0 up
    done
}

# sockperf server in netns $1 on port $2 (tracked, killed by pid when done).
sockperf_server() {
    local i
    setsid nsenter --net="$1" sockperf sr --tcp -i 0.0.0.0 -p "$2" >/dev/null 2>&1 &
    DP_SOCKPERF_PID=$!
    bench_track_pid "$DP_SOCKPERF_PID"
    for i in $(seq 50); do
        nsenter --net="$1" ss -Htln "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    echo "bench: sockperf server on port $2 did not start" >&2
    return 1
}

sockperf_client() { # NAME NETNS_PATH ADDR PORT
    local secs=1 out
    [ "$mode" = full ] && secs=3
    echo "bench: sockperf ping-pong $1: $3:$4 for $secs s" >&2
    # setsid -w: sockperf signals its whole process group when it ends (this script died of
    # SIGTERM without it), so the client gets a group of its own.
    out=$(setsid -w nsenter --net="$2" sockperf pp --tcp --full-rtt -m 14 -i "$3" -p "$4" -t "$secs" 2>&1) ||
        { echo "bench: sockperf $1 failed: $out" >&2; return 1; }
    awk -F'= *' '
        /percentile 50.000/ {p50 = $2} /percentile 99.000/ {p99 = $2}
        /<MIN> observation/ {min = $2} /<MAX> observation/ {max = $2}
        /Total [0-9]+ observations/ {match($0, /Total [0-9]+/); obs = substr($0, RSTART + 6, RLENGTH - 6)}
        /avg-rtt=|avg-latency=/ {match($0, /avg-[a-z]+=[0-9.]+/); split(substr($0, RSTART, RLENGTH), a, "="); avg = a[2]}
        END {if (p50 == "") exit 1
             printf "{\"p50_us\": %s, \"p99_us\": %s, \"min_us\": %s, \"max_us\": %s, \"avg_us\": %s, \"observations\": %s}\n", p50, p99, min, max, avg, obs}' \
        <<<"$out" >"$BENCH_WORK/rtt/$1.json" || { echo "bench: sockperf $1 failed: $out" >&2; return 1; }
}

datapath_stop_server() { kill "$DP_SOCKPERF_PID" 2>/dev/null; wait "$DP_SOCKPERF_PID" 2>/dev/null || true; }

datapath_berth_pair() {
    berth_in network create "$DP_NET" >/dev/null
    berth_in run -d --net "$DP_NET" -p "$DP_PUB:$DP_PORT" --name dp-srv web sleep 100000 >/dev/null
    berth_in run -d --net "$DP_NET" --name dp-cli web sleep 100000 >/dev/null
    DP_SRV_KEY=$(berth_in inspect dp-srv | jq -r '.[0].NetworkSettings.SandboxKey')
    DP_CLI_KEY=$(berth_in inspect dp-cli | jq -r '.[0].NetworkSettings.SandboxKey')
    DP_SRV_IP=$(berth_in inspect dp-srv | jq -r '.[0].NetworkSettings.Networks[].IPAddress')
}

datapath_macvlan() {
    local srv cli ip
    srv=$(berth_in inspect ul-msrv 2>/dev/null | jq -r '.[0].NetworkSettings.SandboxKey // empty') || true
    cli=$(berth_in inspect ul-mcli 2>/dev/null | jq -r '.[0].NetworkSettings.SandboxKey // empty') || true
    if [ -z "$srv" ] || [ -z "$cli" ]; then
        skip_note "round trip over macvlan: needs the underlay module's containers (BENCH_FIGURES with underlay before datapath, and iperf3 installed)"
        return 0
    fi
    ip=$(berth_in inspect ul-msrv | jq -r '.[0].NetworkSettings.Networks[].IPAddress')
    sockperf_server "$srv" "$DP_PORT"
    sockperf_client macvlan "$cli" "$ip" "$DP_PORT"
    datapath_stop_server
}

datapath_figures() {
    local host=/run/netns/$BENCH_NS
    command -v sockperf >/dev/null || { skip_note "round trips: $(absent_reason sockperf)"; return 0; }
    berth_image
    BENCH_CLEANUP_HOOKS+=(datapath_cleanup)
    mkdir -p "$BENCH_WORK/rtt" "$BENCH_WORK/iperf"
    datapath_floor
    sockperf_server "$host" "$DP_PORT"
    sockperf_client loopback "$host" 127.0.0.1 "$DP_PORT"
    datapath_stop_server
    sockperf_server "/run/netns/$BENCH_NS-f2" "$DP_PORT"
    sockperf_client floor "/run/netns/$BENCH_NS-f1" 10.84.0.3 "$DP_PORT"
    datapath_stop_server
    if command -v iperf3 >/dev/null; then
        iperf_server "/run/netns/$BENCH_NS-f2" 5203
        iperf_client floor "/run/netns/$BENCH_NS-f1" 10.84.0.3 5203
        kill "$IPERF_PID" 2>/dev/null
    fi
    datapath_berth_pair
    sockperf_server "$DP_SRV_KEY" "$DP_PORT"
    sockperf_client c2c "$DP_CLI_KEY" "$DP_SRV_IP" "$DP_PORT"
    sockperf_client published "$host" 127.0.0.1 "$DP_PUB"
    datapath_stop_server
    datapath_macvlan
    BENCH_NOTES+=("round trips: sockperf $(sockperf --version 2>&1 | awk '/version/ {print $NF; exit}' || echo '?') ping-pong, TCP, 14-byte messages (its minimum: the header; the issue asks for 1 byte), --full-rtt, in namespaces via nsenter; floor = two namespaces with veth pairs on a bridge made by hand with \`ip\` in the sandbox host, no firewall rules")
}
