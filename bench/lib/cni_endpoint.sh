#!/usr/bin/env bash
# One endpoint made or removed by the CNI reference plugins called directly (the peer of
# berth's per-endpoint network setup), the way a CNI runtime calls them (CNI spec 1.0.0,
# https://github.com/containernetworking/cni/blob/main/SPEC.md: env CNI_COMMAND, CNI_CONTAINERID,
# CNI_NETNS, CNI_IFNAME, CNI_PATH; the network config on stdin; a chained plugin gets the
# previous plugin's result as prevResult). Run it inside the sandbox host's netns (the bridge,
# its masquerade and portmap's DNAT rules land in the netns it runs in).
#
# Usage: cni_endpoint.sh add ID [HOSTPORT]   netns (lo up) + bridge ADD [+ portmap ADD HOSTPORT->80]
#        cni_endpoint.sh del ID [HOSTPORT]   [portmap DEL] + bridge DEL + netns removal; a missing
#                                            endpoint is not an error (hyperfine's --prepare)
# Env: CNI_BENCH_DIR   scratch dir: host-local's dataDir lives below it, results are kept there
#      CNI_BENCH_NS    prefix of the netns names (/run/netns/$CNI_BENCH_NS-ID)
# Plugins: Debian containernetworking-plugins 1.1.1 in /usr/lib/cni (bridge, host-local, portmap;
# portmap and bridge's ipMasq program iptables, iptables-nft here).
set -euo pipefail
cmd=$1 id=$2 port=${3:-}
: "${CNI_BENCH_DIR:?}" "${CNI_BENCH_NS:?}"
netns=$CNI_BENCH_NS-$id
export CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$netns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni

bridge_conf() {
    cat <<EOF
{"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge", "bridge": "cni-bench0",
 "isGateway": true, "ipMasq": true,
 "ipam": {"type": "host-local", "subnet": "10.87.0.0/16", "dataDir": "$CNI_BENCH_DIR/ipam",
          "routes": [{"dst": "0.0.0.0/0"}]}}
EOF
}

portmap_conf() { # PREV_RESULT_FILE
    jq --argjson port "$port" --slurpfile prev "$1" -n '
        {cniVersion: "1.0.0", name: "benchnet", type: "portmap",
         capabilities: {portMappings: true},
         runtimeConfig: {portMappings: [{hostPort: $port, containerPort: 80, protocol: "tcp"}]},
         prevResult: $prev[0]}'
}

case $cmd in
    add)
        ip netns add "$netns"
        ip -n "$netns" link set lo up
        bridge_conf | CNI_COMMAND=ADD /usr/lib/cni/bridge >"$CNI_BENCH_DIR/$id.result"
        if [ -n "$port" ]; then
            portmap_conf "$CNI_BENCH_DIR/$id.result" | CNI_COMMAND=ADD /usr/lib/cni/portmap >/dev/null
        fi
        ;;
    del)
        [ -e "/run/netns/$netns" ] || exit 0
        if [ -n "$port" ] && [ -s "$CNI_BENCH_DIR/$id.result" ]; then
            portmap_conf "$CNI_BENCH_DIR/$id.result" | CNI_COMMAND=DEL /usr/lib/cni/portmap >/dev/null
        fi
        bridge_conf | CNI_COMMAND=DEL /usr/lib/cni/bridge >/dev/null
        ip netns del "$netns"
        rm -f "$CNI_BENCH_DIR/$id.result"
        ;;
    *) echo "usage: cni_endpoint.sh add|del ID [HOSTPORT]" >&2; exit 2 ;;
esac
