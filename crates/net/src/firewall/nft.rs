//! The nftables rendering of a [`Plan`]: berth's fixed tables, sets, maps and rules, and the
//! `add element`/`delete element` lines of each policy element, as one script for `nft -f -`
//! (a script is one atomic transaction: nft(8), "nft -f"). Pure text; no kernel access.
//!
//! Syntax facts (nft(8), nftables 1.0.6): map element comments go between key and `:`;
//! `dnat ip to KEY map @m` with `ipv4_addr . inet_service` data sets address and port;
//! `th dport` reads the transport header's destination port for tcp, udp and sctp alike;
//! `add chain` + `flush chain` + `add rule` makes base creation idempotent, and
//! `add element` + `delete element` makes removal idempotent (nftables 1.0.6 has no `destroy`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::plan::{short, Element, Family, Listen, Plan, Publish};

/// The `inet` table holding everything but the icc block.
pub const INET_TABLE: &str = "inet berth";
/// The `bridge` table holding the icc block.
pub const BRIDGE_TABLE: &str = "bridge berth";

/// A named set or map of berth's, in the order they are declared and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetName {
    /// `ifname`: every berth bridge.
    Bridges,
    /// `ifname . ifname`: each bridge paired with itself.
    SameBridge,
    /// `ifname`: bridges of internal networks.
    Internal,
    /// `ipv4_addr` intervals: subnets whose egress is masqueraded.
    Egress4,
    /// `ipv6_addr` intervals: subnets whose egress is masqueraded.
    Egress6,
    /// `ipv4_addr . ifname` intervals: a subnet and its bridge (hairpin masquerade).
    Hairpin4,
    /// `ipv6_addr . ifname` intervals: a subnet and its bridge (hairpin masquerade).
    Hairpin6,
    /// `ipv4_addr`: gateway addresses of berth networks (the embedded DNS listens there).
    Gateways4,
    /// `ipv6_addr`: gateway addresses of berth networks.
    Gateways6,
    /// `ifname . ipv4_addr`: each bridge with its own gateways (DNS for its containers only).
    OwnGateway4,
    /// `ifname . ipv6_addr`: each bridge with its own gateways.
    OwnGateway6,
    /// `inet_proto . inet_service : ipv4_addr . inet_service`.
    Pub4Any,
    /// `ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service`.
    Pub4Addr,
    /// `inet_proto . inet_service : ipv6_addr . inet_service`.
    Pub6Any,
    /// `ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service`.
    Pub6Addr,
    /// `ifname` (bridge table): host-side veths of endpoints with icc off.
    NoIcc,
    /// `ifname . ifname` (bridge table): each icc-off veth paired with itself (hairpin frames
    /// that `br_netfilter` reflects back to the port they came from still pass).
    SelfPort,
}

impl SetName {
    /// `TABLE NAME`, as `add element` wants it.
    pub fn path(self) -> &'static str {
        match self {
            SetName::Bridges => "inet berth bridges",
            SetName::SameBridge => "inet berth same_bridge",
            SetName::Internal => "inet berth internal",
            SetName::Egress4 => "inet berth egress4",
            SetName::Egress6 => "inet berth egress6",
            SetName::Hairpin4 => "inet berth hairpin4",
            SetName::Hairpin6 => "inet berth hairpin6",
            SetName::Gateways4 => "inet berth gateways4",
            SetName::Gateways6 => "inet berth gateways6",
            SetName::OwnGateway4 => "inet berth own_gateway4",
            SetName::OwnGateway6 => "inet berth own_gateway6",
            SetName::Pub4Any => "inet berth pub4_any",
            SetName::Pub4Addr => "inet berth pub4_addr",
            SetName::Pub6Any => "inet berth pub6_any",
            SetName::Pub6Addr => "inet berth pub6_addr",
            SetName::NoIcc => "bridge berth no_icc",
            SetName::SelfPort => "bridge berth self_port",
        }
    }
}

