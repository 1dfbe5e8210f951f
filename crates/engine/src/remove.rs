//! `rm`: stop if asked (`-f`), release what the container held in the kernel, delete its
//! files and record. Teardown is best effort and collects every failure.

use berth_sys::netns::NetNs;

use crate::state::{self, Status};
use crate::{Engine, EngineError};

impl Engine {
    /// Removes the container `key`. A running container is refused unless `force`, which kills
    /// it first (SIGKILL, as Docker's `rm -f`). Returns the removed container's name.
    pub fn remove(&mut self, key: &str, force: bool) -> Result<String, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            if !force {
                return Err(EngineError::Invalid(format!(
                    "cannot remove container {}: it is running; stop it first or use rm -f",
                    c.name
                )));
            }
            self.kill_and_wait(&c.id, "KILL", std::time::Duration::from_secs(10))?;
        } else if crate::reconcile::monitor_alive(&c.state) {
            // A monitor still setting up (or waiting for a client that died): end it by its
            // recorded pid (it is ours: same start time), then release what it made.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.state.monitor_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while crate::reconcile::pid_alive(c.state.monitor_pid)
                && std::time::Instant::now() < end
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = self.runtime.kill(&c.id, "KILL");
        }
        purge(self, &c.id)?;
        Ok(c.name.to_string())
    }
}

/// Releases the kernel-side resources of container `id`: runtime state, network sandbox
/// bind mount, rootfs mount, run dir. Idempotent; returns the failures it met.
pub fn release_resources(engine: &Engine, id: &str) -> Vec<EngineError> {
    let mut errors = Vec::new();
    if let Err(e) = engine.runtime.delete(id) {
        errors.push(e);
    }
    let key = engine.paths.sandbox_key(id);
    if key.exists() {
        if let Err(e) = NetNs::remove(&key) {
            errors.push(e.into());
        }
    }
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
    let dir = engine.paths.container_dir(id);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            errors.push(EngineError::io(&dir, e));
        }
    }
    state::delete(&mut engine.store, id)?;
    match errors.into_iter().next() {
        None => Ok(()),
        Some(e) => Err(e),
    }
}
