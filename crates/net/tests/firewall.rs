//! Privileged firewall tests: nft runs only inside throwaway network namespaces
//! (`nsenter --net=/run/netns/berth-t-...`), never in the root namespace. Without root or nft
//! they print `SKIP: reason`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_net::firewall::{Firewall, NftCommand, NftFirewall, NftRunner};
use berth_net::{
    BridgeState, DriverState, EndpointState, NetworkState, PortMapping, Proto, SubnetState,
};
use berth_sys::netns::run_in;
use berth_sys::test_netns_or_skip;
use berth_sys::testing::TestNetns;

/// Returns from the test with `SKIP:` when nft is not installed.
macro_rules! skip_without_nft {
    () => {
        let nft = std::env::var("NFT").unwrap_or_else(|_| "/usr/sbin/nft".to_string());
        if !Path::new(&nft).exists() {
            berth_sys::testing::skip_or_fail(&format!(
                "{nft} not found; apt-get install nftables or set NFT"
            ));
            return;
        }
    };
}

fn network(name: &str, bridge: &str, subnet: &str) -> NetworkState {
    let subnet: ipnet::IpNet = subnet.parse().unwrap();
    NetworkState {
        id: format!("{name:0<64}"),
        name: name.parse().unwrap(),
        subnets: vec![SubnetState {
            subnet,
            gateway: subnet.hosts().next().unwrap(),
            ip_range: None,
            aux_addresses: BTreeMap::new(),
        }],
        ipv6: subnet.addr().is_ipv6(),
        internal: false,
        dns: true,
        mtu: 1500,
        kind: DriverState::Bridge(BridgeState {
            bridge: bridge.parse().unwrap(),
            icc: true,
        }),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created: "2024-01-01T00:00:00Z".to_string(),
    }
}

fn port(host_ip: Option<&str>, host: u16, ctr: u16, proto: Proto) -> PortMapping {
    PortMapping {
        host_ip: host_ip.map(|s| s.parse().unwrap()),
        host_port: host,
        container_port: ctr,
        proto,
    }
}

