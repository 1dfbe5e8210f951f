//! The network model in our names (shared/DESIGN.md "Network model"): networks, their IPAM
//! configuration, endpoints and published ports. `*Config` is validated user input,
//! `*State` what is persisted (JSON in the `networks.config` / `endpoints.config` columns).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::netstate::{BridgeState, DriverState, NetworkRecord};
use crate::port::Proto;

/// Errors of parsing network-model input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A network name broke Docker's rule.
    #[error("invalid network name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters")]
    Name(String),
    /// A `-p` value could not be parsed.
    #[error("invalid -p {spec:?}: {reason}; use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp], ranges as 8000-8010")]
    Publish {
        /// The value given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// An interface name is too long or has bad characters.
    #[error("invalid interface name {0:?}: use 1 to 15 bytes (IFNAMSIZ), not '.' or '..', without '/', ':', '%', whitespace or control characters")]
    IfName(String),
}

/// A network name: Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (moby `libnetwork` config),
/// at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkName(String);

impl NetworkName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetworkName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let mut chars = s.chars();
        let ok = s.len() <= 64
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ModelError::Name(s.to_string()))
        }
    }
}

impl TryFrom<String> for NetworkName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        s.parse()
    }
}

impl From<NetworkName> for String {
    fn from(n: NetworkName) -> String {
        n.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Linux interface name: 1..=15 bytes (`IFNAMSIZ` 16 with the NUL, include/uapi/linux/if.h),
/// not `.` or `..`, no `/`, `:` or whitespace (the kernel's `dev_valid_name`,
/// net/core/dev.c), no `%` (the kernel takes a name with `%d` as a template and picks
/// `x0`, `x1`, ..., a link berth would not know it made: `dev_alloc_name`), no control
/// characters (a NUL would cut the name short).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IfName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let ok = !s.is_empty()
            && s.len() <= 15
            && s != "."
            && s != ".."
            && !s.contains(|c: char| {
                matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control()
            });
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ModelError::IfName(s.to_string()))
        }
    }
}

impl TryFrom<String> for IfName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        s.parse()
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `--subnet` with its `--gateway`, `--ip-range` and `--aux-address`es, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SubnetConfig {
    /// The subnet; `None` asks IPAM to pick one from the default pools.
    pub subnet: Option<IpNet>,
    /// The gateway; `None` means the first usable address.
    pub gateway: Option<IpAddr>,
    /// Where container addresses are allocated from (inside `subnet`).
    pub ip_range: Option<IpNet>,
    /// Addresses never handed out (`--aux-address NAME=IP`).
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// A subnet as allocated: always with a subnet and a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetState {
    /// The subnet (network address and prefix), e.g. `172.18.0.0/16`.
    pub subnet: IpNet,
    /// The gateway address (the bridge's address).
    pub gateway: IpAddr,
    /// Where container addresses are allocated from.
    pub ip_range: Option<IpNet>,
    /// Reserved addresses.
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// The driver a network uses (Docker's `-d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverName {
    /// Linux bridge + veth, NAT to the outside.
    Bridge,
    /// macvlan children of a parent interface.
    Macvlan,
    /// ipvlan children of a parent interface.
    Ipvlan,
    /// VXLAN overlay.
    Overlay,
}

impl FromStr for DriverName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bridge" => Ok(Self::Bridge),
            "macvlan" => Ok(Self::Macvlan),
            "ipvlan" => Ok(Self::Ipvlan),
            "overlay" => Ok(Self::Overlay),
            _ => Err(format!(
                "unknown network driver {s:?}: use bridge, macvlan, ipvlan or overlay"
            )),
        }
    }
}

impl fmt::Display for DriverName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bridge => "bridge",
            Self::Macvlan => "macvlan",
            Self::Ipvlan => "ipvlan",
            Self::Overlay => "overlay",
        })
    }
}

