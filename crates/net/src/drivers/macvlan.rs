//! The macvlan and ipvlan drivers (Docker's `macvlan` and `ipvlan`, issue 4): containers sit directly
//! on the host's network through a parent interface. Each endpoint is a child link of the
//! parent, born inside the sandbox (no namespace move) as `eth0`, `eth1` ... with its address
//! from IPAM and a default route via the network's gateway (an external router), or, in ipvlan
//! l3/l3s modes, a device default route (the kernel routes; there is no ARP on those children).
//!
//! Network-level kernel objects live in the namespace berth runs in: an 802.1q parent
//! (`-o parent=eth0.10`) or a dummy parent (no parent, Docker's internal network) created when
//! missing, and the host-side shim of `-o host_access=true`. There is no bridge, no NAT, no
//! published port and no firewall rule: the container's own address is reachable directly.
//!
//! Sources: kernel docs `Documentation/networking/macvlan.rst` and `ipvlan.rst` (modes, and the
//! parent never passing traffic to its own children), moby `libnetwork/drivers/macvlan` and
//! `ipvlan` (option names, defaults, `parent.VLAN` sub-interfaces, dummy parent).

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_sys::link::{self, Link, LinkError, MacAddr};
use berth_sys::netns::NetNsError;
use berth_sys::route::RouteError;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::driver::Driver;
use crate::kernel::{in_netns, ChildKind, ChildSpec, Netlink, SandboxNs};
use crate::model::{
    DriverName, EndpointState, IfName, IpvlanFlag, IpvlanMode, MacvlanMode, NetworkState,
};
use crate::netstate::{ChildMode, HostShim, ParentLink};

/// `-o` keys of the macvlan/ipvlan drivers (Docker's names; `host_access` is berth's).
pub const OPT_PARENT: &str = "parent";
/// `-o macvlan_mode=bridge|private|vepa|passthru`.
pub const OPT_MACVLAN_MODE: &str = "macvlan_mode";
/// `-o ipvlan_mode=l2|l3|l3s`.
pub const OPT_IPVLAN_MODE: &str = "ipvlan_mode";
/// `-o ipvlan_flag=bridge|private|vepa`.
pub const OPT_IPVLAN_FLAG: &str = "ipvlan_flag";
/// `-o host_access=true`: a host-side shim so the host reaches its own containers.
pub const OPT_HOST_ACCESS: &str = "host_access";
/// `-o com.docker.network.driver.mtu=N`.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// The aux address name the shim's address is recorded (or given) under.
pub const SHIM_AUX: &str = "host";

