//! `rm`: stop if asked (`-f`), release what the container held in the kernel, delete its
//! files and record. Teardown is best effort and collects every failure.

use crate::state::{self, Status};
use crate::{Engine, EngineError};

/// Why `rm` refuses or fails.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The container runs and `-f` was not given.
    #[error("cannot remove container {container}: it is running; stop it first or use rm -f")]
    Running {
        /// The container's name.
        container: String,
    },
    /// The container's monitor is starting it and `-f` was not given.
    #[error("cannot remove container {container}: it is starting; wait, or use rm -f")]
    Starting {
        /// The container's name.
        container: String,
    },
    /// A starting monitor did not end after SIGKILL.
    #[error("container monitor: the monitor of container {id} did not end; try again")]
    MonitorStuck {
        /// The container's id.
        id: String,
    },
}

impl Engine {
    /// Removes the container `key`. A running container is refused unless `force`, which kills
    /// it first (SIGKILL, as Docker's `rm -f`). Returns the removed container's name.
    pub fn remove(&mut self, key: &str, force: bool) -> Result<String, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            if !force {
                return Err(RemoveError::Running {
                    container: c.name.to_string(),
                }
                .into());
            }
            self.kill_and_wait(&c.id, "KILL", std::time::Duration::from_secs(10))?;
        } else if crate::lock::monitor_running(&self.paths, &c.id) {
            if !force {
                return Err(RemoveError::Starting {
                    container: c.name.to_string(),
                }
                .into());
            }
            self.end_starting_monitor(&c.id)?;
        }
        purge(self, &c.id)?;
        Ok(c.name.to_string())
    }
}

impl Engine {
    /// Ends a monitor that is still setting up (or waiting for an attach client that died):
    /// SIGKILL by its recorded pid once it has recorded itself (its start time proves it is
    /// the same process), then waits for its lock to be free.
    fn end_starting_monitor(&mut self, id: &str) -> Result<(), EngineError> {
        use std::time::{Duration, Instant};
        let end = Instant::now() + Duration::from_secs(5);
        while crate::lock::monitor_running(&self.paths, id) {
            if let Some(c) = state::by_id(self.store.conn(), id)? {
                if crate::reconcile::monitor_alive(&c.state) {
                    if let Some(pid) = Some(c.state.monitor_pid)
                        .filter(|p| *p > 0)
                        .and_then(rustix::process::Pid::from_raw)
                    {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            if Instant::now() > end {
                return Err(RemoveError::MonitorStuck { id: id.to_string() }.into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.runtime.kill(id, "KILL");
        Ok(())
    }
}

/// Releases the kernel-side resources of container `id`: runtime state, network sandbox
/// bind mount, rootfs mount, run dir. Idempotent; returns the failures it met.
pub fn release_resources(engine: &mut Engine, id: &str) -> Vec<EngineError> {
    let mut errors = Vec::new();
    if let Err(e) = engine.runtime.delete(id) {
        errors.push(e);
    }
    berth_sys::failpoint::hit("release::after-runtime-delete");
    // Endpoints before the sandbox: the veths and rules go, then the namespace.
    errors.extend(engine.detach_networks(id));
    berth_sys::failpoint::hit("release::after-detach");
    let key = engine.paths.sandbox_key(id);
    if key.exists() {
        if let Err(e) = berth_net::Sandbox::remove(&engine.paths.runroot, id) {
            errors.push(berth_net::NetError::from(e).into());
        }
    }
    berth_sys::failpoint::hit("release::after-sandbox");
    if let Err(e) = crate::rootfs::unmount(&engine.paths.rootfs(id)) {
        errors.push(e);
    }
    let run = engine.paths.run_dir(id);
    if run.exists() {
        if let Err(e) = std::fs::remove_dir_all(&run) {
            errors.push(EngineError::io(&run, e));
        }
    }
    errors
}

/// Releases resources, deletes `<root>/containers/<id>` and the record.
pub fn purge(engine: &mut Engine, id: &str) -> Result<(), EngineError> {
    let mut errors = release_resources(engine, id);
    berth_sys::failpoint::hit("rm::after-release");
    let dir = engine.paths.container_dir(id);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            errors.push(EngineError::io(&dir, e));
        }
    }
    state::delete(&mut engine.store, id)?;
    let _ = std::fs::remove_file(engine.paths.monitor_lock(id));
    match errors.into_iter().next() {
        None => Ok(()),
        Some(e) => Err(e),
    }
}
