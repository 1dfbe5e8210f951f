//! Which processes hold which sockets: a scan of `/proc/*/fd` for links of the
//! form `socket:[INODE]` (proc(5)), plus each owner's `comm` and `cgroup`.
//!
//! Processes come and go during the scan; a process or fd that vanishes (or is
//! unreadable) is skipped, never an error.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of a `/proc` scan.
#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    /// The proc root itself could not be listed.
    #[error("cannot list {path}: {source}; is procfs mounted?")]
    ReadRoot {
        /// The proc root (normally `/proc`).
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
}

/// A process that owns a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessInfo {
    /// Process id (in berth's pid namespace).
    pub pid: i32,
    /// Command name from `/proc/PID/comm` (at most 15 bytes, trailing newline removed).
    pub comm: String,
    /// Full content of `/proc/PID/cgroup` (one `ID:CONTROLLERS:PATH` line per hierarchy).
    pub cgroup: String,
}

/// Finds the processes that hold a file descriptor on each socket inode in
/// `inodes`, scanning `/proc`. Inodes nobody holds (or that only processes we
/// cannot inspect hold) are absent from the map. A process appears once per
/// inode even if it has several fds on it.
///
/// Errors: [`ProcfsError::ReadRoot`] if `/proc` cannot be listed.
pub fn owners_of_inodes(inodes: &[u64]) -> Result<HashMap<u64, Vec<ProcessInfo>>, ProcfsError> {
    owners_of_inodes_in(Path::new("/proc"), inodes)
}

/// [`owners_of_inodes`] against another proc root (a fake tree in tests).
///
/// Errors: [`ProcfsError::ReadRoot`] if `proc_root` cannot be listed.
pub fn owners_of_inodes_in(
    proc_root: &Path,
    inodes: &[u64],
) -> Result<HashMap<u64, Vec<ProcessInfo>>, ProcfsError> {
    let wanted: HashSet<u64> = inodes.iter().copied().collect();
    let mut owners: HashMap<u64, Vec<ProcessInfo>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(owners);
    }
    let entries = fs::read_dir(proc_root).map_err(|source| ProcfsError::ReadRoot {
        path: proc_root.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let held = socket_inodes_of(&dir, &wanted);
        if held.is_empty() {
            continue;
        }
        let info = process_info(&dir, pid);
        for inode in held {
            owners.entry(inode).or_default().push(info.clone());
        }
    }
    for list in owners.values_mut() {
        list.sort_by_key(|p| p.pid);
    }
    Ok(owners)
}

/// Socket inodes from `wanted` that process directory `dir` holds (deduplicated).
fn socket_inodes_of(dir: &Path, wanted: &HashSet<u64>) -> HashSet<u64> {
    let Ok(fds) = fs::read_dir(dir.join("fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| parse_socket_link(target.to_str()?))
        .filter(|inode| wanted.contains(inode))
        .collect()
}

/// Parses an fd link target `socket:[12345]` into the inode number.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn process_info(dir: &Path, pid: i32) -> ProcessInfo {
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    ProcessInfo {
        pid,
        comm: read("comm").trim_end_matches('\n').to_string(),
        cgroup: read("cgroup"),
    }
}

/// Pids of every process whose `/proc/PID/cgroup` satisfies `pred`, scanning
/// `proc_root`. Vanishing processes are skipped.
///
/// Errors: [`ProcfsError::ReadRoot`] if `proc_root` cannot be listed.
pub fn pids_where_cgroup(
    proc_root: &Path,
    pred: impl Fn(&str) -> bool,
) -> Result<Vec<i32>, ProcfsError> {
    let entries = fs::read_dir(proc_root).map_err(|source| ProcfsError::ReadRoot {
        path: proc_root.to_path_buf(),
        source,
    })?;
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
                .map(|c| pred(&c))
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fake_proc(dir: &Path, pid: i32, comm: &str, cgroup: &str, links: &[&str]) {
        let p = dir.join(pid.to_string());
        fs::create_dir_all(p.join("fd")).unwrap();
        fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
        fs::write(p.join("cgroup"), cgroup).unwrap();
        for (i, target) in links.iter().enumerate() {
            symlink(target, p.join("fd").join(i.to_string())).unwrap();
        }
    }

    #[test]
    fn parses_socket_links_only() {
        assert_eq!(parse_socket_link("socket:[4242]"), Some(4242));
        assert_eq!(parse_socket_link("pipe:[4242]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[x]"), None);
    }

    #[test]
    fn finds_owners_in_fake_proc_tree() {
        let root = tempfile::tempdir().unwrap();
        fake_proc(
            root.path(),
            10,
            "nginx",
            "0::/berth/abc\n",
            &["socket:[100]", "socket:[100]", "pipe:[5]", "socket:[200]"],
        );
        fake_proc(root.path(), 11, "worker", "", &["socket:[100]"]);
        fake_proc(root.path(), 12, "other", "", &["socket:[300]"]);
        // A non-pid entry and a pid dir without fd/ (vanished process) are skipped.
        fs::create_dir_all(root.path().join("self_like")).unwrap();
        fs::create_dir_all(root.path().join("13")).unwrap();

        let owners = owners_of_inodes_in(root.path(), &[100, 200, 999]).unwrap();
        let pids = |i: u64| owners[&i].iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(100), vec![10, 11]);
        assert_eq!(pids(200), vec![10]);
        assert!(!owners.contains_key(&999));
        assert!(!owners.contains_key(&300));
        assert_eq!(owners[&200][0].comm, "nginx");
        assert_eq!(owners[&200][0].cgroup, "0::/berth/abc\n");

        let in_berth = pids_where_cgroup(root.path(), |c| c.contains("/berth/")).unwrap();
        assert_eq!(in_berth, vec![10]);
    }

    #[test]
    fn finds_own_socket_in_real_proc() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id() as i32;
        let fd_dir = PathBuf::from(format!("/proc/{me}/fd"));
        let inode = fs::read_dir(fd_dir)
            .unwrap()
            .flatten()
            .filter_map(|e| parse_socket_link(fs::read_link(e.path()).ok()?.to_str()?))
            .next()
            .expect("our listener shows up as a socket fd");
        let owners = owners_of_inodes(&[inode]).unwrap();
        assert!(owners[&inode].iter().any(|p| p.pid == me));
        drop(listener);
    }
}