/// Errors of the macvlan/ipvlan drivers; each names the network, parent or endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MacvlanError {
    /// A `-o` option is unknown or has a bad value.
    #[error("{driver} network {network}: {reason}")]
    Option {
        /// The driver.
        driver: DriverName,
        /// The network name.
        network: String,
        /// What is wrong and what to use.
        reason: String,
    },
    /// The parent interface does not exist.
    #[error("parent interface {parent} does not exist in this network namespace: check the name with `ip link` (a parent NAME.VLAN is created only when NAME exists)")]
    ParentMissing {
        /// The parent.
        parent: String,
    },
    /// The parent is the loopback interface.
    #[error("parent interface {parent} is the loopback interface: macvlan and ipvlan children need an Ethernet parent (the kernel refuses loopback with EINVAL); use the host's NIC (e.g. -o parent=eth0), or a bridge network for containers that only talk to each other")]
    ParentLoopback {
        /// The parent.
        parent: String,
    },
    /// The parent is administratively down.
    #[error("parent interface {parent} is down: bring it up first (`ip link set {parent} up`)")]
    ParentDown {
        /// The parent.
        parent: String,
    },
    /// The parent is a port of a bridge or bond.
    #[error("parent interface {parent} is enslaved to {master} ({kind}): the kernel gives a port's traffic to its master, so it cannot carry macvlan/ipvlan children; use {master} or another interface as parent")]
    ParentEnslaved {
        /// The parent.
        parent: String,
        /// Its master.
        master: String,
        /// The master's kind (`bridge`, `bond`).
        kind: String,
    },
    /// Another network uses the parent in a way this one cannot share.
    #[error(
        "parent interface {parent} is already used by {other_driver} network {other}: {reason}"
    )]
    ParentShared {
        /// The parent.
        parent: String,
        /// The other network.
        other: String,
        /// Its driver.
        other_driver: DriverName,
        /// Why they cannot share it.
        reason: &'static str,
    },
    /// Kernel plumbing in the namespace berth runs in failed.
    #[error("{network}: {error}")]
    Host {
        /// The network name.
        network: String,
        /// The link failure (errno kept; names a missing kernel feature). Part of the message,
        /// not a `source()`, so `{:#}` chains do not repeat it.
        error: LinkError,
    },
    /// A host-side route of the shim failed.
    #[error("{network}: host access route: {error}")]
    HostRoute {
        /// The network name.
        network: String,
        /// The route failure.
        error: RouteError,
    },
    /// The endpoint's MAC is not a MAC address.
    #[error("endpoint {ifname}: {error}")]
    Mac {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The parse failure.
        error: LinkError,
    },
    /// The sandbox's namespace pin could not be opened.
    #[error("cannot open sandbox netns {netns}: {error}; is the container's sandbox still there?")]
    OpenNetns {
        /// The pin path.
        netns: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The sandbox's namespace could not be entered.
    #[error("cannot use sandbox netns {netns}: {error}; is the container's sandbox still there?")]
    Netns {
        /// The pin path.
        netns: PathBuf,
        /// The failure.
        error: NetNsError,
    },
    /// Configuring the child inside the sandbox failed.
    #[error("endpoint {ifname} in sandbox {netns}: {error}")]
    SandboxLink {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The pin path.
        netns: PathBuf,
        /// The link failure, boxed to keep the error small.
        error: Box<LinkError>,
    },
    /// Adding a default route inside the sandbox failed.
    #[error("endpoint {ifname} in sandbox {netns}: {error}; a sandbox can have one default route per address family")]
    SandboxRoute {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The pin path.
        netns: PathBuf,
        /// The route failure, boxed.
        error: Box<RouteError>,
    },
    /// A step failed and so did its undo.
    #[error("{error}; undoing it failed too: {undo}")]
    Undo {
        /// The step's failure.
        error: Box<MacvlanError>,
        /// The undo's failure.
        undo: Box<MacvlanError>,
    },
    /// The state of a macvlan/ipvlan network lacks its parent (a bug).
    #[error("network {network} is recorded as {driver} but has no parent: remove and recreate it")]
    NoParent {
        /// The network name.
        network: String,
        /// Its driver.
        driver: DriverName,
    },
}

impl MacvlanError {
    /// The errno behind this error, if any (`EOPNOTSUPP` for a missing kernel feature, `EBUSY`...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Host { error: source, .. } | Self::Mac { error: source, .. } => source.errno(),
            Self::SandboxLink { error: source, .. } => source.errno(),
            Self::HostRoute { error: source, .. } => source.errno(),
            Self::SandboxRoute { error: source, .. } => source.errno(),
            Self::OpenNetns { error: source, .. } => source.raw_os_error(),
            Self::Undo { error, .. } => error.errno(),
            _ => None,
        }
    }
}

/// Validated macvlan/ipvlan `-o` options of `network create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvlanOptions {
    /// `-o parent=`; `None` asks for an internal network on a dummy parent.
    pub parent: Option<IfName>,
    /// Child kind and mode (defaults: macvlan bridge, ipvlan l2 bridge).
    pub mode: ChildMode,
    /// `-o host_access=true`.
    pub host_access: bool,
    /// `-o com.docker.network.driver.mtu=`.
    pub mtu: Option<u32>,
}

