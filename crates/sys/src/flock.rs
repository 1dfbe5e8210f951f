//! Lock files: an exclusive flock(2) on a file berth processes share (`<runroot>/locks/*`,
//! `images/lock`, the firewall lock). The one place berth takes flocks.
//!
//! A lock belongs to the open file description (flock(2)): it is released when the last
//! descriptor of that description closes, not when one copy is dropped. So the helpers return
//! the open [`File`] and never unlock explicitly: dropping the file releases the lock unless a
//! copy lives on (a monitor that inherited it keeps it after the starting CLI exits).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Errors of taking a lock file.
#[derive(Debug, thiserror::Error)]
pub enum FlockError {
    /// The lock file (or its directory) could not be created or opened.
    #[error("cannot open the lock file {path}: {source}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// flock(2) failed for another reason than contention.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl FlockError {
    /// The path of the lock file concerned.
    pub fn path(&self) -> &Path {
        match self {
            Self::Open { path, .. } | Self::Lock { path, .. } => path,
        }
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        match self {
            Self::Open { source, .. } | Self::Lock { source, .. } => source,
        }
    }

    /// The OS error, by value (for callers that wrap it in their own io variant).
    pub fn into_io(self) -> io::Error {
        match self {
            Self::Open { source, .. } | Self::Lock { source, .. } => source,
        }
    }
}

/// Opens the lock file `path`, creating it if missing (never truncating). Its directory must
/// exist: callers own their lock directories.
///
/// Errors: [`FlockError::Open`].
pub fn open(path: &Path) -> Result<File, FlockError> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| FlockError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Takes an exclusive lock on `path` (see [`open`]), waiting for other holders. Released
/// when the returned file (and every copy of its descriptor) is closed.
///
/// Errors: [`FlockError::Open`], [`FlockError::Lock`].
pub fn lock_exclusive(path: &Path) -> Result<File, FlockError> {
    let file = open(path)?;
    lock_file(&file, true)
        .map_err(|source| lock_err(path, source))?
        .then_some(file)
        .ok_or_else(|| lock_err(path, io::ErrorKind::WouldBlock.into()))
}

/// Takes an exclusive lock on `path` (see [`open`]) if nobody holds it: `Ok(None)` when
/// another open file description does.
///
/// Errors: [`FlockError::Open`], [`FlockError::Lock`].
pub fn try_lock_exclusive(path: &Path) -> Result<Option<File>, FlockError> {
    let file = open(path)?;
    let taken = lock_file(&file, false).map_err(|source| lock_err(path, source))?;
    Ok(taken.then_some(file))
}

/// Whether an exclusive lock on `path` is free now, without creating the file: a probe that
/// takes and drops it. A missing file counts as free.
pub fn is_free(path: &Path) -> bool {
    let Ok(file) = File::options().write(true).open(path) else {
        return true;
    };
    matches!(lock_file(&file, false), Ok(true))
}

/// Takes an exclusive flock(2) on `file`, waiting when `wait`. `Ok(false)`: not waiting and
/// held by another open file description (`EWOULDBLOCK`).
///
/// Errors: the OS error of flock(2) (`EINTR` is retried).
pub fn lock_file(file: &File, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) on a descriptor `file` owns and keeps open for the whole call; it
        // reads no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

fn lock_err(path: &Path, source: io::Error) -> FlockError {
    FlockError::Lock {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_others_until_its_last_copy_closes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x");
        assert!(is_free(&path), "a missing file is free");
        let held = try_lock_exclusive(&path).unwrap().expect("free");
        assert!(!is_free(&path));
        assert!(try_lock_exclusive(&path).unwrap().is_none());
        let copy = held.try_clone().unwrap();
        drop(held);
        assert!(!is_free(&path), "a copy of the descriptor keeps the lock");
        drop(copy);
        assert!(is_free(&path));
        let again = lock_exclusive(&path).unwrap();
        assert!(!is_free(&path));
        drop(again);
    }

    #[test]
    fn a_blocked_locker_wakes_when_the_holder_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("l");
        let held = lock_exclusive(&path).unwrap();
        let p = path.clone();
        let waiter = std::thread::spawn(move || lock_exclusive(&p).map(drop));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !waiter.is_finished(),
            "the waiter blocks while the lock is held"
        );
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn an_unopenable_path_is_an_open_error() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = lock_exclusive(&file.join("below")).unwrap_err();
        assert!(matches!(e, FlockError::Open { .. }), "{e}");
        let e = try_lock_exclusive(&d.path().join("no/such/dir")).unwrap_err();
        assert!(
            matches!(e, FlockError::Open { .. }),
            "no directory is made: {e}"
        );
    }
}
