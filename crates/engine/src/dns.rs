//! Starting and nudging the embedded DNS server (`berth dns`, one per host; shared/DESIGN.md
//! "Process model"). It holds an flock on `<runroot>/locks/dns` while it runs and writes its
//! pid to `<runroot>/dns.pid`; a SIGHUP makes it re-read the networks it must listen on.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use berth_net::NetworkState;
use rustix::fs::{flock, FlockOperation};

use crate::Paths;

fn lock_path(paths: &Paths) -> std::path::PathBuf {
    paths.runroot.join("locks").join("dns")
}

/// The running server's pid, if one holds the lock.
pub fn running_pid(paths: &Paths) -> Option<i32> {
    let path = lock_path(paths);
    let file = std::fs::File::options().write(true).open(&path).ok()?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
        // We got the lock: nobody serves.
        return None;
    }
    std::fs::read_to_string(paths.runroot.join("dns.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Makes sure a server runs when `network` has embedded DNS (starting one, detached, if none
/// does). A running server already listens on every DNS network: `network create`/`rm` send
/// it [`reload`], so container starts need not. Best effort: name resolution is a service of
/// the network, not a condition for starting a container.
pub fn ensure(paths: &Paths, network: &NetworkState) {
    if !network.dns || running_pid(paths).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let log = std::fs::File::create(paths.runroot.join("dns.log")).ok();
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&paths.root)
        .arg("--runroot")
        .arg(&paths.runroot)
        .arg("dns")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    match log {
        Some(f) => cmd.stderr(f),
        None => cmd.stderr(Stdio::null()),
    };
    if let Err(e) = cmd.spawn() {
        tracing::warn!(error = %e, "cannot start the embedded DNS server");
    }
}

/// Sends SIGHUP to a running server so it re-reads the networks (after create/rm).
pub fn reload(paths: &Paths) {
    if let Some(pid) = running_pid(paths) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
}