impl MacvlanOptions {
    /// Parses the `-o` options of a `driver` (macvlan or ipvlan) network named `network`.
    ///
    /// Errors: [`MacvlanError::Option`] for unknown keys, keys of the other driver, bad
    /// values, and host_access with a mode in which the shim cannot reach the children.
    pub fn parse(
        driver: DriverName,
        network: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, MacvlanError> {
        let bad = |reason: String| MacvlanError::Option {
            driver,
            network: network.to_string(),
            reason,
        };
        let mut o = Self {
            parent: None,
            mode: match driver {
                DriverName::Ipvlan => ChildMode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge),
                _ => ChildMode::Macvlan(MacvlanMode::Bridge),
            },
            host_access: false,
            mtu: None,
        };
        for (k, v) in options {
            match (k.as_str(), &mut o.mode) {
                (OPT_PARENT, _) => {
                    o.parent = Some(v.parse().map_err(|e| bad(format!("-o {k}={v}: {e}")))?)
                }
                (OPT_MACVLAN_MODE, ChildMode::Macvlan(m)) => *m = v.parse().map_err(bad)?,
                (OPT_IPVLAN_MODE, ChildMode::Ipvlan(m, _)) => *m = v.parse().map_err(bad)?,
                (OPT_IPVLAN_FLAG, ChildMode::Ipvlan(_, f)) => *f = v.parse().map_err(bad)?,
                (OPT_HOST_ACCESS, _) => {
                    o.host_access = v
                        .parse()
                        .map_err(|_| bad(format!("-o {k}={v}: use true or false")))?
                }
                (OPT_MTU, _) => match v.parse::<u32>() {
                    Ok(m) if (68..=65535).contains(&m) => o.mtu = Some(m),
                    _ => return Err(bad(format!("-o {k}={v}: use a number from 68 to 65535"))),
                },
                _ => return Err(bad(unknown_key(driver, k))),
            }
        }
        let shim_blocked = match o.mode {
            ChildMode::Macvlan(MacvlanMode::Bridge) => None,
            ChildMode::Ipvlan(_, IpvlanFlag::Bridge) => None,
            ChildMode::Macvlan(MacvlanMode::Passthru) => {
                Some("passthru takes the parent for one child only")
            }
            _ => Some("children in private or vepa mode cannot talk to a shim on the same parent"),
        };
        if let (true, Some(why)) = (o.host_access, shim_blocked) {
            return Err(bad(format!(
                "-o host_access=true needs bridge mode: {why}; drop host_access or the mode"
            )));
        }
        Ok(o)
    }
}

fn unknown_key(driver: DriverName, k: &str) -> String {
    let own = match driver {
        DriverName::Ipvlan => format!("{OPT_IPVLAN_MODE}, {OPT_IPVLAN_FLAG}"),
        _ => OPT_MACVLAN_MODE.to_string(),
    };
    format!(
        "unknown option -o {k}: {driver} networks know {OPT_PARENT}, {own}, {OPT_HOST_ACCESS} \
         and {OPT_MTU}"
    )
}

/// `NAME.VLAN` (e.g. `eth0.10`, VLAN 1..=4094, IEEE 802.1Q): the base interface and the id.
pub fn vlan_of(parent: &IfName) -> Option<(&str, u16)> {
    let (base, id) = parent.as_str().rsplit_once('.')?;
    let id: u16 = id.parse().ok()?;
    (!base.is_empty() && (1..=4094).contains(&id)).then_some((base, id))
}

/// The dummy parent of an internal macvlan/ipvlan network: `dm-` + 12 hex of the network id.
pub fn dummy_parent_for(network_id: &str) -> IfName {
    let hex: String = network_id.chars().take(12).collect();
    format!("dm-{hex}")
        .parse()
        .expect("dm- + 12 hex is a valid name")
}

/// The probe child of [`Driver::create_network`]: `mq` + 11 hex of the network id.
fn probe_ifname_for(network_id: &str) -> String {
    let hex: String = network_id.chars().take(11).collect();
    format!("mq{hex}")
}

/// The host-side shim of `host_access`: `mh` + 11 hex of the network id.
pub fn shim_ifname_for(network_id: &str) -> IfName {
    let hex: String = network_id.chars().take(11).collect();
    format!("mh{hex}")
        .parse()
        .expect("mh + 11 hex is a valid name")
}

