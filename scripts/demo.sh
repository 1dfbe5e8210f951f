#!/usr/bin/env bash
# berth demo: host networking with a port check, inside throwaway namespaces.
#
# A "sandbox host" netns plays the machine, a "client" netns joined to it by a veth plays
# another machine on the LAN (10.88.0.0/24, addresses exist only inside these namespaces).
#   1) web1 runs --net host; the client fetches web1's page from the host's address
#   2) `berth exec web1 ip addr` shows exactly the sandbox host's interfaces and addresses
#   3) web2 (--net host) is refused: port 80/tcp is held by container web1
#   4) after `berth rm -f web1`, web2 starts and the client gets web2's page
#   5) a --net none container has only lo
# Exits non-zero if any step fails; a trap removes everything it made, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates namespaces and containers)" >&2; exit 1; }

# What the demo calls: runc (the OCI runtime), busybox-static + umoci + skopeo (the test image),
# iproute2 (ip, ss), nftables (every bridge network's firewall), curl (the client), util-linux
# (nsenter), procps.
pkgs=(runc busybox-static umoci skopeo iproute2 nftables curl util-linux procps)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "demo: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# BERTH_BIN overrides the binary (e.g. a debug build); otherwise build the release one.
if [ -n "${BERTH_BIN:-}" ]; then
    berth_bin=$(realpath "$BERTH_BIN")
else
    cargo build --release --bin berth
    berth_bin=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
    case $berth_bin in /*) ;; *) berth_bin=$PWD/$berth_bin ;; esac
fi

work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
# A short runroot: it holds unix sockets <runroot>/containers/<64-hex id>/attach.sock and a
# socket path has 107 usable bytes.
runroot=$(mktemp -d /run/bd-XXXXXX)
suffix=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
hostns=berth-demo-h-$suffix
clientns=berth-demo-c-$suffix

b() { nsenter --net="/run/netns/$hostns" "$berth_bin" --root "$work/root" --runroot "$runroot" "$@"; }
in_host() { nsenter --net="/run/netns/$hostns" "$@"; }
in_client() { nsenter --net="/run/netns/$clientns" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ berth %s\n' "$*"; b "$@" || fail "berth $* exited $?"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    set +e
    if [ -e "/run/netns/$hostns" ]; then
        ids=$(b ps -aq 2>/dev/null)
        [ -n "$ids" ] && b rm -f $ids >/dev/null 2>&1
    fi
    ip netns del "$clientns" 2>/dev/null
    ip netns del "$hostns" 2>/dev/null
    # Anything still mounted under the demo's directories (should be nothing).
    for dir in "$work" "$runroot"; do
        awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
            sort -r | while read -r m; do umount -l "$m"; done
    done
    rm -rf "$work" "$runroot"
    [ $rc = 0 ] && printf '\ndemo: all steps passed\n'
    exit $rc
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 50); do
        in_host ss -ltnH "sport = :$1" | grep -q . && return 0
        sleep 0.2
    done
    return 1
}

fetch() { in_client curl -sS --max-time 3 http://10.88.0.1/; }

addrs() { awk '$3 ~ /^inet/ {sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2, $3, $4}' | sort; }

step "setup: sandbox host $hostns, client $clientns (veth 10.88.0.1 <-> 10.88.0.2)"
ip netns add "$hostns"
ip netns add "$clientns"
ip -n "$hostns" link set lo up
ip -n "$clientns" link set lo up
ip -n "$hostns" link add vdemo-h type veth peer name vdemo-c netns "$clientns"
ip -n "$hostns" addr add 10.88.0.1/24 dev vdemo-h
ip -n "$clientns" addr add 10.88.0.2/24 dev vdemo-c
ip -n "$hostns" link set vdemo-h up
ip -n "$clientns" link set vdemo-c up
tests/fixtures/build-image.sh "$work/fixtures"
show load -i "$work/fixtures/web.docker.tar"

step "1) web1 on the host network; the client fetches its page"
show run -d --net host --name web1 -e INSTANCE=web1 web
wait_port 80 || fail "web1 never listened on port 80"
page=$(fetch) || fail "client could not reach 10.88.0.1:80"
echo "client got: $page"
grep -q "berth demo: web1" <<<"$page" || fail "expected web1's page"

step "2) web1 sees the sandbox host's interfaces and addresses"
show exec web1 ip -o addr
inside=$(b exec web1 ip -o addr | addrs)
outside=$(in_host ip -o addr | addrs)
diff <(echo "$inside") <(echo "$outside") || fail "web1's addresses differ from the host's"
echo "identical to the host's ip -o addr"

step "3) web2 on the host network is refused: port 80 is web1's"
printf '$ berth run -d --net host --name web2 -e INSTANCE=web2 web\n'
if b run -d --net host --name web2 -e INSTANCE=web2 web 2>"$work/err"; then
    fail "web2 started although web1 holds port 80"
else
    rc=$?
fi
cat "$work/err"
[ "$rc" = 125 ] || fail "expected exit code 125, got $rc"
grep -q "web1" "$work/err" && grep -q "80/tcp" "$work/err" || fail "refusal must name web1 and 80/tcp"

step "4) remove web1; web2 starts and serves"
show rm -f web1
b rm -f web2 >/dev/null 2>&1 || true
show run -d --net host --name web2 -e INSTANCE=web2 web
wait_port 80 || fail "web2 never listened on port 80"
page=$(fetch) || fail "client could not reach web2"
echo "client got: $page"
grep -q "berth demo: web2" <<<"$page" || fail "expected web2's page"
show ps

step "5) a --net none container has only lo"
out=$(show run --rm --net none web ip -o link)
echo "$out"
links=$(grep -v '^\$' <<<"$out" | awk '{print $2}' | tr -d ':' | sort -u | tr '\n' ' ')
[ "$links" = "lo " ] || fail "expected only lo, got: $links"

step "6) a user-defined bridge network: names resolve, a published port answers the client"
show rm -f web2
show network create demo-net
show run -d --net demo-net --name api --network-alias backend -e INSTANCE=api web
show run -d --net demo-net --name www -p 8080:80 -e INSTANCE=www web
page=$(b exec www wget -qO- http://backend/) || fail "www could not reach api by its alias"
echo "www -> http://backend/ got: $page"
grep -q "berth demo: api" <<<"$page" || fail "expected api's page through the embedded DNS"
for _ in $(seq 25); do
    page=$(in_client curl -sS --max-time 2 http://10.88.0.1:8080/ 2>/dev/null) && break
    sleep 0.2
done
echo "client -> 10.88.0.1:8080 got: $page"
grep -q "berth demo: www" <<<"$page" || fail "expected www's page through the published port"
show port www
show rm -f api www
show network rm demo-net
