//! The monitor lock: `<runroot>/locks/<id>`, held (flock(2), exclusive) by a container's
//! monitor for its whole life. The starting CLI takes it *before* spawning the monitor and
//! hands the descriptor down, so there is no moment in which a monitor exists but the lock is
//! free. Whoever can take the lock knows no monitor runs: that is how recovery tells a dead
//! monitor from one still starting up, without racing on pids.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use berth_sys::flock;
use rustix::io::{fcntl_setfd, FdFlags};

use crate::{EngineError, Paths};

/// A held monitor lock. Dropping closes this descriptor without an explicit unlock: the
/// kernel releases an flock only when the last descriptor of the open file description
/// closes, so a monitor that inherited a copy keeps it after the starting CLI lets go.
#[derive(Debug)]
pub struct MonitorLock(File);

impl MonitorLock {
    /// Takes the lock of container `id` if free. `Ok(None)`: a monitor holds it.
    pub fn try_acquire(paths: &Paths, id: &str) -> Result<Option<MonitorLock>, EngineError> {
        let path = paths.monitor_lock(id);
        ensure_dir(&path)?;
        Ok(flock::try_lock_exclusive(&path)
            .map_err(lock_error)?
            .map(MonitorLock))
    }

    /// Lets the descriptor survive exec, for handing it to the monitor. Returns its number.
    pub fn inheritable_fd(&self) -> Result<i32, EngineError> {
        let fd = self.0.as_raw_fd();
        fcntl_setfd(&self.0, FdFlags::empty())
            .map_err(|e| crate::monitor::MonitorError::io("fcntl on the monitor lock", e))?;
        Ok(fd)
    }
}

/// Whether a monitor holds the lock of container `id` (a probe: takes and drops it). Another
/// process's probe holds the lock for microseconds, so a refusal is retried twice before it
/// counts as a monitor.
pub fn monitor_running(paths: &Paths, id: &str) -> bool {
    for attempt in 0..3 {
        if matches!(MonitorLock::try_acquire(paths, id), Ok(Some(_))) {
            return false;
        }
        if attempt < 2 {
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    }
    true
}

/// Waits until no monitor holds the lock of container `id`, for at most `timeout`. True if it
/// was released (or never held). A thread blocks in flock(2) and takes-and-drops the lock the
/// moment the monitor's last descriptor closes, so the caller wakes at once instead of at the
/// next tick of a polling loop (polling every 20 ms cost `stop`/`rm -f` ~15 ms on average). On
/// timeout the thread stays blocked until the lock frees or the process exits.
pub fn wait_released(paths: &Paths, id: &str, timeout: std::time::Duration) -> bool {
    let path = paths.monitor_lock(id);
    let Ok(file) = ensure_dir(&path).and_then(|()| flock::open(&path).map_err(lock_error)) else {
        return !monitor_running(paths, id);
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let taken = flock::lock_file(&file, true).is_ok();
        drop(file);
        let _ = tx.send(taken);
    });
    rx.recv_timeout(timeout).unwrap_or(false)
}

/// Takes an exclusive flock(2) on `path` (created, with its directory, if missing), waiting
/// for other holders; released when the returned file is dropped. For the short, host-wide
/// critical sections (`<runroot>/locks/networks`, `<runroot>/locks/host-ports`).
pub fn exclusive(path: &Path) -> Result<File, EngineError> {
    ensure_dir(path)?;
    flock::lock_exclusive(path).map_err(lock_error)
}

/// Creates the directory of lock file `path` (`<runroot>/locks`) if missing.
fn ensure_dir(path: &Path) -> Result<(), EngineError> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e)),
        None => Ok(()),
    }
}

/// A lock file that cannot be opened or locked, as the engine reports file errors.
fn lock_error(e: flock::FlockError) -> EngineError {
    let path = e.path().to_path_buf();
    EngineError::io(&path, e.into_io())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_tells_a_live_holder() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: d.path().join("root"),
            runroot: d.path().join("run"),
        };
        assert!(!monitor_running(&paths, "abc"));
        let held = MonitorLock::try_acquire(&paths, "abc")
            .unwrap()
            .expect("free");
        assert!(monitor_running(&paths, "abc"));
        assert!(MonitorLock::try_acquire(&paths, "abc").unwrap().is_none());
        // A copy of the descriptor (as a monitor inherits it) keeps the lock after the
        // original is dropped.
        let copy = held.0.try_clone().unwrap();
        drop(held);
        assert!(monitor_running(&paths, "abc"));
        drop(copy);
        assert!(!monitor_running(&paths, "abc"));
    }

    #[test]
    fn waiting_for_a_release_wakes_when_the_holder_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: d.path().join("root"),
            runroot: d.path().join("run"),
        };
        assert!(wait_released(
            &paths,
            "free",
            std::time::Duration::from_millis(50)
        ));
        let held = MonitorLock::try_acquire(&paths, "abc")
            .unwrap()
            .expect("free");
        let waiter = {
            let paths = paths.clone();
            std::thread::spawn(move || {
                wait_released(&paths, "abc", std::time::Duration::from_secs(5))
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !waiter.is_finished(),
            "the waiter blocks while the lock is held"
        );
        drop(held);
        assert!(waiter.join().unwrap(), "a released lock wakes the waiter");
        let held = MonitorLock::try_acquire(&paths, "abc")
            .unwrap()
            .expect("free again");
        assert!(!wait_released(
            &paths,
            "abc",
            std::time::Duration::from_millis(30)
        ));
        drop(held);
    }
}