/// Refuses sharing `parent` with the recorded networks `others` where the kernel (or passthru)
/// would: macvlan and ipvlan children on one parent (one receive handler per device), a
/// passthru network next to any other, any network next to a passthru one.
///
/// Errors: [`MacvlanError::ParentShared`] naming the other network.
pub fn check_sharing(
    parent: &IfName,
    mode: ChildMode,
    others: &[NetworkState],
) -> Result<(), MacvlanError> {
    for o in others {
        let Some((_, other_mode)) = o.kind.parent_link().filter(|(u, _)| u.parent == *parent)
        else {
            continue;
        };
        let reason = match (mode, other_mode) {
            (ChildMode::Macvlan(_), ChildMode::Ipvlan(..))
            | (ChildMode::Ipvlan(..), ChildMode::Macvlan(_)) => {
                "the kernel refuses macvlan and ipvlan children on one parent (one receive \
                 handler per device); use another parent"
            }
            (ChildMode::Macvlan(MacvlanMode::Passthru), _) => {
                "passthru takes the parent exclusively; remove that network or use another parent"
            }
            (_, ChildMode::Macvlan(MacvlanMode::Passthru)) => {
                "it is in passthru mode, which takes the parent exclusively; use another parent"
            }
            _ => continue,
        };
        return Err(MacvlanError::ParentShared {
            parent: parent.to_string(),
            other: o.name.to_string(),
            other_driver: o.driver(),
            reason,
        });
    }
    Ok(())
}

/// Checks an existing parent: up, and not enslaved (`master` is its master link, if any).
///
/// Errors: [`MacvlanError::ParentDown`], [`MacvlanError::ParentEnslaved`].
pub fn check_parent(parent: &Link, master: Option<&Link>) -> Result<(), MacvlanError> {
    // Loopback has no kind and the all-zero MAC (a renamed `lo` included).
    let zero_mac = parent.mac.as_ref().is_some_and(|m| m.0 == [0; 6]);
    if parent.name == "lo" || (parent.kind.is_none() && zero_mac) {
        return Err(MacvlanError::ParentLoopback {
            parent: parent.name.clone(),
        });
    }
    if let Some(m) = master {
        return Err(MacvlanError::ParentEnslaved {
            parent: parent.name.clone(),
            master: m.name.clone(),
            kind: m.kind.clone().unwrap_or_else(|| "unknown".into()),
        });
    }
    if !parent.up {
        return Err(MacvlanError::ParentDown {
            parent: parent.name.clone(),
        });
    }
    Ok(())
}

/// The routes an endpoint gets when it provides the default route: per address family, via
/// the gateway of the first subnet holding one of its addresses; in ipvlan l3/l3s a device
/// route instead (no gateway: the kernel routes for l3 children, which do no ARP/ND).
pub fn default_routes(
    network: &NetworkState,
    endpoint: &EndpointState,
) -> Vec<(IpNet, Option<IpAddr>)> {
    let l3 = matches!(
        network.kind.parent_link().map(|(_, mode)| mode),
        Some(ChildMode::Ipvlan(IpvlanMode::L3 | IpvlanMode::L3s, _))
    );
    let mut out: Vec<(IpNet, Option<IpAddr>)> = Vec::new();
    for s in &network.subnets {
        if !endpoint
            .addresses
            .iter()
            .any(|a| s.subnet.contains(&a.addr()))
        {
            continue;
        }
        let dst = match s.gateway {
            IpAddr::V4(_) => IpNet::V4(Ipv4Net::default()),
            IpAddr::V6(_) => IpNet::V6(Ipv6Net::default()),
        };
        if !out.iter().any(|(d, _)| *d == dst) {
            out.push((dst, (!l3).then_some(s.gateway)));
        }
    }
    out
}

/// A host prefix (`/32`, `/128`) around `ip`.
fn host_net(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix is valid")
}

