//! berth-net: the network layer: network modes, port specifications, the host-mode port
//! check, network sandboxes (namespaces), and the network core (manager, drivers, IPAM,
//! firewall) behind injected kernel seams.
//!
//! - [`mode`]: `--network` values ([`NetworkMode`]).
//! - [`port`]: `80/tcp`-style ports and `--expose` ranges ([`PortSpec`]).
//! - [`hostport`]: conflicts of declared ports with listening sockets.
//! - [`sandbox`]: per-container network namespaces ([`Sandbox`]).
//! - [`attach`]: attaching a sandbox to its networks and detaching it (lock, host ports,
//!   route and resolv.conf repair).
//! - [`driver`]: the driver trait and [`driver::AnyDriver`], the one dispatch over drivers.
//! - [`drivers`]: bridge and macvlan/ipvlan.
//! - [`netstate`]: per-driver network state and its stored shape.
//! - [`kernel`]: the [`kernel::Netlink`] seam (and its recording fake, feature `test-support`).
//! - [`manager`]: the network manager (validate → IPAM → driver → firewall → record).
//! - [`policy`]: which networks may publish ports ([`policy::PublishRefused`]).

pub mod attach;
pub mod driver;
pub mod drivers;
pub mod firewall;
pub mod hostport;
pub mod ipam;
pub mod kernel;
pub mod manager;
pub mod mode;
pub mod model;
pub mod netstate;
pub mod policy;
pub mod port;
pub mod ports;
pub mod records;
pub mod sandbox;

pub use hostport::{
    berth_container_id, check_host_ports, find_conflicts, listening_ports_of, Conflict,
    HostPortError,
};
pub use mode::{ModeError, NetworkMode};
pub use model::{
    parse_publish, DriverName, EndpointState, IfName, ModelError, NetworkName, NetworkState,
    PortMapping, PublishRequest, SubnetConfig, SubnetState,
};
pub use netstate::{BridgeState, ChildMode, DriverState, HostShim, ParentLink};
pub use port::{parse_exposed, PortError, PortSpec, Proto};
pub use sandbox::{NetNsSpec, Sandbox, SandboxError, SandboxSpec};

pub use berth_sys::procfs::ProcessInfo;
pub use berth_sys::sockdiag::Listener;

/// Any error of this crate, for callers that do not care which step failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Invalid `--network` value.
    #[error(transparent)]
    Mode(#[from] ModeError),
    /// Invalid port specification.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The host port check could not gather facts.
    #[error(transparent)]
    HostPort(#[from] HostPortError),
    /// Sandbox setup or teardown failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Invalid network-model input (`-p`, names).
    #[error(transparent)]
    Model(#[from] ModelError),
}
