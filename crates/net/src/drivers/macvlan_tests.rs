//! Unit tests of the macvlan/ipvlan driver's pure parts: options, sharing rules, parent checks,
//! default routes, names.

use super::*;
use crate::kernel::SysNetlink;
use crate::model::SubnetState;
use crate::netstate::DriverState;

fn opts(driver: DriverName, kv: &[(&str, &str)]) -> Result<MacvlanOptions, MacvlanError> {
    let map = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    MacvlanOptions::parse(driver, "n1", &map)
}

#[test]
fn options_default_to_docker_modes() {
    let o = opts(DriverName::Macvlan, &[("parent", "eth0")]).unwrap();
    assert_eq!(o.parent.unwrap().as_str(), "eth0");
    assert_eq!(o.mode, ChildMode::Macvlan(MacvlanMode::Bridge));
    assert!(!o.host_access);
    let o = opts(DriverName::Ipvlan, &[]).unwrap();
    assert_eq!(o.parent, None);
    assert_eq!(
        o.mode,
        ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge)
    );
}

#[test]
fn options_parse_modes_flags_and_host_access() {
    let o = opts(
        DriverName::Ipvlan,
        &[
            ("ipvlan_mode", "l3s"),
            ("ipvlan_flag", "private"),
            ("parent", "eth1"),
        ],
    )
    .unwrap();
    assert_eq!(
        o.mode,
        ChildMode::Ipvlan(IpvlanMode::L3s, IpvlanFlag::Private)
    );
    let o = opts(
        DriverName::Macvlan,
        &[
            ("macvlan_mode", "passthru"),
            ("com.docker.network.driver.mtu", "1400"),
        ],
    )
    .unwrap();
    assert_eq!(o.mode, ChildMode::Macvlan(MacvlanMode::Passthru));
    assert_eq!(o.mtu, Some(1400));
    assert!(
        opts(DriverName::Macvlan, &[("host_access", "true")])
            .unwrap()
            .host_access
    );
}