/// The base: tables, sets, maps, chains and fixed rules. Every line is idempotent (`add` of
/// an existing table/set/chain is a no-op; base chains are flushed before their rules are
/// added), so it can start any transaction without touching elements.
const BASE: &str = r#"add table inet berth { comment "berth: container networks (managed, do not edit)"; }
add set inet berth generation { type mark; comment "digest of the networks these rules cover (berth checks it before each change)"; }
add set inet berth bridges { type ifname; comment "bridges of berth networks"; }
add set inet berth same_bridge { type ifname . ifname; comment "each berth bridge paired with itself"; }
add set inet berth internal { type ifname; comment "bridges of internal networks"; }
add set inet berth egress4 { type ipv4_addr; flags interval; comment "subnets masqueraded on egress"; }
add set inet berth egress6 { type ipv6_addr; flags interval; comment "subnets masqueraded on egress"; }
add set inet berth hairpin4 { type ipv4_addr . ifname; flags interval; comment "subnet . its bridge: hairpin masquerade"; }
add set inet berth hairpin6 { type ipv6_addr . ifname; flags interval; comment "subnet . its bridge: hairpin masquerade"; }
add set inet berth gateways4 { type ipv4_addr; comment "gateways of berth networks (embedded DNS)"; }
add set inet berth gateways6 { type ipv6_addr; comment "gateways of berth networks (embedded DNS)"; }
add set inet berth own_gateway4 { type ifname . ipv4_addr; comment "bridge . its own gateway: DNS for its containers only"; }
add set inet berth own_gateway6 { type ifname . ipv6_addr; comment "bridge . its own gateway: DNS for its containers only"; }
add set inet berth routed { type ifname; comment "bridges open to direct routing from outside (reserved: gateway_mode_ipv4=routed)"; }
add set inet berth trusted { type ifname . ifname; comment "host interface . bridge open to direct routing (reserved: trusted_host_interfaces)"; }
add map inet berth pub4_any { type inet_proto . inet_service : ipv4_addr . inet_service; comment "ports published on every local address"; }
add map inet berth pub4_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; comment "ports published on one host address"; }
add map inet berth pub6_any { type inet_proto . inet_service : ipv6_addr . inet_service; comment "ports published on every local address"; }
add map inet berth pub6_addr { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; comment "ports published on one host address"; }
add chain inet berth guard { type filter hook prerouting priority raw; policy accept; }
flush chain inet berth guard
add rule inet berth guard iifname != "lo" ip daddr 127.0.0.0/8 drop comment "loopback destinations only from lo: route_localnet must not open the host's loopback (CVE-2020-8558)"
add rule inet berth guard iifname != "lo" ip6 daddr ::1 drop comment "loopback destinations only from lo"
add chain inet berth input { type filter hook input priority filter; policy accept; }
flush chain inet berth input
add rule inet berth input meta l4proto { tcp, udp } th dport 53 ip daddr @gateways4 iifname != "lo" iifname . ip daddr != @own_gateway4 drop comment "embedded DNS: only the network's own containers (and the host)"
add rule inet berth input meta l4proto { tcp, udp } th dport 53 ip6 daddr @gateways6 iifname != "lo" iifname . ip6 daddr != @own_gateway6 drop comment "embedded DNS: only the network's own containers (and the host)"
add chain inet berth forward { type filter hook forward priority filter; policy accept; }
flush chain inet berth forward
add rule inet berth forward iifname . oifname @same_bridge accept comment "routed within one network"
add rule inet berth forward iifname @internal drop comment "internal networks: no egress"
add rule inet berth forward oifname @internal drop comment "internal networks: no ingress"
add rule inet berth forward ct status dnat accept comment "published ports pass isolation"
add rule inet berth forward iifname @bridges oifname @bridges drop comment "isolation between networks"
add rule inet berth forward oifname @bridges ct state established,related accept comment "replies to the containers' own connections"
add rule inet berth forward oifname @routed accept comment "networks open to direct routing"
add rule inet berth forward iifname . oifname @trusted accept comment "trusted host interfaces"
add rule inet berth forward oifname @bridges drop comment "no direct routing from outside to unpublished ports"
add chain inet berth publish
flush chain inet berth publish
add rule inet berth publish meta nfproto ipv4 meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr comment "published on one host address"
add rule inet berth publish meta nfproto ipv4 meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to meta l4proto . th dport map @pub4_any comment "published on every local address"
add rule inet berth publish meta nfproto ipv6 meta l4proto { tcp, udp, sctp } dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6_addr comment "published on one host address"
add rule inet berth publish meta nfproto ipv6 meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip6 to meta l4proto . th dport map @pub6_any comment "published on every local address"
add chain inet berth prerouting { type nat hook prerouting priority dstnat; policy accept; }
flush chain inet berth prerouting
add rule inet berth prerouting ip daddr 127.0.0.0/8 return comment "loopback publishes are for the host only (CVE-2020-8558)"
add rule inet berth prerouting ip6 daddr ::1 return comment "loopback publishes are for the host only"
add rule inet berth prerouting jump publish comment "other hosts, containers, hairpin"
add chain inet berth output { type nat hook output priority -100; policy accept; }
flush chain inet berth output
add rule inet berth output jump publish comment "the host itself"
add chain inet berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet berth postrouting
add rule inet berth postrouting ct status dnat ip saddr 127.0.0.0/8 masquerade comment "published ports: clients on the host's loopback"
add rule inet berth postrouting ct status dnat ip saddr . oifname @hairpin4 masquerade comment "published ports: hairpin"
add rule inet berth postrouting ct status dnat ip6 saddr . oifname @hairpin6 masquerade comment "published ports: hairpin"
add rule inet berth postrouting ip saddr @egress4 oifname != "lo" oifname != @bridges masquerade comment "egress (not the host's own packets to a gateway, which leave by lo)"
add rule inet berth postrouting ip6 saddr @egress6 oifname != "lo" oifname != @bridges masquerade comment "egress (not the host's own packets to a gateway, which leave by lo)"
add table bridge berth { comment "berth: container networks (managed, do not edit)"; }
add set bridge berth generation { type mark; comment "digest of the networks these rules cover (berth checks it before each change)"; }
add set bridge berth no_icc { type ifname; comment "host-side veths of endpoints on networks with icc off"; }
add set bridge berth self_port { type ifname . ifname; comment "icc-off veths paired with themselves: hairpin passes"; }
add chain bridge berth forward { type filter hook forward priority filter; policy accept; }
flush chain bridge berth forward
add rule bridge berth forward iifname . oifname @self_port accept comment "hairpin back to the same port"
add rule bridge berth forward iifname @no_icc drop comment "icc off: no traffic between containers of one network"
"#;

