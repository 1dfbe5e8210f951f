#!/usr/bin/env bash
# One endpoint made or removed by netavark called directly, the way podman calls it
# (`netavark --config DIR setup|teardown NETNS_PATH`, the network options JSON on stdin; the
# JSON's shape is what `podman --log-level=debug run` passes to netavark 1.4). The peer of
# berth's per-endpoint network setup, beside lib/cni_endpoint.sh. Run it inside the sandbox
# host's netns: the bridge `nvbench0` and netavark's iptables rules land in that netns.
#
# Usage: netavark_endpoint.sh add ID IP [HOSTPORT]   netns (lo up) + setup, static IP (netavark
#                                                    does no IPAM: podman hands it the address)
#        netavark_endpoint.sh del ID IP [HOSTPORT]   teardown + netns removal; a missing
#                                                    endpoint is not an error (hyperfine --prepare)
# Env: NV_BENCH_DIR   scratch dir (netavark's --config dir lives below it)
#      NV_BENCH_NS    prefix of the netns names (/run/netns/$NV_BENCH_NS-ID)
# The network: bridge, 10.89.0.0/16, gateway 10.89.0.1, DNS (aardvark) off: berth's figure
# includes its DNS records, so netavark's is a lower bound of the same work.
set -euo pipefail
cmd=$1 id=$2 ip=$3 port=${4:-}
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
: "${NV_BENCH_DIR:?}" "${NV_BENCH_NS:?}"
netns=$NV_BENCH_NS-$id

options() {
    jq -n --arg id "$id" --arg ip "$ip" --arg port "$port" '
        {container_id: ("nvbench" + $id), container_name: ("nvbench-" + $id),
         port_mappings: (if $port == "" then null else
             [{host_ip: "", container_port: 80, host_port: ($port | tonumber), range: 1,
               protocol: "tcp"}] end),
         networks: {nvbench: {static_ips: [$ip], interface_name: "eth0", aliases: []}},
         network_info: {nvbench: {name: "nvbench",
             id: "6e7662656e6368000000000000000000000000000000000000000000000000aa",
             driver: "bridge", network_interface: "nvbench0",
             subnets: [{subnet: "10.89.0.0/16", gateway: "10.89.0.1"}],
             ipv6_enabled: false, internal: false, dns_enabled: false,
             ipam_options: {driver: "host-local"}}}}'
}

case $cmd in
    add)
        ip netns add "$netns"
        ip -n "$netns" link set lo up
        options | "$NETAVARK" --config "$NV_BENCH_DIR" setup "/run/netns/$netns" >/dev/null
        ;;
    del)
        [ -e "/run/netns/$netns" ] || exit 0
        options | "$NETAVARK" --config "$NV_BENCH_DIR" teardown "/run/netns/$netns" >/dev/null
        ip netns del "$netns"
        ;;
    *) echo "usage: netavark_endpoint.sh add|del ID IP [HOSTPORT]" >&2; exit 2 ;;
esac
