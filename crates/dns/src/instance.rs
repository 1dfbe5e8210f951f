//! One server per host: an exclusive flock on `<runroot>/locks/dns` held for the whole run,
//! and the server's pid in `<runroot>/dns.pid` for the network manager's SIGHUP.
//!
//! The hand-over protocol with the manager, which after committing a network change reads the
//! pid file and either sends SIGHUP to that pid or, when there is none, starts `berth dns`:
//! - a running server removes its pid file *before* it checks one last time whether any
//!   network is left, and writes it back if one appeared; it drops the lock only after that;
//! - a starting server that finds the lock held exits at once when the pid file exists (the
//!   holder will get the SIGHUP), and otherwise waits for the lock or the pid file: the holder
//!   is either retiring (and will release the lock) or is just starting (and will write it).
//!
//! So whatever the interleaving, a committed network is served by exactly one process.
//! Sources: flock(2) (the lock goes with the process, so a crashed server leaves none).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_sys::flock;

/// How long a starting server waits for a retiring or starting holder to settle.
const SETTLE: Duration = Duration::from_secs(5);

/// Errors of claiming the single-instance lock.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// A file or directory under the run root could not be made.
    #[error("cannot create {path}: {source}; check --runroot")]
    Create {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// flock(2) failed for another reason than contention.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The claim of being the host's DNS server; dropping it removes the pid file and the lock.
#[derive(Debug)]
pub struct Instance {
    _lock: File,
    pid_path: PathBuf,
}

impl Instance {
    /// Takes the lock and writes the pid file, or returns `None` when another server is
    /// running (see the module docs for the protocol).
    ///
    /// Errors: [`InstanceError`].
    pub fn acquire(runroot: &Path) -> Result<Option<Instance>, InstanceError> {
        let locks = runroot.join("locks");
        std::fs::create_dir_all(&locks).map_err(|source| InstanceError::Create {
            path: locks.clone(),
            source,
        })?;
        let lock_path = locks.join("dns");
        let pid_path = runroot.join("dns.pid");
        let deadline = Instant::now() + SETTLE;
        loop {
            let taken = flock::try_lock_exclusive(&lock_path).map_err(|e| match e {
                flock::FlockError::Open { path, source } => InstanceError::Create { path, source },
                flock::FlockError::Lock { path, source } => InstanceError::Lock { path, source },
            })?;
            if let Some(lock) = taken {
                let me = Instance {
                    _lock: lock,
                    pid_path,
                };
                me.write_pid()?;
                return Ok(Some(me));
            }
            if pid_path.exists() || Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// (Re)writes `<runroot>/dns.pid` atomically (temp file + rename, so a reader never sees
    /// half a pid).
    ///
    /// Errors: [`InstanceError::Create`].
    pub fn write_pid(&self) -> Result<(), InstanceError> {
        let tmp = self.pid_path.with_extension("pid.tmp");
        let err = |source| InstanceError::Create {
            path: self.pid_path.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(err)?;
        writeln!(f, "{}", std::process::id()).map_err(err)?;
        std::fs::rename(&tmp, &self.pid_path).map_err(err)
    }

    /// Removes the pid file (the first step of retiring; the lock is still held).
    pub fn retire(&self) {
        if let Err(e) = std::fs::remove_file(&self.pid_path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.pid_path.display(), error = %e, "cannot remove pid file");
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.retire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_instance_backs_off_while_the_first_runs() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::acquire(dir.path())
            .unwrap()
            .expect("first instance");
        let pid = std::fs::read_to_string(dir.path().join("dns.pid")).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        // flock locks belong to the open file description, so a second open in this same
        // process contends exactly like another process would.
        let t0 = Instant::now();
        assert!(Instance::acquire(dir.path()).unwrap().is_none());
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "gave up at once: pid file present"
        );
        drop(first);
        assert!(!dir.path().join("dns.pid").exists());
        assert!(Instance::acquire(dir.path()).unwrap().is_some());
    }

    #[test]
    fn starting_instance_waits_for_a_retiring_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::acquire(dir.path()).unwrap().unwrap();
        first.retire();
        let root = dir.path().to_path_buf();
        let second = std::thread::spawn(move || Instance::acquire(&root).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
        assert!(second.join().unwrap(), "the waiting instance took over");
    }

    #[test]
    fn holder_that_reclaims_keeps_the_newcomer_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::acquire(dir.path()).unwrap().unwrap();
        first.retire();
        let root = dir.path().to_path_buf();
        let second = std::thread::spawn(move || Instance::acquire(&root).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(200));
        first.write_pid().unwrap();
        assert!(
            !second.join().unwrap(),
            "the newcomer saw the pid file come back and left"
        );
    }
}
