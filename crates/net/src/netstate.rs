//! Per-driver network state (issue 12 item 1): what each driver keeps about a network, one
//! variant per driver ([`DriverState`]), and the stored JSON shape ([`NetworkRecord`]) that
//! records have had since macvlan/ipvlan networks existed, so rows written by earlier berth
//! versions load unchanged and rows written now load in them.
//!
//! The stored shape keeps `bridge` (the bridge device, or the parent of a macvlan/ipvlan
//! network), `icc` and an optional `underlay` object side by side; [`NetworkState`] holds
//! instead one [`DriverState`], converted at the serde edge (`try_from`/`into`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    DriverName, IfName, IpvlanFlag, IpvlanMode, MacvlanMode, NetworkName, NetworkState, SubnetState,
};

/// The driver-specific part of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverState {
    /// A Linux bridge (Docker's `bridge`).
    Bridge(BridgeState),
    /// macvlan children of a parent link.
    Macvlan {
        /// The parent and the host shim.
        link: ParentLink,
        /// `-o macvlan_mode=`.
        mode: MacvlanMode,
    },
    /// ipvlan children of a parent link.
    Ipvlan {
        /// The parent and the host shim.
        link: ParentLink,
        /// `-o ipvlan_mode=`.
        mode: IpvlanMode,
        /// `-o ipvlan_flag=`.
        flag: IpvlanFlag,
    },
}

/// The bridge driver's part of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeState {
    /// The bridge device (`berth0` for the default network, `br-<id12>` otherwise).
    pub bridge: IfName,
    /// `com.docker.network.bridge.enable_icc` (default true).
    pub icc: bool,
}

/// The parent link of a macvlan or ipvlan network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent interface in the namespace berth runs in (`-o parent=`), e.g. `eth0`,
    /// `eth0.10`, or berth's dummy for a network without a parent.
    pub parent: IfName,
    /// berth created the parent (an 802.1q sub-interface or a dummy): it is deleted with the
    /// last network on it. An existing parent is never touched.
    pub parent_created: bool,
    /// The host-side shim of `-o host_access=true`.
    pub shim: Option<HostShim>,
}

/// The child link kind of a macvlan/ipvlan network and its mode: what the kernel is asked
/// for when a child is created (and what decides whether two networks can share a parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildMode {
    /// macvlan children (own MAC each).
    Macvlan(MacvlanMode),
    /// ipvlan children (the parent's MAC), with mode and flag.
    Ipvlan(IpvlanMode, IpvlanFlag),
}

/// The host-side macvlan shim (`-o host_access=true`): how the host reaches its own
/// containers, which the kernel never passes between a parent and its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostShim {
    /// The shim link in the namespace berth runs in (`mh` + 11 hex of the network id).
    pub ifname: IfName,
    /// Its addresses (one per subnet, host prefix), recorded as the aux address `host`.
    pub addresses: Vec<std::net::IpAddr>,
}

impl DriverState {
    /// The state of a macvlan or ipvlan network with child mode `mode`.
    pub fn child(link: ParentLink, mode: ChildMode) -> Self {
        match mode {
            ChildMode::Macvlan(mode) => Self::Macvlan { link, mode },
            ChildMode::Ipvlan(mode, flag) => Self::Ipvlan { link, mode, flag },
        }
    }

    /// The driver this state belongs to (ipvlan is [`DriverName::Ipvlan`]).
    pub fn driver(&self) -> DriverName {
        match self {
            Self::Bridge(_) => DriverName::Bridge,
            Self::Macvlan { .. } => DriverName::Macvlan,
            Self::Ipvlan { .. } => DriverName::Ipvlan,
        }
    }

    /// The parent link and child mode of a macvlan/ipvlan network; `None` for a bridge.
    pub fn parent_link(&self) -> Option<(&ParentLink, ChildMode)> {
        match self {
            Self::Bridge(_) => None,
            Self::Macvlan { link, mode } => Some((link, ChildMode::Macvlan(*mode))),
            Self::Ipvlan { link, mode, flag } => Some((link, ChildMode::Ipvlan(*mode, *flag))),
        }
    }

    /// The network's device in the namespace berth runs in: the bridge, or the parent.
    pub fn device(&self) -> &IfName {
        match self {
            Self::Bridge(b) => &b.bridge,
            Self::Macvlan { link, .. } | Self::Ipvlan { link, .. } => &link.parent,
        }
    }
}

/// Errors of loading a stored network record.
#[derive(Debug, thiserror::Error)]
pub enum NetStateError {
    /// The record's driver and its driver-specific part disagree.
    #[error("network {network} is recorded as {driver} but {what}: remove and recreate it")]
    Inconsistent {
        /// The network name.
        network: String,
        /// The recorded driver.
        driver: DriverName,
        /// What does not fit.
        what: &'static str,
    },
}

