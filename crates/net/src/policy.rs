//! Which networks may publish ports (`-p`/`-P`): the one place the rule is checked, by
//! create-time validation (engine), `Manager::connect` and the firewall plan, with one message
//! per refusal.

use crate::model::{NetworkName, NetworkState};

/// Why a network refuses published ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefused {
    /// `--internal` networks have no published ports (issue 3 "Policy").
    #[error("network {network} is internal: it has no published ports; drop -p/-P or use another network")]
    Internal {
        /// The network.
        network: NetworkName,
    },
    /// macvlan and ipvlan networks have no NAT: the container is reachable at its own address.
    #[error("network {network} is a {driver} network: there is no NAT and no published port, the container is reachable directly at its own address on the parent's segment; drop -p/-P")]
    NoNat {
        /// The network.
        network: NetworkName,
        /// `macvlan` or `ipvlan`.
        driver: String,
    },
}

/// Refuses published ports (`publishes`: the container asks for any `-p`/`-P`) on a network
/// that cannot have them: a macvlan/ipvlan one or an internal one.
///
/// Errors: [`PublishRefused`].
pub fn check_publish(network: &NetworkState, publishes: bool) -> Result<(), PublishRefused> {
    if !publishes {
        return Ok(());
    }
    if network.kind.parent_link().is_some() {
        return Err(PublishRefused::NoNat {
            network: network.name.clone(),
            driver: network.driver().to_string(),
        });
    }
    if network.internal {
        return Err(PublishRefused::Internal {
            network: network.name.clone(),
        });
    }
    Ok(())
}