fn endpoint(
    net: &NetworkState,
    ctr: &str,
    addrs: &[&str],
    ports: Vec<PortMapping>,
) -> EndpointState {
    EndpointState {
        id: format!("{ctr:e<64}"),
        network_id: net.id.clone(),
        container_id: format!("{ctr:c<64}"),
        ifname: "eth0".parse().unwrap(),
        host_ifname: format!("vb{ctr}").parse().unwrap(),
        mac: "02:42:ac:12:00:02".to_string(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        aliases: Vec::new(),
        ports,
    }
}

fn firewall(ns: &TestNetns) -> NftFirewall {
    NftFirewall::new(NftCommand::from_env().in_netns(&ns.path()))
}

fn ruleset(ns: &TestNetns) -> String {
    NftCommand::from_env()
        .in_netns(&ns.path())
        .list(&["list", "ruleset"])
        .unwrap()
}

#[test]
fn network_and_endpoint_apply_and_remove_exactly_their_elements() {
    let ns = test_netns_or_skip!();
    skip_without_nft!();
    let fw = firewall(&ns);
    let mut web = network("web", "br-web", "172.18.0.0/16");
    web.kind = DriverState::Bridge(BridgeState {
        bridge: web.device().clone(),
        icc: false,
    });
    web.subnets
        .extend(network("x", "br-x", "fd00:1::/64").subnets);
    let other = network("other", "br-other", "172.19.0.0/16");
    fw.add_network(&web, 1).unwrap();
    fw.add_network(&web, 1).expect("add_network is idempotent");
    fw.add_network(&other, 1).unwrap();
    let networks_only = ruleset(&ns);
    assert!(
        networks_only.contains(r#""br-web" comment "net web""#),
        "{networks_only}"
    );
    assert!(networks_only.contains(r#"172.18.0.0/16 comment "net web""#));
    assert!(networks_only.contains(r#"fd00:1::/64 comment "net web""#));
    assert!(networks_only.contains(r#""br-other" comment "net other""#));

    let ep = endpoint(
        &web,
        "a1",
        &["172.18.0.2/16", "fd00:1::2/64"],
        vec![
            port(None, 8080, 80, Proto::Tcp),
            port(Some("127.0.0.1"), 9000, 9000, Proto::Tcp),
            port(None, 5353, 53, Proto::Udp),
        ],
    );
    fw.add_endpoint(&web, &ep).unwrap();
    fw.add_endpoint(&web, &ep)
        .expect("add_endpoint is idempotent");
    let with_ep = ruleset(&ns);
    let c = r#"comment "ctr a1cccccccccc net web""#;
    for needle in [
        format!("tcp . 8080 {c} : 172.18.0.2 . 80"),
        format!("udp . 5353 {c} : 172.18.0.2 . 53"),
        format!("127.0.0.1 . tcp . 9000 {c} : 172.18.0.2 . 9000"),
        format!("tcp . 8080 {c} : fd00:1::2 . 80"),
        format!(r#""vba1" {c}"#),
    ] {
        assert!(
            with_ep.contains(&needle),
            "missing {needle:?} in\n{with_ep}"
        );
    }

    // Another container cannot take a host port already mapped elsewhere.
    let thief = endpoint(
        &web,
        "b2",
        &["172.18.0.3/16"],
        vec![port(None, 8080, 80, Proto::Tcp)],
    );
    let err = fw.add_endpoint(&web, &thief).unwrap_err().to_string();
    assert!(err.contains("File exists"), "{err}");

    fw.remove_endpoint(&web, &ep).unwrap();
    assert_eq!(
        ruleset(&ns),
        networks_only,
        "removing the endpoint removes exactly its elements"
    );
    fw.remove_endpoint(&web, &ep)
        .expect("remove_endpoint is idempotent");

    fw.remove_network(&web, 2).unwrap();
    let left = ruleset(&ns);
    assert!(!left.contains("net web"), "{left}");
    assert!(left.contains(r#""br-other" comment "net other""#), "{left}");
    fw.remove_network(&other, 2).unwrap();
    assert_eq!(
        ruleset(&ns),
        "",
        "the last network takes the tables with it"
    );
    fw.remove_network(&other, 2)
        .expect("remove_network is idempotent");
    fw.remove_endpoint(&web, &ep)
        .expect("nothing to remove without the tables");
    assert_eq!(ruleset(&ns), "");
}

#[test]
fn reconcile_replaces_everything_and_is_idempotent() {
    let ns = test_netns_or_skip!();
    skip_without_nft!();
    let fw = firewall(&ns);
    let a = network("a", "br-a", "172.20.0.0/16");
    let stale = network("stale", "br-stale", "172.21.0.0/16");
    let stale_ep = endpoint(
        &stale,
        "s1",
        &["172.21.0.2/16"],
        vec![port(None, 80, 80, Proto::Tcp)],
    );
    fw.add_network(&stale, 1).unwrap();
    fw.add_endpoint(&stale, &stale_ep).unwrap();

    let ep = endpoint(
        &a,
        "a1",
        &["172.20.0.2/16"],
        vec![port(None, 8080, 80, Proto::Tcp)],
    );
    let eps = [ep, stale_ep];
    fw.reconcile(std::slice::from_ref(&a), &eps).unwrap();
    let once = ruleset(&ns);
    assert!(!once.contains("stale"), "{once}");
    assert!(
        once.contains(r#"tcp . 8080 comment "ctr a1cccccccccc net a""#),
        "{once}"
    );
    fw.reconcile(std::slice::from_ref(&a), &eps).unwrap();
    assert_eq!(ruleset(&ns), once);

    fw.reconcile(&[], &[]).unwrap();
    assert_eq!(ruleset(&ns), "");
}

#[test]
fn generation_stamp_is_seen_over_netlink_and_lost_with_a_flush() {
    let ns = test_netns_or_skip!();
    skip_without_nft!();
    let fw = firewall(&ns);
    let a = network("a", "br-a", "172.22.0.0/16");
    let b = network("b", "br-b", "172.23.0.0/16");
    let both = berth_net::firewall::plan::generation(&[a.clone(), b.clone()]);
    let only_a = berth_net::firewall::plan::generation(std::slice::from_ref(&a));
    assert!(!fw.is_current(both).unwrap(), "no tables yet");
    fw.reconcile(&[a.clone(), b.clone()], &[]).unwrap();
    assert!(fw.is_current(both).unwrap());
    assert!(!fw.is_current(only_a).unwrap());
    fw.remove_network(&b, only_a).unwrap();
    assert!(fw.is_current(only_a).unwrap(), "remove_network restamps");
    // The check's cost: one lookup per table, whatever the set sizes (measured inside the
    // namespace, as berth runs: no setns per check).
    let per_check = run_in(&ns.path(), move || {
        use berth_sys::nftables::{has_set_element, NFPROTO_BRIDGE, NFPROTO_INET};
        let key = only_a.to_ne_bytes();
        let t = std::time::Instant::now();
        for _ in 0..100 {
            assert!(has_set_element(NFPROTO_INET, "berth", "generation", &key).unwrap());
            assert!(has_set_element(NFPROTO_BRIDGE, "berth", "generation", &key).unwrap());
        }
        t.elapsed() / 100
    })
    .unwrap();
    println!("generation check: {per_check:?} per check (two netlink lookups)");
    // Losing only the bridge table is noticed too.
    NftCommand::from_env()
        .in_netns(&ns.path())
        .apply("delete table bridge berth\n")
        .unwrap();
    assert!(!fw.is_current(only_a).unwrap());
    NftCommand::from_env()
        .in_netns(&ns.path())
        .apply("flush ruleset\n")
        .unwrap();
    assert!(!fw.is_current(only_a).unwrap(), "flushed");
}

fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sysctl(ns: &TestNetns, key: &str) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["sysctl", "-qw", &format!("{key}=1")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sysctl {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Joins netns `ctr` to bridge `br` of netns `host` with a veth (`host_if` on the host side)
/// and gives it `addr` (a /24) and a default route via `gw`.
fn attach(host: &TestNetns, br: &str, host_if: &str, ctr: &TestNetns, addr: &str, gw: &str) {
    let (h, c) = (host.name(), ctr.name());
    ip(&format!(
        "-n {h} link add {host_if} type veth peer name eth0 netns {c}"
    ));
    ip(&format!("-n {h} link set {host_if} master {br} up"));
    // The bridge driver's job in berth: with br_netfilter loaded, a hairpin connection is
    // bridged straight back to the port it came from, which needs hairpin mode.
    ip(&format!(
        "-n {h} link set {host_if} type bridge_slave hairpin on"
    ));
    ip(&format!("-n {c} addr add {addr} dev eth0"));
    ip(&format!("-n {c} link set eth0 up"));
    ip(&format!("-n {c} link set lo up"));
    ip(&format!("-n {c} route add default via {gw}"));
}

fn bridge(host: &TestNetns, br: &str, addr: &str) {
    let h = host.name();
    ip(&format!("-n {h} link add {br} type bridge"));
    ip(&format!("-n {h} addr add {addr} dev {br}"));
    ip(&format!("-n {h} link set {br} up"));
    // The bridge driver's job in berth: lets DNAT'ed 127.0.0.1 traffic leave by the bridge.
    sysctl(host, &format!("net.ipv4.conf.{br}.route_localnet"));
}

/// A TCP server in `ns` answering each connection with the client's address, then closing.
fn echo_peer_server(ns: &TestNetns, addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = run_in(&ns.path(), move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let peer = conn
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = conn.write_all(peer.as_bytes());
        }
    });
}

/// Connects from `ns` to `to` and returns what the server said (the source it saw), or `None`
/// when the connection fails or times out.
fn seen_from(ns: &TestNetns, to: &str) -> Option<String> {
    let to: SocketAddr = to.parse().unwrap();
    run_in(&ns.path(), move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(700)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .unwrap()
}

/// A sandbox host (netns `host`) with two berth networks on bridges (the first with icc off and
/// two containers), and an outside host joined by a veth: the published port works from every
/// origin with the source kept for the outside host; cross-network and icc-off traffic is
/// dropped while the gateway stays reachable.
#[test]
fn published_port_works_from_every_origin_and_networks_are_isolated() {
    let host = test_netns_or_skip!();
    skip_without_nft!();
    let made = (
        TestNetns::new(),
        TestNetns::new(),
        TestNetns::new(),
        TestNetns::new(),
    );
    let (Ok(ctr), Ok(peer), Ok(ctr2), Ok(outside)) = made else {
        berth_sys::testing::skip_or_fail("cannot create the test namespaces");
        return;
    };
    let h = host.name();
    ip(&format!("-n {h} link set lo up"));
    sysctl(&host, "net.ipv4.ip_forward");
    bridge(&host, "br-t1", "172.30.0.1/24");
    bridge(&host, "br-t2", "172.31.0.1/24");
    attach(&host, "br-t1", "vbt1", &ctr, "172.30.0.2/24", "172.30.0.1");
    attach(&host, "br-t1", "vbt3", &peer, "172.30.0.3/24", "172.30.0.1");
    attach(&host, "br-t2", "vbt2", &ctr2, "172.31.0.2/24", "172.31.0.1");
    let o = outside.name();
    ip(&format!(
        "-n {h} link add vout type veth peer name eth0 netns {o}"
    ));
    ip(&format!("-n {h} addr add 10.99.0.1/24 dev vout"));
    ip(&format!("-n {h} link set vout up"));
    ip(&format!("-n {o} addr add 10.99.0.2/24 dev eth0"));
    ip(&format!("-n {o} link set eth0 up"));

    let fw = firewall(&host);
    let mut n1 = network("t1", "br-t1", "172.30.0.0/24");
    n1.kind = DriverState::Bridge(BridgeState {
        bridge: n1.device().clone(),
        icc: false,
    });
    let n2 = network("t2", "br-t2", "172.31.0.0/24");
    let ports = vec![
        port(None, 8080, 80, Proto::Tcp),
        port(Some("127.0.0.1"), 9090, 80, Proto::Tcp),
    ];
    let ep = endpoint(&n1, "t1", &["172.30.0.2/24"], ports);
    let ep3 = endpoint(&n1, "t3", &["172.30.0.3/24"], Vec::new());
    fw.add_network(&n1, 1).unwrap();
    fw.add_network(&n2, 1).unwrap();
    fw.add_endpoint(&n1, &ep).unwrap();
    fw.add_endpoint(&n1, &ep3).unwrap();
    echo_peer_server(&ctr, "0.0.0.0:80");
    echo_peer_server(&host, "172.30.0.1:7000");

    let cases = [
        (
            "outside host keeps its source",
            &outside,
            "10.99.0.1:8080",
            Some("10.99.0.2"),
        ),
        (
            "outside host, loopback-only port",
            &outside,
            "10.99.0.1:9090",
            None,
        ),
        (
            "host via 127.0.0.1",
            &host,
            "127.0.0.1:8080",
            Some("172.30.0.1"),
        ),
        (
            "host, loopback-only port",
            &host,
            "127.0.0.1:9090",
            Some("172.30.0.1"),
        ),
        (
            "host via its own address",
            &host,
            "10.99.0.1:8080",
            Some("10.99.0.1"),
        ),
        (
            "hairpin (icc off too)",
            &ctr,
            "10.99.0.1:8080",
            Some("172.30.0.1"),
        ),
        (
            "other network via the host",
            &ctr2,
            "10.99.0.1:8080",
            Some("172.31.0.2"),
        ),
        ("other network directly", &ctr2, "172.30.0.2:80", None),
        (
            "icc off: same network directly",
            &peer,
            "172.30.0.2:80",
            None,
        ),
        (
            "icc off: gateway still reachable",
            &peer,
            "172.30.0.1:7000",
            Some("172.30.0.3"),
        ),
    ];
    let mut failures = Vec::new();
    for (what, from, to, want) in cases {
        let got = seen_from(from, to);
        if got.as_deref() != want {
            failures.push(format!("{what}: {to} gave {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", ruleset(&host));

    fw.remove_endpoint(&n1, &ep3).unwrap();
    fw.remove_endpoint(&n1, &ep).unwrap();
    assert_eq!(
        seen_from(&outside, "10.99.0.1:8080"),
        None,
        "unpublished after removal"
    );
    let direct = seen_from(&peer, "172.30.0.2:80");
    assert_eq!(
        direct.as_deref(),
        Some("172.30.0.3"),
        "icc block lifted with the endpoints"
    );
}
