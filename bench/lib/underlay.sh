# shellcheck shell=bash
# Figure module `underlay` (issues 4 and 6: the macvlan figures). Sourced by bench/bench.sh
# (needs berth_in, berth_line, iperf_server, iperf_client, podman_setup, docker_setup, mode,
# BENCH_*); defines:
#   underlay_figures       writes into $BENCH_JSON_DIR (hyperfine JSON + .cmd, as measure does):
#     ul-{macvlan,none}-{run,rm}   berth `run -d --net benchlan|none web sleep 1000` and its
#                                  `rm -f`, each prepared by the other, in ABBA order; setup =
#                                  macvlan run - none run, teardown = macvlan rm - none rm
#                                  (report.py)
#     podman-macvlan, podman-ul-none  `podman run --rm --net pbenchlan|none web true` (when podman
#                                  is installed); podman's macvlan cost = the difference
#     berth-macvlan, docker-macvlan   `run --rm --net <macvlan network> web true`: the macvlan
#                                  bar of the run module's figure (docker's network dbenchlan
#                                  on its own NIC nicD 192.168.77.11 in its netns, plugged
#                                  into the lab like nicA, --ip-range 192.168.77.64/26)
#   and $BENCH_WORK/iperf/ul-{loopback,bridge,macvlan,hostb}.json (iperf3 -J output).
#
# The segment, as tests/harness/underlay.rs's `Lab` builds it: a lab namespace with bridge
# lab0 (the switch), the sandbox host (BENCH_NS) as host A with veth NIC nicA 192.168.77.10/24
# and a host B namespace with nicB 192.168.77.20/24, each NIC's peer enslaved to lab0. nicA is
# the macvlan parent. All three namespaces are this run's; nothing touches the root namespace.
# Cleanup (a hook): this figure's containers and networks, then host B and the lab namespaces
# (deleting the lab deletes the NICs' peers and with them the NICs and their macvlan children).

UL_NET=benchlan
UL_BRIDGE_NET=benchbr
UL_PODMAN_NET=pbenchlan
UL_DOCKER_NET=dbenchlan
UL_SUBNET=192.168.77.0/24
UL_GATEWAY=192.168.77.1
UL_CTR=bench-ul
UL_LAB_NS=""
UL_HOSTB_NS=""

underlay_cleanup() {
    local c
    for c in "$UL_CTR" ul-msrv ul-mcli ul-bsrv ul-bcli; do
        berth_in rm -f "$c" >/dev/null 2>&1
    done
    berth_in network rm "$UL_NET" >/dev/null 2>&1
    berth_in network rm "$UL_BRIDGE_NET" >/dev/null 2>&1
    [ -n "$UL_HOSTB_NS" ] && ip netns del "$UL_HOSTB_NS" 2>/dev/null
    [ -n "$UL_LAB_NS" ] && ip netns del "$UL_LAB_NS" 2>/dev/null
    return 0
}

# Plugs namespace $1 into the lab: veth $2 inside it, addressed $3, peer enslaved to lab0.
underlay_plug() {
    local host=$1 nic=$2 cidr=$3 port
    port=lp$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    ip -n "$host" link add "$nic" type veth peer name "$port" netns "$UL_LAB_NS"
    ip -n "$UL_LAB_NS" link set "$port" master lab0 up
    ip -n "$host" addr add "$cidr" dev "$nic"
    ip -n "$host" link set "$nic" up
}

underlay_lab() {
    UL_LAB_NS=$BENCH_NS-l
    UL_HOSTB_NS=$BENCH_NS-b
    ip netns add "$UL_LAB_NS"
    ip netns add "$UL_HOSTB_NS"
    ip -n "$UL_LAB_NS" link add lab0 type bridge
    ip -n "$UL_LAB_NS" link set lab0 up
    ip -n "$UL_HOSTB_NS" link set lo up
    underlay_plug "$BENCH_NS" nicA 192.168.77.10/24
    underlay_plug "$UL_HOSTB_NS" nicB 192.168.77.20/24
}