/// The JSON of a network as stored in `networks.config` (berth 0.x, unchanged since
/// macvlan/ipvlan networks came): the shape [`NetworkState`] is read from and written as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    id: String,
    name: NetworkName,
    driver: DriverName,
    subnets: Vec<SubnetState>,
    ipv6: bool,
    internal: bool,
    icc: bool,
    dns: bool,
    mtu: u32,
    /// The bridge, or the parent of a macvlan/ipvlan network.
    bridge: IfName,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    underlay: Option<ChildRecord>,
}

/// The stored `underlay` object of a macvlan/ipvlan network.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildRecord {
    parent: IfName,
    parent_created: bool,
    mode: ChildMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shim: Option<HostShim>,
}

impl TryFrom<NetworkRecord> for NetworkState {
    type Error = NetStateError;
    fn try_from(r: NetworkRecord) -> Result<Self, NetStateError> {
        let bad = |what| NetStateError::Inconsistent {
            network: r.name.to_string(),
            driver: r.driver,
            what,
        };
        let kind = match (r.driver, &r.underlay) {
            (DriverName::Bridge, None) => DriverState::Bridge(BridgeState {
                bridge: r.bridge.clone(),
                icc: r.icc,
            }),
            (DriverName::Macvlan | DriverName::Ipvlan, Some(u)) => {
                let kind = DriverState::child(
                    ParentLink {
                        parent: u.parent.clone(),
                        parent_created: u.parent_created,
                        shim: u.shim.clone(),
                    },
                    u.mode,
                );
                if kind.driver() != r.driver {
                    return Err(bad("its child links are of the other kind"));
                }
                kind
            }
            (DriverName::Macvlan | DriverName::Ipvlan, None) => return Err(bad("has no parent")),
            _ => return Err(bad("has state of another driver")),
        };
        Ok(NetworkState {
            id: r.id,
            name: r.name,
            subnets: r.subnets,
            ipv6: r.ipv6,
            internal: r.internal,
            dns: r.dns,
            mtu: r.mtu,
            labels: r.labels,
            options: r.options,
            created: r.created,
            kind,
        })
    }
}

impl From<NetworkState> for NetworkRecord {
    fn from(n: NetworkState) -> Self {
        let driver = n.driver();
        let bridge = n.kind.device().clone();
        let (icc, underlay) = match n.kind {
            DriverState::Bridge(b) => (b.icc, None),
            other => {
                let (link, mode) = other.parent_link().expect("not a bridge");
                let u = ChildRecord {
                    parent: link.parent.clone(),
                    parent_created: link.parent_created,
                    mode,
                    shim: link.shim.clone(),
                };
                (true, Some(u))
            }
        };
        Self {
            id: n.id,
            name: n.name,
            driver,
            subnets: n.subnets,
            ipv6: n.ipv6,
            internal: n.internal,
            icc,
            dns: n.dns,
            mtu: n.mtu,
            bridge,
            labels: n.labels,
            options: n.options,
            created: n.created,
            underlay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written by main's binary before this change (bridge with icc=false, macvlan with a
    /// shim) and an ipvlan row of the same shape.
    const OLD_ROWS: &str = include_str!("../tests/fixtures/old_networks.jsonl");

    #[test]
    fn old_rows_load_into_the_typed_state_and_are_written_back_the_same() {
        let loaded: Vec<NetworkState> = OLD_ROWS
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            loaded[0].kind,
            DriverState::Bridge(BridgeState {
                bridge: "br-317a654e412e".parse().unwrap(),
                icc: false
            })
        );
        let (link, mode) = loaded[1].kind.parent_link().unwrap();
        assert_eq!(link.parent.as_str(), "p0");
        assert_eq!(mode, ChildMode::Macvlan(MacvlanMode::Bridge));
        assert_eq!(link.shim.as_ref().unwrap().ifname.as_str(), "mh8554b6f0f77");
        assert_eq!(loaded[2].driver(), DriverName::Ipvlan);
        assert_eq!(
            loaded[2].kind.parent_link().unwrap().1,
            ChildMode::Ipvlan(IpvlanMode::L3, IpvlanFlag::Bridge)
        );
        for (n, line) in loaded.iter().zip(OLD_ROWS.lines()) {
            let again: serde_json::Value = serde_json::to_value(n).unwrap();
            let old: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(again, old, "{}", n.name);
        }
    }

    #[test]
    fn a_record_whose_driver_and_state_disagree_is_refused() {
        let row = OLD_ROWS
            .lines()
            .nth(1)
            .unwrap()
            .replace("\"macvlan\",", "\"ipvlan\",");
        let e = serde_json::from_str::<NetworkState>(&row).unwrap_err();
        assert!(e.to_string().contains("other kind"), "{e}");
    }
}
