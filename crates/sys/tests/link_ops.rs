//! Privileged tests of link, address, route and sysctl changes: run only as
//! root, inside throwaway network namespaces (never the root namespace);
//! otherwise they print `SKIP: reason`. Everything is read back through
//! netlink (or `bridge`, itself netlink), never `/sys/class/net`.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::Command;

use berth_sys::link::{self, LinkError, MacAddr};
use berth_sys::netns::run_in;
use berth_sys::route::{self, Route};
use berth_sys::sysctl;
use berth_sys::test_netns_or_skip;
use berth_sys::testing::TestNetns;

/// Runs `f` in `ns` and unwraps the namespace switch.
fn inside<T: Send>(ns: &TestNetns, f: impl FnOnce() -> T + Send) -> T {
    run_in(&ns.path(), f).expect("enter test netns")
}

#[test]
fn bridge_create_is_idempotent_and_refuses_other_kinds() {
    let ns = test_netns_or_skip!();
    inside(&ns, || {
        link::create_bridge("br-t0", 1400).unwrap();
        link::create_bridge("br-t0", 1450).unwrap();
        let br = link::link_by_name("br-t0").unwrap();
        assert_eq!(br.kind.as_deref(), Some("bridge"));
        assert_eq!(br.mtu, 1450, "second create converges the MTU");
        assert!(!br.up);

        link::create_veth("vt0", "vt0p", 1500).unwrap();
        let err = link::create_bridge("vt0", 1500).unwrap_err();
        assert!(
            matches!(err, LinkError::NotBridge { ref kind, .. } if kind == "veth"),
            "{err}"
        );
        let err = link::create_veth("vt0", "vt1p", 1500).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");

        link::delete_link("br-t0").unwrap();
        link::delete_link("br-t0").unwrap(); // ENODEV is success
        assert!(matches!(
            link::link_by_name("br-t0"),
            Err(LinkError::NotFound { .. })
        ));
    });
}

#[test]
fn veth_port_setup_on_a_bridge() {
    let ns = test_netns_or_skip!();
    inside(&ns, || {
        link::create_bridge("br-t1", 1500).unwrap();
        link::create_veth("vt1", "vt1p", 1400).unwrap();
        link::set_master("vt1", "br-t1").unwrap();
        link::set_bridge_port_hairpin("vt1", true).unwrap();
        link::set_mtu("vt1", 1300).unwrap();
        let mac: MacAddr = "02:42:0a:00:00:07".parse().unwrap();
        link::set_mac("vt1p", mac).unwrap();
        link::rename("vt1p", "eth7").unwrap();
        link::set_up("vt1").unwrap();

        let br = link::link_by_name("br-t1").unwrap();
        let port = link::link_by_name("vt1").unwrap();
        assert_eq!(port.master, Some(br.index));
        assert_eq!(port.mtu, 1300);
        assert!(port.up);
        let peer = link::link_by_name("eth7").unwrap();
        assert_eq!(peer.mac, Some(mac));
        assert_eq!(peer.kind.as_deref(), Some("veth"));
        assert!(matches!(
            link::link_by_name("vt1p"),
            Err(LinkError::NotFound { .. })
        ));
        link::set_down("vt1").unwrap();
        assert!(!link::link_by_name("vt1").unwrap().up);
        // Hairpin off on an unenslaved link is refused, not ignored.
        assert!(link::set_bridge_port_hairpin("eth7", false).is_err());
    });
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["bridge", "-d", "link", "show", "dev", "vt1"])
        .output()
        .expect("run bridge");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hairpin on"), "bridge -d link: {text}");
}

#[test]
fn move_to_netns_then_address_and_default_route_inside() {
    let host = test_netns_or_skip!();
    let sandbox = TestNetns::new().expect("second netns");
    let sandbox_fd = File::open(sandbox.path()).unwrap();
    inside(&host, || {
        link::create_veth("vt2", "vt2p", 1500).unwrap();
        link::move_to_netns("vt2p", sandbox_fd.as_fd()).unwrap();
        assert!(matches!(
            link::link_by_name("vt2p"),
            Err(LinkError::NotFound { .. })
        ));
    });
    let routes = inside(&sandbox, || {
        link::add_address("vt2p", "10.9.0.2/24".parse().unwrap()).unwrap();
        link::add_address("vt2p", "10.9.0.2/24".parse().unwrap()).unwrap(); // EEXIST ok
        link::add_address("vt2p", "fd00:9::2/64".parse().unwrap()).unwrap();
        link::set_up("vt2p").unwrap();
        let gw4 = "10.9.0.1".parse().unwrap();
        route::add_route("0.0.0.0/0".parse().unwrap(), Some(gw4), None).unwrap();
        let again = route::add_route("0.0.0.0/0".parse().unwrap(), Some(gw4), None).unwrap_err();
        assert_eq!(again.errno(), Some(libc::EEXIST), "{again}");
        let gw6 = "fd00:9::1".parse().unwrap();
        route::add_route("::/0".parse().unwrap(), Some(gw6), Some("vt2p")).unwrap();
        route::add_route("10.77.0.0/16".parse().unwrap(), None, Some("vt2p")).unwrap();
        let addrs = link::list_addrs().unwrap();
        assert!(addrs
            .iter()
            .any(|a| a.ifname == "vt2p" && a.addr.to_string() == "10.9.0.2" && a.prefix_len == 24));
        route::list_routes().unwrap()
    });
    let want = |dst: &str, gw: Option<&str>| Route {
        dst: dst.parse().unwrap(),
        gateway: gw.map(|g| g.parse().unwrap()),
        dev: Some("vt2p".into()),
    };
    for r in [
        want("0.0.0.0/0", Some("10.9.0.1")),
        want("::/0", Some("fd00:9::1")),
        want("10.9.0.0/24", None),
        want("10.77.0.0/16", None),
        want("fd00:9::/64", None),
    ] {
        assert!(routes.contains(&r), "{r:?} missing from {routes:?}");
    }
}

#[test]
fn sysctls_are_per_namespace() {
    let ns = test_netns_or_skip!();
    let root_before = sysctl::get("net/ipv4/conf/all/route_localnet").unwrap();
    inside(&ns, || {
        link::create_bridge("br-t3", 1500).unwrap();
        sysctl::set("net/ipv4/conf/br-t3/route_localnet", "1").unwrap();
        assert_eq!(
            sysctl::get("net/ipv4/conf/br-t3/route_localnet").unwrap(),
            "1"
        );
        sysctl::set("net/ipv4/ip_forward", "1").unwrap();
        assert_eq!(sysctl::get("net/ipv4/ip_forward").unwrap(), "1");
    });
    // The bridge (and so its key) exists only in the test namespace.
    let err = sysctl::get("net/ipv4/conf/br-t3/route_localnet").unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    assert_eq!(
        sysctl::get("net/ipv4/conf/all/route_localnet").unwrap(),
        root_before
    );
}