/// Deletes both tables whether or not they exist (`add` first makes `delete` never fail).
const RESET: &str = "add table inet berth
delete table inet berth
add table bridge berth
delete table bridge berth
";

/// One element as nft text: the key, an optional map value, the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    key: String,
    value: Option<String>,
    comment: String,
}

impl Item {
    fn with_comment(&self) -> String {
        let mut s = format!("{} comment \"{}\"", self.key, self.comment);
        if let Some(v) = &self.value {
            let _ = write!(s, " : {v}");
        }
        s
    }
}

/// Renders `plan` as one nft script: reset, base, removals (`add` then `delete` per set), then
/// additions (one `add element` line per set, in [`SetName`] order).
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.reset {
        out.push_str(RESET);
    }
    if plan.base {
        out.push_str(BASE);
    }
    for (set, items) in group(&plan.remove) {
        let all: Vec<String> = items.iter().map(Item::with_comment).collect();
        let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        let _ = writeln!(out, "add element {} {{ {} }}", set.path(), all.join(", "));
        let _ = writeln!(
            out,
            "delete element {} {{ {} }}",
            set.path(),
            keys.join(", ")
        );
    }
    for (set, items) in group(&plan.add) {
        let all: Vec<String> = items.iter().map(Item::with_comment).collect();
        let _ = writeln!(out, "add element {} {{ {} }}", set.path(), all.join(", "));
    }
    if let Some(g) = plan.generation {
        for table in [INET_TABLE, BRIDGE_TABLE] {
            let _ = writeln!(out, "flush set {table} generation");
            let _ = writeln!(out, "add element {table} generation {{ {g} }}");
        }
    }
    out
}