# Setup and teardown of one endpoint: the `run` is prepared by `rm -f` and vice versa. The two
# networks are measured in ABBA order (macvlan, none, none, macvlan; half the runs each) and
# each one's halves merged, so a load that drifts during the figure shifts both alike (the
# setup is a difference of two medians of ~40 ms runs that load moves by tens of ms).
underlay_endpoint() {
    local half=$(((BENCH_RUNS + 1) / 2)) parts=$BENCH_WORK/ul-parts net
    mkdir -p "$parts"
    for net in macvlan none none macvlan; do
        BENCH_RUNS=$half BENCH_JSON_DIR=$parts underlay_endpoint_pass "$net"
    done
    for net in macvlan none; do
        underlay_merge "ul-$net-run" "$parts"
        underlay_merge "ul-$net-rm" "$parts"
    done
}

# One pass of network $1 (macvlan|none): ul-$1-{run,rm}.<n>.json in BENCH_JSON_DIR.
underlay_endpoint_pass() {
    local net=$1 run rm n
    run=$(berth_line run -d --net "$([ "$net" = none ] && echo none || echo "$UL_NET")" \
        --name "$UL_CTR" web sleep 1000)
    rm=$(berth_line rm -f "$UL_CTR")
    n=$(find "$BENCH_JSON_DIR" -name "ul-$net-run.*.json" | wc -l)
    measure_prepared "ul-$net-run.$n" "$rm >/dev/null 2>&1 || true" "$run >/dev/null"
    measure_prepared "ul-$net-rm.$n" "$rm >/dev/null 2>&1 || true; $run >/dev/null" "$rm >/dev/null"
    berth_in rm -f "$UL_CTR" >/dev/null 2>&1 || true
}

