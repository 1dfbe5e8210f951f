//! berth-net: the network layer. Today: network modes, port specifications,
//! the host-mode port check, and network sandboxes (namespaces); the
//! [`driver::Driver`] interface for bridge/macvlan/overlay networks to come.
//!
//! - [`mode`]: `--network` values ([`NetworkMode`]).
//! - [`port`]: `80/tcp`-style ports and `--expose` ranges ([`PortSpec`]).
//! - [`hostport`]: conflicts of declared ports with listening sockets.
//! - [`sandbox`]: per-container network namespaces ([`Sandbox`]).
//! - [`driver`]: the driver trait (declaration only).
//! - [`test_hooks`]: `BERTH_TEST_PAUSE_AT`, where e2e tests stop a command to kill it.

pub mod driver;
pub mod drivers;
pub mod firewall;
pub mod hostport;
pub mod ipam;
pub mod manager;
pub mod mode;
pub mod model;
pub mod port;
pub mod ports;
pub mod records;
pub mod sandbox;
pub mod test_hooks;

pub use hostport::{
    berth_container_id, check_host_ports, find_conflicts, listening_ports_of, Conflict,
    HostPortError,
};
pub use mode::{ModeError, NetworkMode};
pub use model::{
    parse_publish, DriverName, EndpointState, IfName, ModelError, NetworkName, NetworkState,
    PortMapping, PublishRequest, SubnetConfig, SubnetState,
};
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
