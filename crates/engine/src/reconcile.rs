//! Recovery (shared/DESIGN.md "Storage"): before acting, every command compares what the
//! store says with what the kernel has. A container recorded as running whose monitor is gone
//! (kill -9) is killed, its resources released and its exit recorded; a container that is not
//! running keeps no mount or sandbox. So a crash at any point leaks nothing.

use crate::state::{self, Container, ContainerState, Status};
use crate::{Engine, EngineError};

/// Start time of `pid` in clock ticks since boot (proc(5), /proc/PID/stat field 22), or
/// `None` if the process is gone.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s.get(i + 2..i + 3))
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Whether the monitor recorded in `s` is still the same live process.
pub fn monitor_alive(s: &ContainerState) -> bool {
    s.monitor_pid > 0
        && pid_alive(s.monitor_pid)
        && process_start_time(s.monitor_pid) == Some(s.monitor_start)
}

impl Engine {
    /// Reconciles one container and returns its current record.
    pub fn reconcile_one(&mut self, c: Container) -> Result<Container, EngineError> {
        // A live monitor (even one that has not recorded itself yet) holds the lock.
        let Some(_lock) = crate::lock::MonitorLock::try_acquire(&self.paths, &c.id)? else {
            return self.container(&c.id);
        };
        // No monitor can start while we hold the lock: judge from a fresh read.
        let c = self.container(&c.id)?;
        if monitor_alive(&c.state) {
            // A live monitor holds its lock under the runroot it was started with: a free lock
            // here means another runroot, never a dead monitor. Leave the container alone.
            tracing::warn!(id = %c.id, "monitor alive but its lock is free: another runroot?");
            return Ok(c);
        }
        let stale = c.state.monitor_pid != 0
            || matches!(c.state.status, Status::Running | Status::Restarting);
        let leftovers = crate::rootfs::is_mounted(&self.paths.rootfs(&c.id))
            || self.paths.sandbox_key(&c.id).exists()
            || self.paths.run_dir(&c.id).exists();
        if !stale && !leftovers {
            return Ok(c);
        }
        tracing::info!(id = %c.id, "monitor gone: releasing the container's resources");
        if c.state.pid > 0 && pid_alive(c.state.pid) {
            let _ = self.runtime.kill(&c.id, "KILL");
        }
        for e in crate::remove::release_resources(self, &c.id) {
            tracing::warn!(id = %c.id, error = %e, "reconcile");
        }
        let was_running = matches!(c.state.status, Status::Running | Status::Restarting);
        state::update_state(&mut self.store, &c.id, |s| {
            if was_running {
                s.status = Status::Exited;
                s.exit_code = 137;
                s.finished_at = Some(chrono::Utc::now());
                s.error = "the container's monitor died; the container was stopped".into();
            }
            s.pid = 0;
            s.monitor_pid = 0;
            s.monitor_start = 0;
            s.sandbox_key.clear();
        })?;
        if c.config.auto_remove && was_running {
            drop(_lock);
            crate::remove::purge(self, &c.id)?;
            return Err(EngineError::NoSuchContainer(c.id));
        }
        self.container(&c.id)
    }

    /// Reconciles every container (run at the start of listing commands).
    pub fn reconcile_all(&mut self) -> Result<(), EngineError> {
        for c in self.containers()? {
            match self.reconcile_one(c) {
                Ok(_) | Err(EngineError::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_with_a_start_time() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(process_start_time(me).is_some());
        let s = ContainerState {
            monitor_pid: me,
            monitor_start: process_start_time(me).unwrap(),
            ..ContainerState::created()
        };
        assert!(monitor_alive(&s));
        let recycled = ContainerState {
            monitor_start: 1,
            ..s
        };
        assert!(!monitor_alive(&recycled));
    }
}
