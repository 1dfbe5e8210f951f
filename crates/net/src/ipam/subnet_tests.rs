//! Tests of [`super::subnet`]: validation errors, pool choice, ULA picks.

use std::net::IpAddr;

use ipnet::IpNet;

use super::pool::ula_for;
use super::subnet::choose_with;
use super::{choose_subnets, IpamError, Taken};
use crate::model::{SubnetConfig, SubnetState};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sub(s: &str) -> SubnetConfig {
    SubnetConfig {
        subnet: Some(net(s)),
        ..Default::default()
    }
}

fn taken(n: &str, owner: &str) -> Taken {
    Taken {
        net: net(n),
        owner: owner.to_string(),
    }
}

fn err(requested: &[SubnetConfig], ipv6: bool, t: &[Taken]) -> IpamError {
    choose_subnets(requested, ipv6, t).expect_err("should be refused")
}

fn subnets(s: &[SubnetState]) -> Vec<String> {
    s.iter().map(|s| s.subnet.to_string()).collect()
}

#[test]
fn non_canonical_subnet_refused_with_the_right_one() {
    let e = err(&[sub("172.20.0.1/16")], false, &[]);
    assert!(matches!(e, IpamError::NotCanonical { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains("invalid subnet 172.20.0.1/16: it should be 172.20.0.0/16"),
        "{m}"
    );
    let mut c = sub("10.0.0.0/16");
    c.ip_range = Some(net("10.0.1.7/24"));
    let m = err(&[c], false, &[]).to_string();
    assert!(
        m.contains("invalid ip-range 10.0.1.7/24: it should be 10.0.1.0/24"),
        "{m}"
    );
}

#[test]
fn prefix_limits() {
    for (s, v6) in [
        ("10.0.0.0/7", false),
        ("10.0.0.0/31", false),
        ("10.0.0.0/32", false),
        ("fd00::/48", true),
        ("fd00::/127", true),
    ] {
        let e = err(&[sub(s)], v6, &[]);
        assert!(matches!(e, IpamError::PrefixLength { .. }), "{s}: {e:?}");
    }
    let m = err(&[sub("10.0.0.0/31")], false, &[]).to_string();
    assert!(m.contains("IPv4 subnet must be /8 to /30"), "{m}");
    for (s, v6) in [
        ("10.0.0.0/8", false),
        ("10.0.0.0/30", false),
        ("fd00::/64", true),
        ("fd00::/126", true),
    ] {
        choose_subnets(&[sub(s)], v6, &[]).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

#[test]
fn ipv6_subnet_needs_ipv6() {
    let e = err(&[sub("fd00:1::/64")], false, &[]);
    assert!(matches!(e, IpamError::Ipv6Disabled(_)), "{e:?}");
    assert!(e.to_string().contains("add --ipv6"), "{e}");
}

#[test]
fn gateway_range_aux_without_subnet_refused() {
    let c = SubnetConfig {
        gateway: Some(ip("10.0.0.1")),
        ..Default::default()
    };
    let e = err(&[c], false, &[]);
    assert!(matches!(e, IpamError::MissingSubnet), "{e:?}");
    assert!(e.to_string().contains("add --subnet"), "{e}");
    let c = SubnetConfig {
        ip_range: Some(net("10.0.0.0/24")),
        ..Default::default()
    };
    assert!(matches!(err(&[c], false, &[]), IpamError::MissingSubnet));
}

#[test]
fn gateway_must_be_a_host_address_inside() {
    let with_gw = |s: &str, g: &str| SubnetConfig {
        gateway: Some(ip(g)),
        ..sub(s)
    };
    let e = err(&[with_gw("10.0.0.0/24", "10.0.1.1")], false, &[]);
    assert!(matches!(e, IpamError::GatewayOutside { .. }), "{e:?}");
    assert!(
        e.to_string().contains("not inside subnet 10.0.0.0/24"),
        "{e}"
    );
    let e = err(&[with_gw("10.0.0.0/24", "fd00::1")], false, &[]);
    assert!(matches!(e, IpamError::GatewayOutside { .. }), "{e:?}");
    let e = err(&[with_gw("10.0.0.0/24", "10.0.0.0")], false, &[]);
    assert!(e.to_string().contains("network address"), "{e}");
    assert!(e.to_string().contains("such as 10.0.0.1"), "{e}");
    let e = err(&[with_gw("10.0.0.0/24", "10.0.0.255")], false, &[]);
    assert!(
        matches!(
            e,
            IpamError::GatewayReserved {
                what: "broadcast address",
                ..
            }
        ),
        "{e:?}"
    );
    let e = err(&[with_gw("fd00:1::/64", "fd00:1::")], true, &[]);
    assert!(matches!(e, IpamError::GatewayReserved { .. }), "{e:?}");
    let ok = choose_subnets(&[with_gw("10.0.0.0/24", "10.0.0.254")], false, &[]).unwrap();
    assert_eq!(ok[0].gateway, ip("10.0.0.254"));
}

#[test]
fn ip_range_and_aux_must_be_inside() {
    let mut c = sub("10.0.0.0/24");
    c.ip_range = Some(net("10.0.0.0/23"));
    let e = err(&[c.clone()], false, &[]);
    assert!(matches!(e, IpamError::RangeOutside { .. }), "{e:?}");
    c.ip_range = Some(net("10.0.0.128/25"));
    c.aux_addresses.insert("printer".into(), ip("10.0.1.5"));
    let e = err(&[c.clone()], false, &[]);
    assert!(
        e.to_string().contains("aux-address printer=10.0.1.5"),
        "{e}"
    );
    c.aux_addresses.insert("printer".into(), ip("10.0.0.5"));
    let ok = choose_subnets(&[c], false, &[]).unwrap();
    assert_eq!(ok[0].ip_range, Some(net("10.0.0.128/25")));
    assert_eq!(ok[0].aux_addresses["printer"], ip("10.0.0.5"));
    assert_eq!(ok[0].gateway, ip("10.0.0.1"));
}

#[test]
fn requested_subnets_must_not_overlap_each_other() {
    let e = err(&[sub("10.0.0.0/16"), sub("10.0.128.0/24")], false, &[]);
    assert!(matches!(e, IpamError::SubnetsOverlap(..)), "{e:?}");
    assert!(
        e.to_string()
            .contains("10.0.0.0/16 and 10.0.128.0/24 overlap"),
        "{e}"
    );
    let ok = choose_subnets(&[sub("10.0.0.0/24"), sub("10.0.1.0/24")], false, &[]).unwrap();
    assert_eq!(subnets(&ok), ["10.0.0.0/24", "10.0.1.0/24"]);
}

#[test]
fn explicit_subnet_overlapping_something_taken_names_it() {
    let t = [
        taken("172.18.0.0/16", "network frontend"),
        taken("10.0.0.0/8", "route 10.0.0.0/8 dev eth0"),
        taken("192.168.1.5/24", "address 192.168.1.5/24 on eth0"),
    ];
    let e = err(&[sub("172.18.5.0/24")], false, &t);
    assert!(matches!(e, IpamError::SubnetTaken { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("overlaps network frontend (172.18.0.0/16)"),
        "{e}"
    );
    let e = err(&[sub("10.20.0.0/16")], false, &t);
    assert!(e.to_string().contains("route 10.0.0.0/8 dev eth0"), "{e}");
    let e = err(&[sub("192.168.0.0/20")], false, &t);
    assert!(
        e.to_string().contains("address 192.168.1.5/24 on eth0"),
        "{e}"
    );
    choose_subnets(&[sub("192.168.2.0/24")], false, &t).unwrap();
}

#[test]
fn default_pool_is_the_first_free_one() {
    let ok = choose_subnets(&[], false, &[]).unwrap();
    assert_eq!(subnets(&ok), ["172.17.0.0/16"]);
    assert_eq!(ok[0].gateway, ip("172.17.0.1"));
    assert_eq!(ok[0].ip_range, None);
    // A blank config means "pick one" too; a default route says nothing about what is used.
    let t = [
        taken("0.0.0.0/0", "route default via 10.0.2.2"),
        taken("172.17.0.0/16", "network bridge"),
        taken("172.18.0.0/15", "route 172.18.0.0/15 dev eth1"),
        taken("172.20.5.3/24", "address 172.20.5.3/24 on eth2"),
    ];
    let ok = choose_subnets(&[SubnetConfig::default()], false, &t).unwrap();
    assert_eq!(subnets(&ok), ["172.21.0.0/16"]);
    let t = [
        taken("172.16.0.0/12", "route 172.16.0.0/12 dev vpn0"),
        taken("192.168.0.0/24", "address 192.168.0.10/24 on wlan0"),
    ];
    let ok = choose_subnets(&[], false, &t).unwrap();
    assert_eq!(subnets(&ok), ["192.168.16.0/20"]);
    assert_eq!(ok[0].gateway, ip("192.168.16.1"));
}

#[test]
fn no_free_pool_suggests_subnet() {
    let t = [
        taken("172.16.0.0/12", "route 172.16.0.0/12 dev vpn0"),
        taken("192.168.0.0/16", "route 192.168.0.0/16 dev vpn0"),
    ];
    let e = err(&[], false, &t);
    assert!(matches!(e, IpamError::NoFreePool { .. }), "{e:?}");
    assert!(e.to_string().contains("pass --subnet"), "{e}");
    // An explicit subnet still works.
    choose_subnets(&[sub("10.5.0.0/16")], false, &t).unwrap();
}

#[test]
fn ipv6_gets_a_ula_64_and_an_ipv4_pool() {
    let ok = choose_subnets(&[], true, &[]).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].subnet, net("172.17.0.0/16"));
    let IpNet::V6(v6) = ok[1].subnet else {
        panic!("second subnet should be IPv6: {ok:?}")
    };
    let seg = v6.network().segments();
    assert_eq!(v6.prefix_len(), 64);
    assert_eq!(seg[0] >> 8, 0xfd, "{v6}: RFC 4193 L=1 prefix fd00::/8");
    assert_eq!(seg[3], 0, "{v6}: subnet id 0");
    assert_eq!(&seg[4..], &[0; 4], "{v6}: interface id zero");
    let mut gw = seg;
    gw[7] = 1;
    assert_eq!(ok[1].gateway, IpAddr::V6(gw.into()), "gateway is network+1");
    // Random global ids: two picks differ (1 in 2^40 chance of a false failure).
    let again = choose_subnets(&[], true, &[]).unwrap();
    assert_ne!(again[1].subnet, ok[1].subnet);
}

#[test]
fn ula_pick_skips_taken_and_gives_up() {
    let mut ids = [1u64, 2].into_iter().cycle();
    let t = [Taken {
        net: ula_for(1),
        owner: "network v6a".into(),
    }];
    let ok = choose_with(&[], true, &t, &mut || ids.next().unwrap()).unwrap();
    assert_eq!(ok[1].subnet, ula_for(2));
    let t = [taken("fd00::/8", "route fd00::/8 dev wg0")];
    let e = choose_with(&[], true, &t, &mut || 7).unwrap_err();
    assert!(matches!(e, IpamError::NoFreeUla { .. }), "{e:?}");
    assert!(e.to_string().contains("pass an IPv6 --subnet"), "{e}");
}

#[test]
fn requested_v6_keeps_auto_v4_and_order() {
    let ok = choose_subnets(&[sub("fd00:9::/64"), sub("10.3.0.0/16")], true, &[]).unwrap();
    assert_eq!(subnets(&ok), ["10.3.0.0/16", "fd00:9::/64"]);
    assert_eq!(ok[1].gateway, ip("fd00:9::1"));
    let ok = choose_subnets(&[sub("fd00:9::/64")], true, &[]).unwrap();
    assert_eq!(subnets(&ok), ["172.17.0.0/16", "fd00:9::/64"]);
    let ok = choose_subnets(&[sub("10.3.0.0/16")], false, &[]).unwrap();
    assert_eq!(ok.len(), 1, "no IPv6 without --ipv6");
}

#[test]
fn aux_address_on_the_gateway_or_twice_refused() {
    let mut c = sub("10.0.0.0/24");
    c.aux_addresses.insert("router".into(), ip("10.0.0.1"));
    let e = err(&[c], false, &[]);
    assert!(
        e.to_string()
            .contains("aux-address router=10.0.0.1 is the gateway"),
        "{e}"
    );
    let mut c = sub("10.0.0.0/24");
    c.gateway = Some(ip("10.0.0.254"));
    c.aux_addresses.insert("gw".into(), ip("10.0.0.254"));
    let e = err(&[c], false, &[]);
    assert!(
        matches!(e, IpamError::AuxIsGateway { .. }),
        "an explicit gateway too: {e}"
    );
    let mut c = sub("10.0.0.0/24");
    c.aux_addresses.insert("a".into(), ip("10.0.0.9"));
    c.aux_addresses.insert("b".into(), ip("10.0.0.9"));
    let e = err(&[c], false, &[]);
    assert!(e.to_string().contains("a and b are both 10.0.0.9"), "{e}");
}
