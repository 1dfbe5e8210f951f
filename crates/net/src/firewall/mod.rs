//! The firewall: berth's packet policy for bridge networks (issue 3 "Policy" and "Published
//! ports"), planned once and rendered for nftables.
//!
//! - [`plan`]: pure functions from [`NetworkState`]/[`EndpointState`] to a backend-neutral
//!   [`Plan`] of policy [`Element`]s (what a network or a published port *means*).
//! - [`nft`]: renders a [`Plan`] as one `nft -f -` script (one atomic transaction, nft(8)
//!   "nft -f"), and holds berth's fixed tables, sets, maps and rules.
//! - [`runner`]: the [`NftRunner`] seam (the real `nft` binary, optionally inside a netns, or a
//!   [`RecordingRunner`] for tests).
//! - [`backend`]: [`NftFirewall`], the [`Firewall`] implementation tying the three together.
//!
//! # How per-network and per-container rules stay individually deletable
//! Every rule berth installs is fixed: a constant handful of rules in `table inet berth` and
//! `table bridge berth` that look things up in named sets and maps. A network or a container
//! never adds a rule; it adds *elements* (its bridge name, its subnets, its published ports),
//! each with a comment naming the network or container. Adding or removing one therefore costs
//! the same with 0 or 500 containers, and removing it deletes exactly its elements, never
//! anybody else's. The tables are deleted when the last network goes, and
//! [`Firewall::reconcile`] rebuilds both from the store in one transaction.
//!
//! # Repair (issue 11)
//! Both tables carry a one-element set `generation`: [`plan::generation`], a digest of the
//! networks the rules cover, rewritten by every network change in the same transaction. Before
//! changing the firewall, the network manager computes the digest of the store's networks and
//! asks [`Firewall::is_current`] (one netlink element lookup per table, never a listing): a
//! missing table (`nft flush ruleset`, a reboot) or another digest (a `network rm`/`create`
//! killed between its firewall step and its record) makes it rebuild everything from the
//! store with [`Firewall::reconcile`]. Endpoints do not change the digest: their elements are
//! restored by that same rebuild.
//!
//! What the fixed rules do (see [`nft`] for the text):
//! - guard (`inet`, prerouting at raw priority, before conntrack and NAT): a loopback
//!   destination arriving on any interface but `lo` is dropped. Bridges need `route_localnet`
//!   (so that the host's own `curl 127.0.0.1:PORT` can be DNAT'ed out a bridge), and with it
//!   the kernel would otherwise deliver a container's raw frame to `127.0.0.1:PORT` to a host
//!   service bound to loopback (CVE-2020-8558). Whether that reply got out used to depend on
//!   the host's neighbour cache: the SYN-ACK leaves with source 127.0.0.1, and when the
//!   container's MAC is not cached the host's ARP request carries 127.0.0.1 as sender, which
//!   the container (no `route_localnet`) treats as martian and never answers; with the entry
//!   cached (any recent traffic from the container) the SYN-ACK is delivered. Replies of the
//!   host's own loopback clients to published ports come back to the gateway address and are
//!   un-NATed to 127.0.0.1 only later (nat priority), so the guard never sees them as loopback.
//! - input (`inet`): port 53 (tcp, udp) on a berth gateway is dropped unless it arrives on
//!   that gateway's own bridge: the embedded DNS answers its network's containers, not other
//!   hosts (no open resolver) and not other networks.
//! - forward (`inet`): traffic routed in and out of one bridge passes; `internal` networks'
//!   bridges neither send nor receive routed traffic; DNAT'ed traffic (published ports) passes;
//!   any other traffic routed between two berth bridges is dropped (isolation); replies to the
//!   containers' own connections pass; anything else routed to a bridge from outside (another
//!   host with a route to the subnet) is dropped, as Docker 28 does for unpublished ports.
//!   Two empty sets leave room for Docker 28's per-network exceptions: `routed` (bridges
//!   open to direct routing, `gateway_mode_ipv4=routed`) and `trusted` (`host interface .
//!   bridge`, `trusted_host_interfaces`); no option fills them yet.
//! - forward (`bridge`): frames from the host-side veth of an endpoint on an `icc=false` network
//!   to another port are dropped. Bridge-family forward only sees port-to-port frames, so
//!   traffic to the gateway (local delivery) still passes, and so do frames going back to the
//!   port they came from (hairpin, which `br_netfilter` bridges directly). It matches ports, not `meta ibrname`, because kernels without
//!   `CONFIG_NFT_BRIDGE_META` (like this project's CI kernel) cannot evaluate `ibrname`.
//! - prerouting/output (`nat`): destination `daddr . proto . port` in the address-specific map,
//!   else `proto . port` in the any-address map when the destination is a local address
//!   (`fib daddr type local`); prerouting skips loopback destinations so a port published on
//!   127.0.0.1 can never be reached by a neighbour sending to 127.0.0.1 (CVE-2020-8558).
//! - postrouting (`nat`): masquerade DNAT'ed traffic from 127.0.0.0/8 (needs `route_localnet` on
//!   the bridge, set by the bridge driver), DNAT'ed traffic from a network's subnet going back
//!   out its bridge (hairpin; matched on `saddr . oifname` because `br_netfilter`'s
//!   postrouting has no input interface), and egress from the networks' subnets leaving by a
//!   non-berth interface. Clients from other hosts keep their source address.
//!
//! # `br_netfilter`
//! When the `br_netfilter` module is loaded (Docker loads it; `bridge-nf-call-iptables` is then
//! 1 in every namespace), bridged frames also traverse the `inet` hooks with the bridge as
//! both input and output interface: the `same_bridge` accept keeps them from the isolation
//! drop, and a DNAT'ed hairpin connection is bridged straight back to the sending port, which
//! the bridge only allows with `hairpin_mode` on that port (the bridge driver must set it on
//! every host-side veth).