#[test]
fn bad_options_say_what_to_use() {
    for (driver, kv, needle) in [
        (
            DriverName::Macvlan,
            ("macvlan_mode", "x"),
            "bridge, private, vepa, passthru",
        ),
        (
            DriverName::Macvlan,
            ("ipvlan_mode", "l2"),
            "unknown option -o ipvlan_mode",
        ),
        (
            DriverName::Ipvlan,
            ("macvlan_mode", "bridge"),
            "ipvlan_mode, ipvlan_flag",
        ),
        (DriverName::Ipvlan, ("ipvlan_mode", "l4"), "l2, l3, l3s"),
        (DriverName::Macvlan, ("host_access", "yes"), "true or false"),
        (
            DriverName::Macvlan,
            ("parent", "a/b"),
            "invalid interface name",
        ),
        (
            DriverName::Macvlan,
            ("com.docker.network.driver.mtu", "9"),
            "68 to 65535",
        ),
    ] {
        let e = opts(driver, &[kv]).unwrap_err().to_string();
        assert!(e.contains(needle), "{kv:?}: {e}");
    }
    let e = opts(
        DriverName::Macvlan,
        &[("macvlan_mode", "private"), ("host_access", "true")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("host_access=true needs bridge mode"), "{e}");
}

#[test]
fn vlan_parents_and_generated_names() {
    let p: IfName = "eth0.10".parse().unwrap();
    assert_eq!(vlan_of(&p), Some(("eth0", 10)));
    for not in ["eth0", "eth0.0", "eth0.4095", ".10", "eth0.x"] {
        assert_eq!(vlan_of(&not.parse().unwrap()), None, "{not}");
    }
    let id = "0123456789abcdef".repeat(4);
    assert_eq!(dummy_parent_for(&id).as_str(), "dm-0123456789ab");
    assert_eq!(shim_ifname_for(&id).as_str(), "mh0123456789a");
}

fn network(name: &str, mode: ChildMode, parent: &str) -> NetworkState {
    NetworkState {
        id: "f".repeat(64),
        name: name.parse().unwrap(),
        subnets: vec![SubnetState {
            subnet: "192.168.50.0/24".parse().unwrap(),
            gateway: "192.168.50.1".parse().unwrap(),
            ip_range: None,
            aux_addresses: Default::default(),
        }],
        ipv6: false,
        internal: false,
        dns: false,
        mtu: 1500,
        labels: Default::default(),
        options: Default::default(),
        created: String::new(),
        kind: DriverState::child(
            ParentLink {
                parent: parent.parse().unwrap(),
                parent_created: false,
                shim: None,
            },
            mode,
        ),
    }
}

#[test]
fn sharing_rules_name_the_other_network() {
    let mv = ChildMode::Macvlan(MacvlanMode::Bridge);
    let pt = ChildMode::Macvlan(MacvlanMode::Passthru);
    let iv = ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge);
    let nic: IfName = "nicA".parse().unwrap();
    let others = [network("lan", mv, "nicA"), network("other", iv, "nicB")];
    assert!(check_sharing(&nic, mv, &others).is_ok());
    assert!(check_sharing(&nic, ChildMode::Macvlan(MacvlanMode::Private), &others).is_ok());
    let e = check_sharing(&nic, iv, &others).unwrap_err().to_string();
    assert!(
        e.contains("macvlan network lan") && e.contains("macvlan and ipvlan"),
        "{e}"
    );
    let e = check_sharing(&nic, pt, &others).unwrap_err().to_string();
    assert!(
        e.contains("network lan") && e.contains("exclusively"),
        "{e}"
    );
    let e = check_sharing(&nic, mv, &[network("pt", pt, "nicA")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("network pt") && e.contains("passthru"), "{e}");
}

fn link(name: &str, up: bool, kind: Option<&str>) -> Link {
    Link {
        name: name.into(),
        index: 3,
        up,
        mtu: 1500,
        mac: None,
        kind: kind.map(Into::into),
        master: None,
    }
}

#[test]
fn parent_must_be_up_and_free() {
    assert!(check_parent(&link("nicA", true, Some("veth")), None).is_ok());
    let e = check_parent(&link("nicA", false, None), None).unwrap_err();
    assert!(e.to_string().contains("ip link set nicA up"), "{e}");
    let br = link("br0", true, Some("bridge"));
    let e = check_parent(&link("nicA", true, None), Some(&br)).unwrap_err();
    assert!(e.to_string().contains("enslaved to br0 (bridge)"), "{e}");
}

#[test]
fn loopback_is_no_parent() {
    let e = check_parent(&link("lo", true, None), None).unwrap_err();
    assert!(
        e.to_string().contains("lo is the loopback interface"),
        "{e}"
    );
    let mut renamed = link("loop0", true, None);
    renamed.mac = Some(berth_sys::link::MacAddr([0; 6]));
    assert!(check_parent(&renamed, None).is_err());
}

#[test]
fn default_routes_use_the_gateway_except_in_l3_modes() {
    let mut n = network("lan", ChildMode::Macvlan(MacvlanMode::Bridge), "nicA");
    let ep = EndpointState {
        id: "e".repeat(64),
        network_id: n.id.clone(),
        container_id: "c".repeat(64),
        ifname: "eth0".parse().unwrap(),
        host_ifname: "vbx".parse().unwrap(),
        mac: "02:42:c0:a8:32:02".into(),
        addresses: vec!["192.168.50.2/24".parse().unwrap()],
        aliases: vec![],
        ports: vec![],
    };
    let any: IpNet = "0.0.0.0/0".parse().unwrap();
    let gw: IpAddr = "192.168.50.1".parse().unwrap();
    assert_eq!(default_routes(&n, &ep), vec![(any, Some(gw))]);
    n.kind = DriverState::child(
        n.kind.parent_link().unwrap().0.clone(),
        ChildMode::Ipvlan(IpvlanMode::L3, IpvlanFlag::Bridge),
    );
    assert_eq!(default_routes(&n, &ep), vec![(any, None)]);
    n.kind = DriverState::child(
        n.kind.parent_link().unwrap().0.clone(),
        ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge),
    );
    assert_eq!(default_routes(&n, &ep), vec![(any, Some(gw))]);
}

#[test]
fn a_bad_mac_fails_before_anything_is_created() {
    let n = network("lan", ChildMode::Macvlan(MacvlanMode::Bridge), "nicA");
    let ep = EndpointState {
        id: "e".repeat(64),
        network_id: n.id.clone(),
        container_id: "c".repeat(64),
        ifname: "eth0".parse().unwrap(),
        host_ifname: "vbx".parse().unwrap(),
        mac: "nope".into(),
        addresses: vec![],
        aliases: vec![],
        ports: vec![],
    };
    let e = MacvlanDriver::new(&SysNetlink)
        .join(&n, &ep, Path::new("/nonexistent"), true)
        .unwrap_err();
    assert!(matches!(e, MacvlanError::Mac { .. }), "{e}");
}