# Merges $2/$1.<n>.json into $BENCH_JSON_DIR/$1.json (times joined; median/min/max/mean anew).
underlay_merge() {
    local name=$1 parts=$2
    cp "$parts/$name.0.cmd" "$BENCH_JSON_DIR/$name.cmd"
    jq -s --arg name "$name" '(map(.results[0].times) | add) as $t | ($t | sort) as $s |
        ($s | length) as $n |
        {results: [{command: $name, times: $t, mean: ($t | add / $n), min: $s[0], max: $s[-1],
            median: (if $n % 2 == 1 then $s[($n - 1) / 2]
                     else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
            merged: "two passes, ABBA order"}]}' "$parts/$name".*.json >"$BENCH_JSON_DIR/$name.json"
}

# podman's macvlan run cost: `run --rm ... true` on a netavark macvlan network on the same
# parent (addresses from the upper half, so they never meet berth's) minus `--net none`.
underlay_podman() {
    if ! command -v podman >/dev/null; then
        skip_note "underlay, podman's macvlan run: $(absent_reason podman)"
        return 0
    fi
    [ -n "${PODMAN_SLEEPER:-}" ] || podman_setup "$BENCH_WORK/fixtures/web.docker.tar"
    podman_in network create -d macvlan -o parent=nicA --subnet "$UL_SUBNET" \
        --gateway "$UL_GATEWAY" --ip-range 192.168.77.128/25 "$UL_PODMAN_NET" >/dev/null
    peer_runs measure podman-macvlan "$(podman_cmdline "$UL_PODMAN_NET")"
    peer_runs measure podman-ul-none "$(podman_cmdline none)"
    BENCH_NOTES+=("underlay: podman $(tool_version 3 podman --version) with netavark, macvlan network on nicA (--ip-range 192.168.77.128/25), \`run --rm web true\`, confined as for benchmark 1")
}

# `run --rm` over macvlan for berth and docker (the bar beside the run module's modes).
underlay_run_rm() {
    measure berth-macvlan "$(berth_line run --rm --net "$UL_NET" web true)"
    if ! docker_available || ! docker_setup "$BENCH_WORK/fixtures/web.docker.tar"; then
        skip_note "underlay, docker's macvlan run: $(absent_reason docker.io)"
        return 0
    fi
    # dockerd has a netns of its own (lib/docker.sh): it gets its own NIC on the segment.
    underlay_plug "$DOCKER_NS" nicD 192.168.77.11/24
    docker_in network create -d macvlan -o parent=nicD --subnet "$UL_SUBNET" \
        --gateway "$UL_GATEWAY" --ip-range 192.168.77.64/26 "$UL_DOCKER_NET" >/dev/null
    peer_runs measure docker-macvlan "$(docker_cmdline "$UL_DOCKER_NET")"
}

# Two idle containers on network $1 named $2 and $3; sets UL_SRV_KEY, UL_SRV_IP, UL_CLI_KEY.
underlay_pair() {
    local net=$1 srv=$2 cli=$3
    berth_in run -d --net "$net" --name "$srv" web sleep 100000 >/dev/null
    berth_in run -d --net "$net" --name "$cli" web sleep 100000 >/dev/null
    UL_SRV_KEY=$(berth_in inspect "$srv" | jq -r '.[0].NetworkSettings.SandboxKey')
    UL_CLI_KEY=$(berth_in inspect "$cli" | jq -r '.[0].NetworkSettings.SandboxKey')
    UL_SRV_IP=$(berth_in inspect "$srv" | jq -r '.[0].NetworkSettings.Networks[].IPAddress')
}

underlay_throughput() {
    if ! command -v iperf3 >/dev/null; then
        BENCH_NOTES+=("underlay throughput: iperf3 not installed, not measured (\`make bench\` installs it)")
        return 0
    fi
    mkdir -p "$BENCH_WORK/iperf"
    iperf_server "/run/netns/$BENCH_NS" 5212
    iperf_client ul-loopback "/run/netns/$BENCH_NS" 127.0.0.1 5212
    kill "$IPERF_PID" 2>/dev/null
    berth_in network create "$UL_BRIDGE_NET" >/dev/null
    underlay_pair "$UL_BRIDGE_NET" ul-bsrv ul-bcli
    iperf_server "$UL_SRV_KEY" 5201
    iperf_client ul-bridge "$UL_CLI_KEY" "$UL_SRV_IP" 5201
    kill "$IPERF_PID" 2>/dev/null
    underlay_pair "$UL_NET" ul-msrv ul-mcli
    iperf_server "$UL_SRV_KEY" 5201
    iperf_client ul-macvlan "$UL_CLI_KEY" "$UL_SRV_IP" 5201
    iperf_client ul-hostb "/run/netns/$UL_HOSTB_NS" "$UL_SRV_IP" 5201
    kill "$IPERF_PID" 2>/dev/null
    BENCH_NOTES+=("underlay throughput: iperf3 of the host, one TCP stream, in containers via \`nsenter --net=<SandboxKey>\`; loopback = 127.0.0.1 in host A; bridge = container to container on bridge network $UL_BRIDGE_NET; macvlan = container to container on $UL_NET (macvlan bridge mode, parent nicA); host B = host B's nicB to the server container on host A across the lab bridge (veth, bridge, veth, macvlan)")
}

underlay_figures() {
    berth_image
    BENCH_CLEANUP_HOOKS+=(underlay_cleanup)
    underlay_lab
    berth_in network create -d macvlan -o parent=nicA --subnet "$UL_SUBNET" \
        --gateway "$UL_GATEWAY" "$UL_NET" >/dev/null
    underlay_endpoint
    underlay_run_rm
    underlay_podman
    underlay_throughput
    BENCH_NOTES+=("underlay: lab segment as tests/harness/underlay.rs (lab namespace with bridge lab0; host A = the sandbox host with veth nicA 192.168.77.10/24, host B a namespace with nicB 192.168.77.20/24); berth network $UL_NET = \`-d macvlan -o parent=nicA --subnet $UL_SUBNET --gateway $UL_GATEWAY\`")
}