pub mod backend;
pub mod netlink;
pub mod nft;
pub mod plan;
pub mod runner;

pub use backend::NftFirewall;
pub use plan::{Element, Family, Listen, Plan, PlanError, Publish};
pub use runner::{NftCommand, NftError, NftRunner, RecordingRunner};

use crate::model::{EndpointState, NetworkState};

/// Errors of firewall operations.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The input cannot be expressed as policy (e.g. ports on an internal network).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// nft could not be run or refused the transaction.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// The lock serialising firewall changes could not be taken.
    #[error("cannot lock {path}: {source}; check that the run root is writable")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// berth's packet policy for bridge networks. Every method is one atomic change of the kernel's
/// rules (one nft transaction; [`Firewall::remove_network`] may add a second one that deletes
/// the then-empty tables) and is idempotent: applying it twice is the same as once.
pub trait Firewall {
    /// Creates berth's tables, sets, maps and fixed rules if missing (resetting the fixed rules
    /// to this version's), keeping every network's and container's elements.
    fn ensure_base(&self) -> Result<(), FirewallError>;

    /// Adds the policy of `net` (isolation, masquerade or internal); includes
    /// [`Firewall::ensure_base`]. `generation` is [`plan::generation`] of every network the
    /// rules cover once `net` is added; it is stamped into the tables in the same transaction.
    fn add_network(&self, net: &NetworkState, generation: u32) -> Result<(), FirewallError>;

    /// Removes exactly the policy of `net`, stamping `generation` (that of the networks left);
    /// deletes berth's tables when no network is left. Remove the network's endpoints first.
    fn remove_network(&self, net: &NetworkState, generation: u32) -> Result<(), FirewallError>;

    /// Whether berth's tables are there and stamped with `generation` (O(1): one element
    /// lookup per table, whatever the number of networks and containers). `false` means the
    /// rules must be rebuilt with [`Firewall::reconcile`].
    ///
    /// Errors: [`NftError`] when the kernel cannot be asked at all.
    fn is_current(&self, generation: u32) -> Result<bool, FirewallError>;

    /// Adds the published ports of `ep` and, on an `icc=false` network, the block on its veth.
    ///
    /// Errors: [`PlanError`] for ports on an internal network or a host address of a family
    /// the endpoint has no address of; [`NftError`] when a host port is already mapped to
    /// another destination (nft: "File exists").
    fn add_endpoint(&self, net: &NetworkState, ep: &EndpointState) -> Result<(), FirewallError>;

    /// Removes exactly what [`Firewall::add_endpoint`] added for `ep`.
    fn remove_endpoint(&self, net: &NetworkState, ep: &EndpointState) -> Result<(), FirewallError>;

    /// Replaces berth's tables with exactly the policy of `networks` and `endpoints` in one
    /// transaction, stamped with their [`plan::generation`] (after a crash or an external
    /// `nft flush ruleset`: nothing stale survives, nothing missing stays missing). Endpoints of networks not listed
    /// and ports that cannot be planned are skipped; a host port claimed twice keeps the first.
    /// With no networks, the tables are deleted.
    fn reconcile(
        &self,
        networks: &[NetworkState],
        endpoints: &[EndpointState],
    ) -> Result<(), FirewallError>;
}

#[cfg(test)]
mod tests;
