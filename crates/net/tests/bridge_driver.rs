//! Privileged tests of the bridge driver: a throwaway "host" netns holds the
//! bridge, throwaway sandbox namespaces the containers' ends; all deleted on
//! drop, pass or fail. Never the root namespace: the driver runs on a thread
//! inside the test host namespace. Prints `SKIP: reason` when not root. State
//! is read back through netlink (`berth_sys::link`/`route`), never `/sys/class/net`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use berth_net::driver::Driver;
use berth_net::drivers::bridge::{host_ifname_for, mac_for, BridgeDriver, BridgeError};
use berth_net::kernel::SysNetlink;
use berth_net::model::{EndpointState, NetworkState, SubnetState};
use berth_net::netstate::{BridgeState, DriverState};
use berth_sys::link::{self, Link, LinkError};
use berth_sys::netns::run_in;
use berth_sys::route::{self, Route};
use berth_sys::sysctl;
use berth_sys::test_netns_or_skip;
use berth_sys::testing::TestNetns;

fn network(mtu: u32) -> NetworkState {
    let subnet = |s: &str, g: &str| SubnetState {
        subnet: s.parse().unwrap(),
        gateway: g.parse().unwrap(),
        ip_range: None,
        aux_addresses: Default::default(),
    };
    NetworkState {
        id: "a".repeat(64),
        name: "testnet".parse().unwrap(),
        subnets: vec![
            subnet("10.88.0.0/24", "10.88.0.1"),
            subnet("fd00:88::/64", "fd00:88::1"),
        ],
        ipv6: true,
        internal: false,
        dns: true,
        mtu,
        kind: DriverState::Bridge(BridgeState {
            bridge: "br-test0".parse().unwrap(),
            icc: true,
        }),
        labels: Default::default(),
        options: Default::default(),
        created: String::new(),
    }
}

/// Endpoint number `n` (id `<n>` repeated) with 10.88.0.<n+1> and fd00:88::<n+1>.
fn endpoint(n: u8) -> EndpointState {
    let id = format!("{n:x}").repeat(64)[..64].to_string();
    let v4 = Ipv4Addr::new(10, 88, 0, n + 1);
    EndpointState {
        host_ifname: host_ifname_for(&id),
        id,
        network_id: "a".repeat(64),
        container_id: "c".repeat(64),
        ifname: "eth0".parse().unwrap(),
        mac: mac_for(v4),
        addresses: vec![
            format!("{v4}/24").parse().unwrap(),
            format!("fd00:88::{}/64", n + 1).parse().unwrap(),
        ],
        aliases: vec![],
        ports: vec![],
    }
}

/// Runs `f` inside `ns` (the driver acts in the calling thread's namespace).
fn inside<T: Send>(ns: &TestNetns, f: impl FnOnce() -> T + Send) -> T {
    run_in(&ns.path(), f).expect("enter test netns")
}

fn link_in(ns: &TestNetns, name: &str) -> Result<Link, LinkError> {
    inside(ns, || link::link_by_name(name))
}

fn ping(from: &TestNetns, to: &str) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", from.path().display()))
        .args(["ping", "-c1", "-W1", to])
        .output()
        .expect("run ping (apt-get install iputils-ping)")
        .status
        .success()
}

#[test]
fn create_join_ping_leave_delete() {
    let host = test_netns_or_skip!();
    let sb1 = TestNetns::new().expect("sandbox 1");
    let sb2 = TestNetns::new().expect("sandbox 2");
    let (d, n, e1, e2) = (
        BridgeDriver::new(&SysNetlink),
        network(1450),
        endpoint(1),
        endpoint(2),
    );

    inside(&host, || {
        d.create_network(&n).unwrap();
        d.create_network(&n).unwrap(); // idempotent
        assert_eq!(sysctl::get("net/ipv4/ip_forward").unwrap(), "1");
        assert_eq!(
            sysctl::get("net/ipv4/conf/br-test0/route_localnet").unwrap(),
            "1"
        );
        assert_eq!(sysctl::get("net/ipv6/conf/all/forwarding").unwrap(), "1");
    });
    let br = link_in(&host, "br-test0").unwrap();
    assert_eq!(
        (br.kind.as_deref(), br.up, br.mtu),
        (Some("bridge"), true, 1450)
    );
    let addrs = inside(&host, link::list_addrs).unwrap();
    for gw in ["10.88.0.1", "fd00:88::1"] {
        let gw: IpAddr = gw.parse().unwrap();
        assert!(
            addrs.iter().any(|a| a.ifname == "br-test0" && a.addr == gw),
            "gateway {gw} missing: {addrs:?}"
        );
    }

    inside(&host, || {
        d.join(&n, &e1, &sb1.path(), true).unwrap();
        d.join(&n, &e2, &sb2.path(), true).unwrap();
    });
    let port = link_in(&host, e1.host_ifname.as_str()).unwrap();
    assert_eq!(
        (port.master, port.up, port.mtu),
        (Some(br.index), true, 1450)
    );
    assert_hairpin(&host, e1.host_ifname.as_str());

    let eth0 = link_in(&sb1, "eth0").unwrap();
    assert_eq!(eth0.mac.unwrap().to_string(), "02:42:0a:58:00:02");
    assert_eq!((eth0.up, eth0.mtu), (true, 1450));
    let (addrs, routes) = inside(&sb1, || {
        (link::list_addrs().unwrap(), route::list_routes().unwrap())
    });
    for want in &e1.addresses {
        assert!(
            addrs.iter().any(|a| a.ifname == "eth0"
                && a.addr == want.addr()
                && a.prefix_len == want.prefix_len()),
            "{want} missing: {addrs:?}"
        );
    }
    for (dst, gw) in [("0.0.0.0/0", "10.88.0.1"), ("::/0", "fd00:88::1")] {
        let r = Route {
            dst: dst.parse().unwrap(),
            gateway: Some(gw.parse().unwrap()),
            dev: Some("eth0".into()),
        };
        assert!(routes.contains(&r), "{r:?} missing: {routes:?}");
    }

    assert!(ping(&sb1, "10.88.0.1"), "sandbox 1 cannot ping the gateway");
    assert!(ping(&sb1, "10.88.0.3"), "sandbox 1 cannot ping sandbox 2");
    assert!(
        ping(&sb2, "fd00:88::2"),
        "sandbox 2 cannot ping sandbox 1 over IPv6"
    );

    inside(&host, || {
        d.leave(&n, &e1, &sb1.path()).unwrap();
        d.leave(&n, &e1, &sb1.path()).unwrap(); // idempotent
    });
    assert!(matches!(
        link_in(&host, e1.host_ifname.as_str()),
        Err(LinkError::NotFound { .. })
    ));
    assert!(matches!(
        link_in(&sb1, "eth0"),
        Err(LinkError::NotFound { .. })
    ));
    assert!(!ping(&sb2, "10.88.0.2"), "left endpoint still answers");

    inside(&host, || {
        d.delete_network(&n, &[]).unwrap();
        d.delete_network(&n, &[]).unwrap(); // idempotent
    });
    assert!(matches!(
        link_in(&host, "br-test0"),
        Err(LinkError::NotFound { .. })
    ));
}

