//! `stop`, `kill`, `restart`: signal the container through the runtime and wait for its
//! monitor to record the exit. Each marks the container user-stopped so the restart policy
//! leaves it alone (Docker's `HasBeenManuallyStopped`).

use std::time::Duration;

use crate::state::{self, Status};
use crate::{Engine, EngineError};

/// Why `stop`, `kill` or `restart` failed.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The container outlived the signal and the grace period.
    #[error("container monitor: container {id} did not exit within {secs}s of SIG{signal}")]
    Timeout {
        /// The container's id.
        id: String,
        /// The grace period, in seconds.
        secs: u64,
        /// The signal's name without `SIG`.
        signal: String,
    },
    /// A `--signal`/`-s` value that names no signal.
    #[error("invalid signal {given:?}: use {hint}")]
    Signal {
        /// The value given.
        given: String,
        /// What to give instead.
        hint: &'static str,
    },
}

impl Engine {
    /// `stop -t SECS`: SIGTERM, then SIGKILL after `timeout`. A stopped container is fine.
    pub fn stop(&mut self, key: &str, timeout: Duration) -> Result<String, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if !matches!(c.state.status, Status::Running | Status::Restarting) {
            return Ok(c.name.to_string());
        }
        self.mark_stopped(&c.id)?;
        if !self.signal_and_wait(&c.id, "TERM", timeout)? {
            self.kill_and_wait(&c.id, "KILL", Duration::from_secs(10))?;
        }
        Ok(c.name.to_string())
    }

    /// `kill -s SIG` (default KILL). Refused when the container is not running.
    pub fn kill(&mut self, key: &str, signal: &str) -> Result<String, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if c.state.status != Status::Running {
            return Err(EngineError::NotRunning(c.name.to_string()));
        }
        let sig = normalize_signal(signal)?;
        if matches!(sig.as_str(), "KILL" | "TERM" | "INT") {
            self.mark_stopped(&c.id)?;
        }
        self.runtime.kill(&c.id, &sig)?;
        if sig == "KILL" {
            self.wait_monitor(&c.id, Duration::from_secs(10));
        }
        Ok(c.name.to_string())
    }

    /// Stops (if running) and starts again; `timeout` as for stop.
    pub fn restart(&mut self, key: &str, timeout: Duration) -> Result<String, EngineError> {
        let name = self.stop(key, timeout)?;
        self.start(key, false)?;
        Ok(name)
    }

    fn mark_stopped(&mut self, id: &str) -> Result<(), EngineError> {
        state::update_state(&mut self.store, id, |s| s.user_stopped = true)?;
        Ok(())
    }

    /// Marks the container stopped, sends `signal`, waits for the monitor to finish.
    pub(crate) fn kill_and_wait(
        &mut self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        self.mark_stopped(id)?;
        if !self.signal_and_wait(id, signal, timeout)? {
            return Err(StopError::Timeout {
                id: id.to_string(),
                secs: timeout.as_secs(),
                signal: signal.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Sends `signal` and waits up to `timeout` for the monitor to exit. True if it did.
    fn signal_and_wait(
        &mut self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<bool, EngineError> {
        self.runtime.kill(id, signal)?;
        Ok(self.wait_monitor(id, timeout))
    }

    /// Waits until the container's monitor has exited (or it is not running and has no
    /// monitor). True if so within `timeout`.
    fn wait_monitor(&self, id: &str, timeout: Duration) -> bool {
        crate::lock::wait_released(&self.paths, id, timeout)
    }
}

/// Accepts `KILL`, `SIGKILL`, `kill`, `9`; returns the runtime's name form (`KILL`) or the
/// number. Unknown names are refused.
pub fn normalize_signal(s: &str) -> Result<String, EngineError> {
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|sig| sig.as_str().trim_start_matches("SIG").to_string())
            .map_err(|_| {
                StopError::Signal {
                    given: s.to_string(),
                    hint: "a name like TERM, KILL, HUP or a number from 1 to 64",
                }
                .into()
            });
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|_| name.to_string())
        .map_err(|_| {
            StopError::Signal {
                given: s.to_string(),
                hint: "a name like TERM or a number",
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_normalise() {
        assert_eq!(normalize_signal("kill").unwrap(), "KILL");
        assert_eq!(normalize_signal("SIGTERM").unwrap(), "TERM");
        assert_eq!(normalize_signal("9").unwrap(), "KILL");
        assert_eq!(normalize_signal("hup").unwrap(), "HUP");
        assert!(normalize_signal("nope").is_err());
        assert!(normalize_signal("999").is_err());
    }
}