/// A network as recorded (`networks.config`), after IPAM chose its subnets. Stored in the
/// shape of [`NetworkRecord`] (unchanged since berth's first macvlan networks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NetworkRecord", into = "NetworkRecord")]
pub struct NetworkState {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: NetworkName,
    /// IPv4 and (with `ipv6`) IPv6 subnets.
    pub subnets: Vec<SubnetState>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--internal`: no egress, no published ports.
    pub internal: bool,
    /// Whether the network has embedded DNS (user-defined networks; not the default `bridge`).
    pub dns: bool,
    /// MTU of the bridge and endpoints.
    pub mtu: u32,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `-o` options as given, for `inspect`.
    pub options: BTreeMap<String, String>,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The driver and its part of the network (bridge device, or parent link and mode).
    pub kind: DriverState,
}

impl NetworkState {
    /// The network's driver (Docker's `-d`).
    pub fn driver(&self) -> DriverName {
        self.kind.driver()
    }

    /// The network's device in the namespace berth runs in: its bridge, or its parent.
    pub fn device(&self) -> &IfName {
        self.kind.device()
    }

    /// Whether containers of the network may talk to each other (`enable_icc`; always true
    /// but on a bridge network created with `enable_icc=false`).
    pub fn icc(&self) -> bool {
        match &self.kind {
            DriverState::Bridge(b) => b.icc,
            _ => true,
        }
    }

    /// The bridge part of a bridge network; `None` for other drivers.
    pub fn bridge(&self) -> Option<&BridgeState> {
        match &self.kind {
            DriverState::Bridge(b) => Some(b),
            _ => None,
        }
    }
}

/// `-o macvlan_mode=` (kernel doc `Documentation/networking/macvlan.rst`); default bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// Children of one parent talk directly (Docker's default).
    #[default]
    Bridge,
    /// Children of one parent cannot talk to each other.
    Private,
    /// Children talk through the external switch (it must reflect, 802.1Qbg).
    Vepa,
    /// One child takes the parent exclusively.
    Passthru,
}

/// `-o ipvlan_mode=` (kernel doc `Documentation/networking/ipvlan.rst`); default l2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    /// Layer 2 switching on the parent.
    #[default]
    L2,
    /// Layer 3 routing; children get a device default route.
    L3,
    /// L3 through the parent namespace's netfilter hooks.
    L3s,
}

/// `-o ipvlan_flag=`; default bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanFlag {
    /// Children of one parent talk directly.
    #[default]
    Bridge,
    /// They cannot.
    Private,
    /// Through the external switch.
    Vepa,
}

/// Looks `s` up in the `(name, value)` table of `-o key=`; the error lists the names.
fn pick<T: Copy>(key: &str, s: &str, table: &[(&str, T)]) -> Result<T, String> {
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!("invalid -o {key}={s:?}: use one of {}", names.join(", "))
        })
}

impl FromStr for MacvlanMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use MacvlanMode::*;
        let t = [
            ("bridge", Bridge),
            ("private", Private),
            ("vepa", Vepa),
            ("passthru", Passthru),
        ];
        pick("macvlan_mode", s, &t)
    }
}

impl FromStr for IpvlanMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        pick(
            "ipvlan_mode",
            s,
            &[("l2", Self::L2), ("l3", Self::L3), ("l3s", Self::L3s)],
        )
    }
}

impl FromStr for IpvlanFlag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use IpvlanFlag::*;
        pick(
            "ipvlan_flag",
            s,
            &[("bridge", Bridge), ("private", Private), ("vepa", Vepa)],
        )
    }
}

/// One published port (`-p`), after the host port was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to publish on; `None` means every address.
    pub host_ip: Option<IpAddr>,
    /// Host port (never 0 once allocated).
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// An endpoint as recorded (`endpoints.config`): one container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    /// 64 hex characters.
    pub id: String,
    /// The network.
    pub network_id: String,
    /// The container.
    pub container_id: String,
    /// Interface name inside the sandbox (`eth0`, `eth1`, ...).
    pub ifname: IfName,
    /// Host-side veth name (`vb<endpoint-id prefix>`).
    pub host_ifname: IfName,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Addresses with the subnet's prefix length, e.g. `172.18.0.2/16`.
    pub addresses: Vec<IpNet>,
    /// DNS names besides the container name (`--network-alias`).
    pub aliases: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
}

/// One `-p` request before host ports are chosen: `host_port` 0 means "any free port".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishRequest {
    /// `IP:` part.
    pub host_ip: Option<IpAddr>,
    /// Host port, 0 for ephemeral.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// Parses Docker's `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` with ranges
/// (`8000-8010:80-90`, equal lengths; a host range with a single container port is refused as
/// Docker 20.10 does not support it either) and IPv6 host addresses in brackets
/// (`[::1]:8080:80`).
///
/// Errors: [`ModelError::Publish`] naming what is wrong.
pub fn parse_publish(spec: &str) -> Result<Vec<PublishRequest>, ModelError> {
    let bad = |reason: &str| ModelError::Publish {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (
            b,
            Proto::from_name(p).ok_or_else(|| bad("unknown protocol"))?,
        ),
        None => (spec, Proto::Tcp),
    };
    let (host_ip, rest) = split_host_ip(body).map_err(&bad)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [c] => ("", *c),
        [h, c] => (*h, *c),
        _ => return Err(bad("too many ':'")),
    };
    let (c_lo, c_hi) = port_range(container).map_err(&bad)?;
    let (h_lo, h_hi) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).map_err(&bad)?
    };
    let n = c_hi - c_lo;
    if h_lo != 0 && h_hi - h_lo != n {
        return Err(bad("host and container port ranges differ in length"));
    }
    Ok((0..=n)
        .map(|i| PublishRequest {
            host_ip,
            host_port: if h_lo == 0 { 0 } else { h_lo + i },
            container_port: c_lo + i,
            proto,
        })
        .collect())
}

fn split_host_ip(body: &str) -> Result<(Option<IpAddr>, &str), &'static str> {
    if let Some(rest) = body.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("unclosed '[' in the host address")?;
        let ip: IpAddr = ip.parse().map_err(|_| "bad host IPv6 address")?;
        let after = after
            .strip_prefix(':')
            .ok_or("a port must follow the host address")?;
        return Ok((Some(ip), after));
    }
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() == 3 {
        if parts[0].is_empty() {
            return Ok((None, &body[1..]));
        }
        let ip: IpAddr = parts[0].parse().map_err(|_| "bad host IP address")?;
        return Ok((Some(ip), &body[parts[0].len() + 1..]));
    }
    Ok((None, body))
}

fn port_range(s: &str) -> Result<(u16, u16), &'static str> {
    let one = |p: &str| -> Result<u16, &'static str> {
        match p.parse::<u32>() {
            Ok(0) => Err("port 0 is not a port"),
            Ok(n) if n <= 65535 => Ok(n as u16),
            Ok(_) => Err("port out of range 1-65535"),
            Err(_) => Err("port is not a number"),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err("range end is below its start");
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(Option<IpAddr>, u16, u16, Proto)> {
        parse_publish(s)
            .unwrap()
            .into_iter()
            .map(|r| (r.host_ip, r.host_port, r.container_port, r.proto))
            .collect()
    }

    #[test]
    fn publish_forms() {
        assert_eq!(p("80"), vec![(None, 0, 80, Proto::Tcp)]);
        assert_eq!(p("8080:80"), vec![(None, 8080, 80, Proto::Tcp)]);
        assert_eq!(p("53:53/udp"), vec![(None, 53, 53, Proto::Udp)]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            p("127.0.0.1:8080:80"),
            vec![(Some(lo), 8080, 80, Proto::Tcp)]
        );
        assert_eq!(p("127.0.0.1::80"), vec![(Some(lo), 0, 80, Proto::Tcp)]);
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(p("[::1]:8080:80"), vec![(Some(v6), 8080, 80, Proto::Tcp)]);
        assert_eq!(p("8000-8002:80-82").len(), 3);
        assert_eq!(p("8000-8002:80-82")[2], (None, 8002, 82, Proto::Tcp));
        assert_eq!(p("80-81").len(), 2);
    }

    #[test]
    fn publish_errors() {
        for bad in [
            "",
            "0",
            "70000",
            "80/xyz",
            "a:80",
            "8000-8001:80",
            "90-80",
            "1.2.3:80:80",
            "[::1:80:80",
            "1:2:3:4",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad:?} should be refused");
        }
        let e = parse_publish("80/xyz").unwrap_err().to_string();
        assert!(e.contains("protocol"), "{e}");
    }

    #[test]
    fn names() {
        assert!("my-net_1.x".parse::<NetworkName>().is_ok());
        assert!("a".parse::<NetworkName>().is_ok());
        assert!("-x".parse::<NetworkName>().is_err());
        assert!("a b".parse::<NetworkName>().is_err());
        assert!("br-0123456789ab".parse::<IfName>().is_ok());
        assert!("this-is-too-long0".parse::<IfName>().is_err());
        for bad in [
            "x%d", "%", "a/b", "a:1", "a b", "a\tb", "a\0b", "a\u{7f}", ".", "..", "",
        ] {
            let e = bad.parse::<IfName>().unwrap_err().to_string();
            assert!(e.contains("without '/', ':', '%'"), "{bad:?}: {e}");
        }
        assert!("br-x.y_z-1".parse::<IfName>().is_ok());
    }
}