/// The macvlan and ipvlan driver (one type: the child kind comes from the network's
/// [`DriverState`]). Stateless; kernel work goes through its [`Netlink`] handle.
#[derive(Clone, Copy)]
pub struct MacvlanDriver<'a> {
    nl: &'a dyn Netlink,
}

/// The parent link and child mode of a macvlan/ipvlan network.
fn parent_of(network: &NetworkState) -> Result<(&ParentLink, ChildMode), MacvlanError> {
    network
        .kind
        .parent_link()
        .ok_or_else(|| MacvlanError::NoParent {
            network: network.name.to_string(),
            driver: network.driver(),
        })
}

/// The kernel's child kind for `mode`.
fn child_kind(mode: ChildMode) -> ChildKind {
    match mode {
        ChildMode::Macvlan(m) => ChildKind::Macvlan(sys_macvlan_mode(m)),
        ChildMode::Ipvlan(m, f) => ChildKind::Ipvlan(sys_ipvlan_mode(m), sys_ipvlan_flag(f)),
    }
}

impl<'a> MacvlanDriver<'a> {
    /// The driver, acting through `nl`.
    pub fn new(nl: &'a dyn Netlink) -> Self {
        Self { nl }
    }

    fn host(network: &str) -> impl Fn(LinkError) -> MacvlanError + '_ {
        move |error| MacvlanError::Host {
            network: network.to_string(),
            error,
        }
    }

    /// Makes `parent` usable by network `network`: an existing link must be up and not
    /// enslaved; a missing `NAME.VLAN` whose `NAME` exists is created as an 802.1q
    /// sub-interface and brought up; with `dummy` a dummy link is created. Returns whether
    /// berth created it (then it is berth's to delete with the last network on it).
    ///
    /// Errors: [`MacvlanError::ParentMissing`], [`MacvlanError::ParentDown`],
    /// [`MacvlanError::ParentEnslaved`], [`MacvlanError::Host`] (a missing
    /// `CONFIG_VLAN_8021Q` or `CONFIG_DUMMY` is named there).
    pub fn prepare_parent(
        &self,
        network: &str,
        parent: &IfName,
        dummy: bool,
    ) -> Result<bool, MacvlanError> {
        let host = Self::host(network);
        match self.nl.link_by_name(parent.as_str()) {
            Ok(l) => {
                let master = match l.master {
                    Some(m) => self
                        .nl
                        .list_links()
                        .map_err(&host)?
                        .into_iter()
                        .find(|x| x.index == m),
                    None => None,
                };
                check_parent(&l, master.as_ref())?;
                return Ok(false);
            }
            Err(LinkError::NotFound { .. }) => {}
            Err(e) => return Err(host(e)),
        }
        self.create_parent(parent, dummy, &host)?;
        if let Err(e) = self.nl.set_up(parent.as_str()) {
            return Err(with_undo(
                host(e),
                self.nl.delete_link(parent.as_str()),
                &host,
            ));
        }
        Ok(true)
    }

    /// Creates a missing parent: a dummy, or the 802.1q sub-interface `NAME.VLAN` of `NAME`.
    fn create_parent(
        &self,
        parent: &IfName,
        dummy: bool,
        host: &dyn Fn(LinkError) -> MacvlanError,
    ) -> Result<(), MacvlanError> {
        if dummy {
            return self.nl.create_dummy(parent.as_str()).map_err(host);
        }
        let Some((base, id)) = vlan_of(parent) else {
            return Err(MacvlanError::ParentMissing {
                parent: parent.to_string(),
            });
        };
        self.nl
            .create_vlan(parent.as_str(), base, id)
            .map_err(|e| match e {
                LinkError::NotFound { .. } => MacvlanError::ParentMissing {
                    parent: base.to_string(),
                },
                e => host(e),
            })
    }

    /// The host shim: a bridge-mode macvlan, or an ipvlan of the network's mode, on the parent
    /// in the calling thread's namespace, with its host-prefix addresses, up, and a route to
    /// each subnet's `--ip-range` through it.
    fn create_shim(
        &self,
        network: &NetworkState,
        u: &ParentLink,
        mode: ChildMode,
        shim: &HostShim,
    ) -> Result<(), MacvlanError> {
        let host = Self::host(network.name.as_str());
        let name = shim.ifname.as_str();
        self.nl.delete_link(name).map_err(&host)?;
        let child = ChildSpec {
            name,
            parent: u.parent.as_str(),
            mtu: Some(network.mtu),
            mac: None,
            netns: None,
        };
        let kind = match mode {
            ChildMode::Macvlan(_) => ChildKind::Macvlan(link::MacvlanMode::Bridge),
            ChildMode::Ipvlan(m, _) => {
                ChildKind::Ipvlan(sys_ipvlan_mode(m), link::IpvlanFlag::Bridge)
            }
        };
        self.nl.create_child(&child, kind).map_err(&host)?;
        for a in &shim.addresses {
            self.nl.add_address(name, host_net(*a)).map_err(&host)?;
        }
        self.nl.set_up(name).map_err(&host)?;
        for range in network.subnets.iter().filter_map(|s| s.ip_range) {
            add_host_route(self.nl, network, range, name)?;
        }
        Ok(())
    }

    /// Creates and deletes one child of the network's kind on its parent, so a kernel without
    /// the driver (`CONFIG_IPVLAN`, `CONFIG_MACVLAN`) or a parent that refuses children is
    /// named at `network create`, not at the first `run` (moby's ipvlan driver checks the
    /// module too).
    fn probe_kind(
        &self,
        network: &NetworkState,
        u: &ParentLink,
        mode: ChildMode,
    ) -> Result<(), MacvlanError> {
        let name = probe_ifname_for(&network.id);
        let child = ChildSpec {
            name: &name,
            parent: u.parent.as_str(),
            mtu: None,
            mac: None,
            netns: None,
        };
        let host = Self::host(network.name.as_str());
        self.nl
            .create_child(&child, child_kind(mode))
            .map_err(&host)?;
        self.nl.delete_link(&name).map_err(&host)
    }

    /// Creates the child of `endpoint` directly inside the sandbox at `netns`.
    fn create_endpoint_child(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
    ) -> Result<(), MacvlanError> {
        let (u, mode) = parent_of(network)?;
        let mac =
            match mode {
                ChildMode::Macvlan(_) => Some(endpoint.mac.parse::<MacAddr>().map_err(
                    |error| MacvlanError::Mac {
                        ifname: endpoint.ifname.to_string(),
                        error,
                    },
                )?),
                ChildMode::Ipvlan(..) => None,
            };
        let ns = SandboxNs::open(netns).map_err(|error| MacvlanError::OpenNetns {
            netns: netns.to_path_buf(),
            error,
        })?;
        let child = ChildSpec {
            name: endpoint.ifname.as_str(),
            parent: u.parent.as_str(),
            mtu: Some(network.mtu),
            mac,
            netns: Some(&ns),
        };
        self.nl
            .create_child(&child, child_kind(mode))
            .map_err(Self::host(network.name.as_str()))
    }

    /// Runs `f` inside the sandbox at `netns`.
    fn in_sandbox<F>(&self, netns: &Path, f: F) -> Result<(), MacvlanError>
    where
        F: FnOnce() -> Result<(), MacvlanError> + Send,
    {
        in_netns(self.nl, netns, f).map_err(|error| MacvlanError::Netns {
            netns: netns.to_path_buf(),
            error,
        })?
    }
}

