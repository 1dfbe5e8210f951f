//! [`NftFirewall`]: the [`Firewall`] of berth on nftables. Plans ([`super::plan`]), renders
//! ([`super::nft`]) and applies through an [`NftRunner`], one script per operation, optionally
//! serialised by an exclusive `flock(2)` on a lock file shared by every berth process.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::nft::render;
use super::plan::{self, Plan};
use super::runner::{NftCommand, NftRunner};
use super::{Firewall, FirewallError};
use crate::model::{EndpointState, NetworkState};

/// berth's firewall on nftables.
#[derive(Debug)]
pub struct NftFirewall<R: NftRunner = NftCommand> {
    runner: R,
    lock: Option<PathBuf>,
}

impl NftFirewall<NftCommand> {
    /// The firewall of the namespace berth runs in, with nft from `NFT` or `/usr/sbin/nft`.
    pub fn from_env() -> Self {
        NftFirewall::new(NftCommand::from_env())
    }
}

impl<R: NftRunner> NftFirewall<R> {
    /// A firewall applying through `runner`, without a lock.
    pub fn new(runner: R) -> Self {
        NftFirewall { runner, lock: None }
    }

    /// Serialises every operation with an exclusive `flock(2)` on `path` (created if missing,
    /// e.g. `<runroot>/firewall.lock`). Needed when several berth processes change networks at
    /// once: [`Firewall::remove_network`] reads whether other networks remain before deleting
    /// the tables, and that read must not interleave with another process's `add_network`.
    pub fn with_lock(mut self, path: &Path) -> Self {
        self.lock = Some(path.to_path_buf());
        self
    }

    /// The runner (tests inspect a [`super::RecordingRunner`] through this).
    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn locked(&self) -> Result<Option<File>, FirewallError> {
        let Some(path) = &self.lock else {
            return Ok(None);
        };
        berth_sys::flock::lock_exclusive(path)
            .map(Some)
            .map_err(|e| FirewallError::Lock {
                path: path.clone(),
                source: e.into_io(),
            })
    }

    fn apply(&self, plan: &Plan) -> Result<(), FirewallError> {
        if let Some(ops) = super::netlink::element_ops(plan) {
            if let Some(done) = self.runner.apply_elements(&ops) {
                return Ok(done?);
            }
        }
        let script = render(plan);
        if script.is_empty() {
            return Ok(());
        }
        Ok(self.runner.apply(&script)?)
    }

    fn table_exists(&self) -> bool {
        self.runner
            .list(&["list", "table", "inet", "berth"])
            .is_ok()
    }

    /// Whether any network's bridge is still in `inet berth bridges` (a missing table counts as
    /// none). nft prints an `elements = { ... }` line only for a non-empty set.
    fn networks_remain(&self) -> bool {
        self.runner
            .list(&["list", "set", "inet", "berth", "bridges"])
            .is_ok_and(|text| text.contains("elements ="))
    }
}

impl<R: NftRunner> Firewall for NftFirewall<R> {
    fn ensure_base(&self) -> Result<(), FirewallError> {
        let _lock = self.locked()?;
        self.apply(&plan::ensure_base())
    }

    fn add_network(&self, net: &NetworkState, generation: u32) -> Result<(), FirewallError> {
        let _lock = self.locked()?;
        self.apply(&plan::add_network(net, generation))
    }

    fn remove_network(&self, net: &NetworkState, generation: u32) -> Result<(), FirewallError> {
        let _lock = self.locked()?;
        self.apply(&plan::remove_network(net, generation))?;
        if !self.networks_remain() {
            self.apply(&plan::drop_tables())?;
        }
        Ok(())
    }

    fn is_current(&self, generation: u32) -> Result<bool, FirewallError> {
        Ok(self.runner.has_generation(generation)?)
    }

    fn add_endpoint(&self, net: &NetworkState, ep: &EndpointState) -> Result<(), FirewallError> {
        let plan = plan::add_endpoint(net, ep)?;
        let _lock = self.locked()?;
        self.apply(&plan)
    }

    fn remove_endpoint(&self, net: &NetworkState, ep: &EndpointState) -> Result<(), FirewallError> {
        let _lock = self.locked()?;
        match self.apply(&plan::remove_endpoint(net, ep)) {
            // Without berth's table there is nothing of the endpoint's left to remove.
            Err(_) if !self.table_exists() => Ok(()),
            other => other,
        }
    }

    fn reconcile(
        &self,
        networks: &[NetworkState],
        endpoints: &[EndpointState],
    ) -> Result<(), FirewallError> {
        let _lock = self.locked()?;
        self.apply(&plan::reconcile(networks, endpoints))
    }
}
