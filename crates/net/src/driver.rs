//! The network driver interface (DESIGN.md, "Network model"): one
//! implementation per network type (bridge, macvlan, ipvlan, overlay) plugs in
//! here. `host`, `none` and `container:` are sandbox modes, not drivers.
//!
//! Implementations live in [`crate::drivers`]. Drivers do kernel plumbing through
//! `berth-sys` only; IPAM, firewall and DNS are ordered around them by the
//! network manager, which also owns rollback.

use std::path::Path;

/// The closed set of driver kinds (for `Any*`-style dispatch later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// Linux bridge + veth pairs, NAT to the outside.
    Bridge,
    /// macvlan sub-interfaces of a parent link.
    Macvlan,
    /// ipvlan (L2/L3) sub-interfaces of a parent link.
    Ipvlan,
    /// VXLAN across hosts, per-network bridge.
    Overlay,
}

/// A network driver: creates/deletes the kernel objects of a network and
/// joins/leaves a sandbox to/from it.
///
/// Contract: every method is idempotent (re-running after a crash converges),
/// and a failing `join` undoes what it did before returning.
pub trait Driver {
    /// The validated network definition (name, id, subnets, options) the driver needs.
    type Network;
    /// The validated endpoint (interface name, MAC, addresses, aliases).
    type Endpoint;
    /// The driver's error type (keeps errnos).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Which kind this driver implements.
    fn kind(&self) -> DriverKind;

    /// Creates the network's kernel objects (e.g. the bridge device).
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn create_network(&self, network: &Self::Network) -> Result<(), Self::Error>;

    /// Deletes them; absent objects are not an error.
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn delete_network(&self, network: &Self::Network) -> Result<(), Self::Error>;

    /// Attaches the sandbox whose namespace is pinned at `netns` to the
    /// network as `endpoint` (interface, addresses, routes inside); with
    /// `default_route` the sandbox's default routes go via this network's
    /// gateways (the manager passes false for internal networks and for
    /// every network but the one that provides the default route).
    ///
    /// Errors: `Self::Error`; nothing is left half-attached.
    fn join(
        &self,
        network: &Self::Network,
        endpoint: &Self::Endpoint,
        netns: &Path,
        default_route: bool,
    ) -> Result<(), Self::Error>;

    /// Detaches `endpoint` from the sandbox at `netns`; absent objects are not an error.
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn leave(
        &self,
        network: &Self::Network,
        endpoint: &Self::Endpoint,
        netns: &Path,
    ) -> Result<(), Self::Error>;
}