/// Elements as nft items grouped by set, sets in declaration order, items in plan order.
fn group(elements: &[Element]) -> BTreeMap<SetName, Vec<Item>> {
    let mut sets: BTreeMap<SetName, Vec<Item>> = BTreeMap::new();
    for el in elements {
        for (set, item) in items(el) {
            sets.entry(set).or_default().push(item);
        }
    }
    sets
}

/// The set entries one element stands for.
fn items(el: &Element) -> Vec<(SetName, Item)> {
    let plain = |key: String, comment: String| Item {
        key,
        value: None,
        comment,
    };
    match el {
        Element::Bridge { network, bridge } => vec![
            (
                SetName::Bridges,
                plain(quoted(bridge.as_str()), net_comment(network.as_str())),
            ),
            (
                SetName::SameBridge,
                plain(
                    format!("{0} . {0}", quoted(bridge.as_str())),
                    net_comment(network.as_str()),
                ),
            ),
        ],
        Element::Internal { network, bridge } => vec![(
            SetName::Internal,
            plain(quoted(bridge.as_str()), net_comment(network.as_str())),
        )],
        Element::Masquerade {
            network,
            bridge,
            subnet,
        } => {
            let (egress, hairpin) = match subnet {
                ipnet::IpNet::V4(_) => (SetName::Egress4, SetName::Hairpin4),
                ipnet::IpNet::V6(_) => (SetName::Egress6, SetName::Hairpin6),
            };
            let comment = net_comment(network.as_str());
            vec![
                (egress, plain(subnet.to_string(), comment.clone())),
                (
                    hairpin,
                    plain(format!("{subnet} . {}", quoted(bridge.as_str())), comment),
                ),
            ]
        }
        Element::Gateway {
            network,
            bridge,
            gateway,
        } => {
            let (all, own) = match gateway {
                IpAddr::V4(_) => (SetName::Gateways4, SetName::OwnGateway4),
                IpAddr::V6(_) => (SetName::Gateways6, SetName::OwnGateway6),
            };
            let comment = net_comment(network.as_str());
            vec![
                (all, plain(gateway.to_string(), comment.clone())),
                (
                    own,
                    plain(format!("{} . {gateway}", quoted(bridge.as_str())), comment),
                ),
            ]
        }
        Element::NoIcc {
            network,
            container,
            port,
        } => {
            let comment = ctr_comment(container, network.as_str());
            let port = quoted(port.as_str());
            vec![
                (SetName::NoIcc, plain(port.clone(), comment.clone())),
                (
                    SetName::SelfPort,
                    plain(format!("{port} . {port}"), comment),
                ),
            ]
        }
        Element::Publish(p) => vec![publish_item(p)],
    }
}

fn publish_item(p: &Publish) -> (SetName, Item) {
    let svc = format!("{} . {}", p.proto.as_str(), p.host_port);
    let (set, key) = match (p.family(), p.listen) {
        (Family::V4, Listen::Any(_)) => (SetName::Pub4Any, svc),
        (Family::V6, Listen::Any(_)) => (SetName::Pub6Any, svc),
        (Family::V4, Listen::Addr(a)) => (SetName::Pub4Addr, format!("{a} . {svc}")),
        (Family::V6, Listen::Addr(a)) => (SetName::Pub6Addr, format!("{a} . {svc}")),
    };
    let target: IpAddr = p.target;
    let item = Item {
        key,
        value: Some(format!("{target} . {}", p.container_port)),
        comment: ctr_comment(&p.container, p.network.as_str()),
    };
    (set, item)
}

/// An interface name as an nft string literal (IfName excludes quotes and whitespace).
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

fn net_comment(network: &str) -> String {
    format!("net {network}")
}

/// `ctr <id12> net <name>`; the id is filtered to characters safe in an nft string.
fn ctr_comment(container: &str, network: &str) -> String {
    let id: String = short(container)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("ctr {id} net {network}")
}
