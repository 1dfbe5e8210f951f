//! The runroot a root is used with. Monitors, their locks, the netns bind mounts and the
//! runtime's state live under `--runroot`; a command given another runroot would find no lock
//! held and judge every running container dead (issue 11, item 9). So the store remembers the
//! runroot (`meta` row `runroot`) and a command with a different one is refused while any
//! container's monitor still runs. With none running (e.g. after a reboot) the new runroot is
//! adopted: nothing lives under the old one any more but perhaps the embedded DNS server,
//! which is stopped (the next command starts one under the new runroot).

use std::path::Path;

use berth_store::{rusqlite, Store};

use crate::reconcile::monitor_alive;
use crate::{state, EngineError};

/// The `meta` key holding the runroot.
const KEY: &str = "runroot";

/// Errors of the runroot check.
#[derive(Debug, thiserror::Error)]
pub enum RunrootError {
    /// Another runroot is recorded and containers run under it.
    #[error("the state root {root} is in use with --runroot {recorded} ({running} running container(s) keep their monitors, locks and network namespaces there), but this command was given --runroot {given}: run berth with --runroot {recorded} (or BERTH_RUNROOT={recorded}); to move to {given}, stop those containers first with --runroot {recorded}")]
    InUse {
        /// `--root`.
        root: String,
        /// The runroot the store remembers.
        recorded: String,
        /// The runroot of this command.
        given: String,
        /// Containers whose monitor is alive (pid and start time, independent of any runroot).
        running: usize,
    },
    /// The runroot is not valid UTF-8 (it is stored as text).
    #[error("--runroot {0:?} is not valid UTF-8: choose another path")]
    NotUtf8(std::path::PathBuf),
}

/// Records `runroot` as the runroot of the store's root, or checks that it is the recorded
/// one. Costs one indexed read when it matches; writes only on first use or when adopting a
/// new runroot with no container running.
///
/// Errors: [`RunrootError::InUse`] if another runroot is recorded and a container's monitor
/// (pid + start time from the store) is alive.
pub fn claim(store: &mut Store, runroot: &Path) -> Result<(), EngineError> {
    // The same directory spelt another way (a symlink, a trailing slash) is the same runroot.
    let runroot = std::fs::canonicalize(runroot).unwrap_or_else(|_| runroot.to_path_buf());
    let given = runroot
        .to_str()
        .ok_or_else(|| RunrootError::NotUtf8(runroot.clone()))?
        .to_string();
    if store.meta(KEY)?.as_deref() == Some(given.as_str()) {
        return Ok(());
    }
    let root = store.root().display().to_string();
    let adopted = store.write(|tx| -> Result<Option<String>, EngineError> {
        let recorded: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [KEY],
            |r| r.get(0),
        ))?;
        let adopted = match recorded {
            Some(r) if r == given => return Ok(None),
            Some(recorded) => {
                let running = state::list(tx)?
                    .iter()
                    .filter(|c| monitor_alive(&c.state))
                    .count();
                if running > 0 {
                    return Err(RunrootError::InUse {
                        root,
                        recorded,
                        given,
                        running,
                    }
                    .into());
                }
                tracing::info!(%recorded, %given, "no container runs: adopting the new runroot");
                Some(recorded)
            }
            None => None,
        };
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            [KEY, given.as_str()],
        )?;
        Ok(adopted)
    })?;
    if let Some(old) = adopted {
        crate::dns::stop(&crate::Paths {
            root: store.root().to_path_buf(),
            runroot: old.into(),
        });
    }
    Ok(())
}