impl Driver for MacvlanDriver<'_> {
    type Error = MacvlanError;

    /// Creates the network's kernel objects besides the parent: without a shim, a probe child
    /// created and deleted at once; the host shim otherwise (without an `--ip-range`,
    /// [`Driver::join`] routes each endpoint's address to it). Recreates a berth-made parent
    /// that is gone (after a reboot). Idempotent; on failure the shim is deleted.
    ///
    /// Errors: [`MacvlanError::Host`], [`MacvlanError::HostRoute`], those of
    /// [`MacvlanDriver::prepare_parent`].
    fn create_network(&self, network: &NetworkState) -> Result<(), MacvlanError> {
        let (u, mode) = parent_of(network)?;
        if u.parent_created && self.nl.link_by_name(u.parent.as_str()).is_err() {
            self.prepare_parent(
                network.name.as_str(),
                &u.parent,
                vlan_of(&u.parent).is_none(),
            )?;
        }
        let Some(shim) = &u.shim else {
            return self.probe_kind(network, u, mode);
        };
        self.create_shim(network, u, mode, shim).map_err(|e| {
            let undo = self.nl.delete_link(shim.ifname.as_str());
            with_undo(e, undo, &Self::host(network.name.as_str()))
        })
    }

    /// Deletes the shim (and a probe child a failed create left), and the parent when berth
    /// created it and no network of `others` is on it. Absent links are not an error.
    ///
    /// Errors: [`MacvlanError::Host`] (the first failure; every step runs).
    fn delete_network(
        &self,
        network: &NetworkState,
        others: &[NetworkState],
    ) -> Result<(), MacvlanError> {
        let (u, _) = parent_of(network)?;
        let parent_in_use = others.iter().any(|o| {
            o.id != network.id
                && o.kind
                    .parent_link()
                    .is_some_and(|(x, _)| x.parent == u.parent)
        });
        let shim = u
            .shim
            .as_ref()
            .map_or(Ok(()), |s| self.nl.delete_link(s.ifname.as_str()));
        // A probe left by a create whose probe could not be deleted.
        let probe = self.nl.delete_link(&probe_ifname_for(&network.id));
        let parent = if u.parent_created && !parent_in_use {
            self.nl.delete_link(u.parent.as_str())
        } else {
            Ok(())
        };
        shim.and(probe)
            .and(parent)
            .map_err(Self::host(network.name.as_str()))
    }

    /// Attaches the sandbox at `netns`: creates the child of the parent directly inside the
    /// sandbox as `endpoint.ifname` (MTU `network.mtu`; macvlan with `endpoint.mac`), then
    /// there adds the addresses, brings it up and, with `default_route`, adds
    /// [`default_routes`]. With a shim and no `--ip-range`, routes each address to the shim
    /// in the calling namespace (such routes go with the shim). On failure the child is
    /// deleted: nothing is left attached.
    ///
    /// Errors: [`MacvlanError::Mac`], [`MacvlanError::OpenNetns`], [`MacvlanError::Host`]
    /// (parent gone, `EEXIST` when the sandbox has `endpoint.ifname`, passthru `EINVAL`,
    /// missing `CONFIG_IPVLAN`), [`MacvlanError::Netns`], [`MacvlanError::SandboxLink`],
    /// [`MacvlanError::SandboxRoute`], [`MacvlanError::HostRoute`], [`MacvlanError::Undo`].
    fn join(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
        default_route: bool,
    ) -> Result<(), MacvlanError> {
        self.create_endpoint_child(network, endpoint, netns)?;
        let routes = if default_route {
            default_routes(network, endpoint)
        } else {
            Vec::new()
        };
        let nl = self.nl;
        let wired = self
            .in_sandbox(netns, || configure_child(nl, endpoint, netns, &routes))
            .and_then(|()| route_to_shim(nl, network, endpoint));
        match wired {
            Err(e) => match self.leave(network, endpoint, netns) {
                Ok(()) => Err(e),
                Err(undo) => Err(MacvlanError::Undo {
                    error: Box::new(e),
                    undo: Box::new(undo),
                }),
            },
            ok => ok,
        }
    }

    /// Detaches `endpoint`: deletes its child inside the sandbox. A missing sandbox or child
    /// is success (the child dies with the sandbox's namespace).
    ///
    /// Errors: [`MacvlanError::Netns`], [`MacvlanError::SandboxLink`].
    fn leave(
        &self,
        _network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
    ) -> Result<(), MacvlanError> {
        if !netns.exists() {
            return Ok(());
        }
        let ifname = endpoint.ifname.as_str();
        let nl = self.nl;
        self.in_sandbox(netns, || {
            nl.delete_link(ifname)
                .map_err(|source| MacvlanError::SandboxLink {
                    ifname: ifname.to_string(),
                    netns: netns.to_path_buf(),
                    error: Box::new(source),
                })
        })
    }
}