fn assert_hairpin(ns: &TestNetns, port: &str) {
    // `bridge` reads IFLA_PROTINFO over netlink.
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["bridge", "-d", "link", "show", "dev", port])
        .output()
        .expect("run bridge");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hairpin on"), "bridge -d link: {text}");
}

/// The host-side links whose names start with `vb`/`vp` (veth ends of endpoints).
fn veths(ns: &TestNetns) -> Vec<String> {
    inside(ns, link::list_links)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with("vb") || n.starts_with("vp"))
        .collect()
}

#[test]
fn failed_joins_leave_no_veth() {
    let host = test_netns_or_skip!();
    let sb = TestNetns::new().expect("sandbox");
    let (d, n) = (BridgeDriver::new(&SysNetlink), network(1500));
    inside(&host, || d.create_network(&n).unwrap());

    // A sandbox pin that does not exist.
    let err = inside(&host, || {
        d.join(
            &n,
            &endpoint(1),
            Path::new("/run/netns/berth-t-missing"),
            true,
        )
    })
    .unwrap_err();
    assert!(matches!(err, BridgeError::OpenNetns { .. }), "{err}");
    assert_eq!(veths(&host), Vec::<String>::new());

    // The sandbox already has eth0: the rename inside fails after the move.
    inside(&host, || d.join(&n, &endpoint(1), &sb.path(), true)).unwrap();
    let err = inside(&host, || d.join(&n, &endpoint(2), &sb.path(), true)).unwrap_err();
    assert!(matches!(err, BridgeError::SandboxLink { .. }), "{err}");
    assert_eq!(err.errno(), Some(17), "EEXIST expected: {err}");
    assert_eq!(veths(&host), vec![endpoint(1).host_ifname.to_string()]);
    let sandbox_links: Vec<String> = inside(&sb, link::list_links)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(sandbox_links, vec!["lo".to_string(), "eth0".to_string()]);

    // A second default route in the same sandbox is refused and rolled back.
    let mut e3 = endpoint(3);
    e3.ifname = "eth1".parse().unwrap();
    let err = inside(&host, || d.join(&n, &e3, &sb.path(), true)).unwrap_err();
    assert!(matches!(err, BridgeError::SandboxRoute { .. }), "{err}");
    assert!(matches!(
        link_in(&sb, "eth1"),
        Err(LinkError::NotFound { .. })
    ));
    // Without a default route (an internal network, a second network) it joins.
    inside(&host, || d.join(&n, &e3, &sb.path(), false)).unwrap();
    assert!(link_in(&sb, "eth1").unwrap().up);
}

#[test]
fn rejoin_after_an_interrupted_join_converges() {
    let host = test_netns_or_skip!();
    let sb = TestNetns::new().expect("sandbox");
    let (d, n, e) = (BridgeDriver::new(&SysNetlink), network(1500), endpoint(4));
    inside(&host, || {
        d.create_network(&n).unwrap();
        // What a crash between veth creation and the move leaves behind.
        link::create_veth(e.host_ifname.as_str(), "vp-stale", 1500).unwrap();
        d.join(&n, &e, &sb.path(), false).unwrap();
    });
    assert_eq!(veths(&host), vec![e.host_ifname.to_string()]);
    assert!(
        ping(&sb, "10.88.0.1"),
        "rejoined sandbox cannot ping the gateway"
    );
    let routes = inside(&sb, route::list_routes).unwrap();
    assert!(
        routes.iter().all(|r| r.dst.prefix_len() != 0),
        "default_route=false added one: {routes:?}"
    );
}
