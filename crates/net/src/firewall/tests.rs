//! Golden tests of both firewall steps (plan → elements, elements → nft text) and of the
//! backend's operations against a recording runner.

use std::collections::BTreeMap;

use super::nft::render;
use super::plan::{self, Element, Plan};
use super::{Firewall, NftFirewall, PlanError, RecordingRunner};
use crate::model::{EndpointState, NetworkState, PortMapping, SubnetState};
use crate::netstate::{BridgeState, DriverState};
use crate::port::Proto;

fn network(name: &str, bridge: &str, subnets: &[&str]) -> NetworkState {
    NetworkState {
        id: format!("{name:0>64}"),
        name: name.parse().unwrap(),
        subnets: subnets
            .iter()
            .map(|s| {
                let subnet: ipnet::IpNet = s.parse().unwrap();
                SubnetState {
                    subnet,
                    gateway: subnet.hosts().next().unwrap(),
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                }
            })
            .collect(),
        ipv6: subnets.iter().any(|s| s.contains(':')),
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
        id: format!("e{ctr:0>63}"),
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

fn lines(elements: &[Element]) -> Vec<String> {
    elements.iter().map(ToString::to_string).collect()
}

#[test]
fn plan_of_a_plain_dual_stack_network() {
    let net = network("web", "br-web", &["172.18.0.0/16", "fd00:1::/64"]);
    assert_eq!(
        lines(&plan::network_elements(&net)),
        [
            "bridge br-web net=web",
            "gateway 172.18.0.1 on br-web net=web",
            "gateway fd00:1:: on br-web net=web",
            "nat 172.18.0.0/16 via br-web net=web",
            "nat fd00:1::/64 via br-web net=web",
        ]
    );
}

#[test]
fn plan_of_an_internal_network_has_no_egress_and_refuses_ports() {
    let mut net = network("sealed", "br-sealed", &["10.5.0.0/24"]);
    net.internal = true;
    assert_eq!(
        lines(&plan::network_elements(&net)),
        [
            "bridge br-sealed net=sealed",
            "gateway 10.5.0.1 on br-sealed net=sealed",
            "internal br-sealed net=sealed"
        ]
    );
    let ep = endpoint(
        &net,
        "a1",
        &["10.5.0.2/24"],
        vec![port(None, 8080, 80, Proto::Tcp)],
    );
    let err = plan::add_endpoint(&net, &ep).unwrap_err();
    assert!(
        matches!(
            err,
            PlanError::Publish(crate::policy::PublishRefused::Internal { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("internal"), "{err}");
    // Removal of what could never be added is a no-op, not an error.
    assert_eq!(plan::remove_endpoint(&net, &ep).remove, Vec::new());
}

#[test]
fn plan_of_an_endpoint_with_every_kind_of_port() {
    let mut net = network("web", "br-web", &["172.18.0.0/16", "fd00:1::/64"]);
    net.kind = DriverState::Bridge(BridgeState {
        bridge: net.device().clone(),
        icc: false,
    });
    let ep = endpoint(
        &net,
        "a1",
        &["172.18.0.2/16", "fd00:1::2/64"],
        vec![
            port(None, 8080, 80, Proto::Tcp),
            port(Some("127.0.0.1"), 9000, 9000, Proto::Tcp),
            port(Some("0.0.0.0"), 5353, 53, Proto::Udp),
            port(Some("::1"), 8443, 443, Proto::Tcp),
        ],
    );
    let plan = plan::add_endpoint(&net, &ep).unwrap();
    let ctr = "a1cccccccccc";
    assert_eq!(
        lines(&plan.add),
        [
            format!("no-icc vba1 net=web ctr={ctr}"),
            format!("publish 0.0.0.0:8080/tcp -> 172.18.0.2:80 net=web ctr={ctr}"),
            format!("publish [::]:8080/tcp -> [fd00:1::2]:80 net=web ctr={ctr}"),
            format!("publish 127.0.0.1:9000/tcp -> 172.18.0.2:9000 net=web ctr={ctr}"),
            format!("publish 0.0.0.0:5353/udp -> 172.18.0.2:53 net=web ctr={ctr}"),
            format!("publish [::1]:8443/tcp -> [fd00:1::2]:443 net=web ctr={ctr}"),
        ]
    );
}

#[test]
fn a_v6_host_address_needs_a_v6_endpoint_address() {
    let net = network("web", "br-web", &["172.18.0.0/16"]);
    let ep = endpoint(
        &net,
        "a1",
        &["172.18.0.2/16"],
        vec![port(Some("::1"), 80, 80, Proto::Tcp)],
    );
    let err = plan::add_endpoint(&net, &ep).unwrap_err();
    assert!(matches!(err, PlanError::NoAddress { .. }), "{err}");
    // An any-address port on a v4-only endpoint publishes v4 only.
    let ep = endpoint(
        &net,
        "a1",
        &["172.18.0.2/16"],
        vec![port(None, 80, 80, Proto::Tcp)],
    );
    assert_eq!(plan::add_endpoint(&net, &ep).unwrap().add.len(), 1);
}

const NET_ELEMENTS: &str = r#"add element inet berth bridges { "br-web" comment "net web" }
add element inet berth same_bridge { "br-web" . "br-web" comment "net web" }
add element inet berth egress4 { 172.18.0.0/16 comment "net web" }
add element inet berth egress6 { fd00:1::/64 comment "net web" }
add element inet berth hairpin4 { 172.18.0.0/16 . "br-web" comment "net web" }
add element inet berth hairpin6 { fd00:1::/64 . "br-web" comment "net web" }
add element inet berth gateways4 { 172.18.0.1 comment "net web" }
add element inet berth gateways6 { fd00:1:: comment "net web" }
add element inet berth own_gateway4 { "br-web" . 172.18.0.1 comment "net web" }
add element inet berth own_gateway6 { "br-web" . fd00:1:: comment "net web" }
flush set inet berth generation
add element inet berth generation { 7 }
flush set bridge berth generation
add element bridge berth generation { 7 }
"#;

#[test]
fn render_add_network_is_base_plus_its_elements() {
    let net = network("web", "br-web", &["172.18.0.5/16", "fd00:1::/64"]);
    let script = render(&plan::add_network(&net, 7));
    let (base, elements) = script.split_at(script.find("add element").unwrap());
    assert!(base.starts_with("add table inet berth"), "{base}");
    assert!(base.contains("add rule inet berth forward iifname @bridges oifname @bridges drop"));
    assert!(!base.contains("delete"), "the base never deletes: {base}");
    // The host's own packets to a gateway (embedded DNS) leave by lo with the gateway as
    // source: masqueraded, the server would see another address and ignore them.
    for v in ["ip saddr @egress4", "ip6 saddr @egress6"] {
        let egress = format!("{v} oifname != \"lo\" oifname != @bridges masquerade");
        assert!(base.contains(&egress), "{egress} in {base}");
    }
    assert_eq!(elements, NET_ELEMENTS, "host bits are cleared from subnets");
}

#[test]
fn render_internal_and_icc_off() {
    let mut net = network("sealed", "br-sealed", &["10.5.0.0/24"]);
    net.internal = true;
    net.kind = DriverState::Bridge(BridgeState {
        bridge: net.device().clone(),
        icc: false,
    });
    let mut plan = plan::add_network(&net, 7);
    plan.generation = None;
    plan.base = false;
    let ep = endpoint(&net, "a1", &["10.5.0.2/24"], Vec::new());
    plan.add.extend(plan::add_endpoint(&net, &ep).unwrap().add);
    assert_eq!(
        render(&plan),
        r#"add element inet berth bridges { "br-sealed" comment "net sealed" }
add element inet berth same_bridge { "br-sealed" . "br-sealed" comment "net sealed" }
add element inet berth internal { "br-sealed" comment "net sealed" }
add element inet berth gateways4 { 10.5.0.1 comment "net sealed" }
add element inet berth own_gateway4 { "br-sealed" . 10.5.0.1 comment "net sealed" }
add element bridge berth no_icc { "vba1" comment "ctr a1cccccccccc net sealed" }
add element bridge berth self_port { "vba1" . "vba1" comment "ctr a1cccccccccc net sealed" }
"#
    );
}

#[test]
fn render_endpoint_ports_are_map_elements_only() {
    let net = network("web", "br-web", &["172.18.0.0/16", "fd00:1::/64"]);
    let ep = endpoint(
        &net,
        "a1",
        &["172.18.0.2/16", "fd00:1::2/64"],
        vec![
            port(None, 8080, 80, Proto::Tcp),
            port(Some("127.0.0.1"), 9000, 9000, Proto::Tcp),
            port(None, 5353, 53, Proto::Udp),
            port(Some("2001:db8::1"), 8443, 443, Proto::Sctp),
        ],
    );
    let c = "comment \"ctr a1cccccccccc net web\"";
    assert_eq!(
        render(&plan::add_endpoint(&net, &ep).unwrap()),
        format!(
            "add element inet berth pub4_any {{ tcp . 8080 {c} : 172.18.0.2 . 80, udp . 5353 {c} : 172.18.0.2 . 53 }}
add element inet berth pub4_addr {{ 127.0.0.1 . tcp . 9000 {c} : 172.18.0.2 . 9000 }}
add element inet berth pub6_any {{ tcp . 8080 {c} : fd00:1::2 . 80, udp . 5353 {c} : fd00:1::2 . 53 }}
add element inet berth pub6_addr {{ 2001:db8::1 . sctp . 8443 {c} : fd00:1::2 . 443 }}
"
        )
    );
}

#[test]
fn render_removals_add_then_delete_exactly_the_keys() {
    let mut net = network("web", "br-web", &["172.18.0.0/16"]);
    net.kind = DriverState::Bridge(BridgeState {
        bridge: net.device().clone(),
        icc: false,
    });
    let ep = endpoint(
        &net,
        "a1",
        &["172.18.0.2/16"],
        vec![port(None, 8080, 80, Proto::Tcp)],
    );
    let c = "comment \"ctr a1cccccccccc net web\"";
    assert_eq!(
        render(&plan::remove_endpoint(&net, &ep)),
        format!(
            "add element inet berth pub4_any {{ tcp . 8080 {c} : 172.18.0.2 . 80 }}
delete element inet berth pub4_any {{ tcp . 8080 }}
add element bridge berth no_icc {{ \"vba1\" {c} }}
delete element bridge berth no_icc {{ \"vba1\" }}
add element bridge berth self_port {{ \"vba1\" . \"vba1\" {c} }}
delete element bridge berth self_port {{ \"vba1\" . \"vba1\" }}
"
        )
    );
    let script = render(&plan::remove_network(&net, 7));
    let removal = &script[script.find("add element").unwrap()..];
    assert_eq!(
        removal,
        r#"add element inet berth bridges { "br-web" comment "net web" }
delete element inet berth bridges { "br-web" }
add element inet berth same_bridge { "br-web" . "br-web" comment "net web" }
delete element inet berth same_bridge { "br-web" . "br-web" }
add element inet berth egress4 { 172.18.0.0/16 comment "net web" }
delete element inet berth egress4 { 172.18.0.0/16 }
add element inet berth hairpin4 { 172.18.0.0/16 . "br-web" comment "net web" }
delete element inet berth hairpin4 { 172.18.0.0/16 . "br-web" }
add element inet berth gateways4 { 172.18.0.1 comment "net web" }
delete element inet berth gateways4 { 172.18.0.1 }
add element inet berth own_gateway4 { "br-web" . 172.18.0.1 comment "net web" }
delete element inet berth own_gateway4 { "br-web" . 172.18.0.1 }
flush set inet berth generation
add element inet berth generation { 7 }
flush set bridge berth generation
add element bridge berth generation { 7 }
"#
    );
}

#[test]
fn reconcile_resets_then_rebuilds_and_keeps_the_first_claim_of_a_port() {
    let a = network("a", "br-a", &["172.18.0.0/16"]);
    let b = network("b", "br-b", &["172.19.0.0/16"]);
    let stray = network("gone", "br-gone", &["172.20.0.0/16"]);
    let eps = [
        endpoint(
            &a,
            "a1",
            &["172.18.0.2/16"],
            vec![port(None, 80, 80, Proto::Tcp)],
        ),
        endpoint(
            &b,
            "b1",
            &["172.19.0.2/16"],
            vec![port(None, 80, 8080, Proto::Tcp)],
        ),
        endpoint(
            &stray,
            "s1",
            &["172.20.0.2/16"],
            vec![port(None, 81, 80, Proto::Tcp)],
        ),
    ];
    let plan = plan::reconcile(&[a.clone(), b.clone()], &eps);
    assert!(plan.reset && plan.base);
    let script = render(&plan);
    assert!(script.starts_with("add table inet berth\ndelete table inet berth\nadd table bridge berth\ndelete table bridge berth\nadd table inet berth {"));
    let g = plan::generation(&[a.clone(), b.clone()]);
    assert_eq!(plan.generation, Some(g));
    assert!(script.contains(
        "add element inet berth pub4_any { tcp . 80 comment \"ctr a1cccccccccc net a\" : 172.18.0.2 . 80 }\n"
    ), "{script}");
    assert!(script.ends_with(&format!(
        "add element inet berth generation {{ {g} }}\nflush set bridge berth generation\nadd element bridge berth generation {{ {g} }}\n"
    )), "{script}");
    assert_eq!(
        render(&plan::reconcile(&[], &eps)),
        "add table inet berth\ndelete table inet berth\nadd table bridge berth\ndelete table bridge berth\n"
    );
}

#[test]
fn generation_depends_on_the_networks_not_their_order() {
    let a = network("a", "br-a", &["172.18.0.0/16"]);
    let b = network("b", "br-b", &["172.19.0.0/16"]);
    let g = plan::generation(&[a.clone(), b.clone()]);
    assert_eq!(g, plan::generation(&[b.clone(), a.clone()]));
    assert_ne!(g, plan::generation(std::slice::from_ref(&a)));
    assert_ne!(g, plan::generation(&[]));
    let mut sealed = b.clone();
    sealed.internal = true;
    assert_ne!(g, plan::generation(&[a, sealed]));
}

#[test]
fn backend_is_current_only_with_both_tables_stamped() {
    let fw = NftFirewall::new(RecordingRunner::new());
    assert!(!fw.is_current(42).unwrap(), "no tables: not current");
    fw.runner().set_listing(Some(
        "table inet berth {\n\tset generation {\n\t\ttype mark\n\t\telements = { 42 }\n\t}\n}\n",
    ));
    assert!(fw.is_current(42).unwrap());
    assert!(!fw.is_current(43).unwrap(), "another generation");
}

#[test]
fn backend_drops_the_tables_only_when_no_network_is_left() {
    let fw = NftFirewall::new(RecordingRunner::new());
    let net = network("web", "br-web", &["172.18.0.0/16"]);
    fw.add_network(&net, 1).unwrap();
    fw.runner().set_listing(Some(
        "table inet berth {\n\tset bridges {\n\t\ttype ifname\n\t\telements = { \"br-x\" comment \"net x\" }\n\t}\n}\n",
    ));
    fw.remove_network(&net, 2).unwrap();
    assert_eq!(fw.runner().scripts().len(), 2, "another network remains");
    fw.runner().set_listing(Some(
        "table inet berth {\n\tset bridges {\n\t\ttype ifname\n\t}\n}\n",
    ));
    fw.remove_network(&net, 2).unwrap();
    let scripts = fw.runner().scripts();
    assert_eq!(scripts.len(), 4);
    assert_eq!(
        scripts[3],
        render(&Plan {
            reset: true,
            ..Plan::default()
        })
    );
}

#[test]
fn backend_lock_file_is_created_and_operations_still_apply() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("firewall.lock");
    let fw = NftFirewall::new(RecordingRunner::new()).with_lock(&lock);
    fw.ensure_base().unwrap();
    assert!(lock.exists());
    assert_eq!(fw.runner().scripts(), [render(&plan::ensure_base())]);
    let missing =
        NftFirewall::new(RecordingRunner::new()).with_lock(&dir.path().join("no/such/dir"));
    let err = missing.ensure_base().unwrap_err();
    assert!(err.to_string().contains("cannot lock"), "{err}");
}

#[test]
fn backend_refuses_bad_endpoints_before_running_nft() {
    let fw = NftFirewall::new(RecordingRunner::new());
    let mut net = network("sealed", "br-sealed", &["10.5.0.0/24"]);
    net.internal = true;
    let ep = endpoint(
        &net,
        "a1",
        &["10.5.0.2/24"],
        vec![port(None, 80, 80, Proto::Tcp)],
    );
    assert!(fw.add_endpoint(&net, &ep).is_err());
    assert!(fw.runner().scripts().is_empty());
}