/// `error`, or [`MacvlanError::Undo`] carrying both when `undo` failed too.
fn with_undo(
    error: MacvlanError,
    undo: Result<(), LinkError>,
    host: &dyn Fn(LinkError) -> MacvlanError,
) -> MacvlanError {
    match undo {
        Ok(()) => error,
        Err(u) => MacvlanError::Undo {
            error: Box::new(error),
            undo: Box::new(host(u)),
        },
    }
}

/// Runs inside the sandbox: addresses, up, default routes (the child was born with its name,
/// MAC and MTU).
fn configure_child(
    nl: &dyn Netlink,
    endpoint: &EndpointState,
    netns: &Path,
    routes: &[(IpNet, Option<IpAddr>)],
) -> Result<(), MacvlanError> {
    let ifname = endpoint.ifname.as_str();
    let sandbox = |source| MacvlanError::SandboxLink {
        ifname: ifname.to_string(),
        netns: netns.to_path_buf(),
        error: Box::new(source),
    };
    for addr in &endpoint.addresses {
        nl.add_address(ifname, *addr).map_err(sandbox)?;
    }
    nl.set_up(ifname).map_err(sandbox)?;
    for (dst, gw) in routes {
        nl.add_route(*dst, *gw, Some(ifname))
            .map_err(|source| MacvlanError::SandboxRoute {
                ifname: ifname.to_string(),
                netns: netns.to_path_buf(),
                error: Box::new(source),
            })?;
    }
    Ok(())
}

/// With a shim, routes each endpoint address outside every `--ip-range` (those are routed
/// whole at create) to the shim in the calling namespace. An existing route is success.
fn route_to_shim(
    nl: &dyn Netlink,
    network: &NetworkState,
    endpoint: &EndpointState,
) -> Result<(), MacvlanError> {
    let Some(shim) = parent_of(network)?.0.shim.as_ref() else {
        return Ok(());
    };
    for a in &endpoint.addresses {
        let ranged = network
            .subnets
            .iter()
            .any(|s| s.ip_range.is_some_and(|r| r.contains(&a.addr())));
        if !ranged {
            add_host_route(nl, network, host_net(a.addr()), shim.ifname.as_str())?;
        }
    }
    Ok(())
}

fn add_host_route(
    nl: &dyn Netlink,
    network: &NetworkState,
    dst: IpNet,
    dev: &str,
) -> Result<(), MacvlanError> {
    match nl.add_route(dst, None, Some(dev)) {
        Err(e) if e.errno() == Some(nix::libc::EEXIST) => Ok(()),
        other => other.map_err(|source| MacvlanError::HostRoute {
            network: network.name.to_string(),
            error: source,
        }),
    }
}

fn sys_macvlan_mode(m: MacvlanMode) -> link::MacvlanMode {
    match m {
        MacvlanMode::Bridge => link::MacvlanMode::Bridge,
        MacvlanMode::Private => link::MacvlanMode::Private,
        MacvlanMode::Vepa => link::MacvlanMode::Vepa,
        MacvlanMode::Passthru => link::MacvlanMode::Passthru,
    }
}

fn sys_ipvlan_mode(m: IpvlanMode) -> link::IpvlanMode {
    match m {
        IpvlanMode::L2 => link::IpvlanMode::L2,
        IpvlanMode::L3 => link::IpvlanMode::L3,
        IpvlanMode::L3s => link::IpvlanMode::L3s,
    }
}

fn sys_ipvlan_flag(f: IpvlanFlag) -> link::IpvlanFlag {
    match f {
        IpvlanFlag::Bridge => link::IpvlanFlag::Bridge,
        IpvlanFlag::Private => link::IpvlanFlag::Private,
        IpvlanFlag::Vepa => link::IpvlanFlag::Vepa,
    }
}

#[cfg(test)]
#[path = "macvlan_tests.rs"]
mod tests;
