//! Starting and nudging the embedded DNS server (`berth dns`, one per host; shared/DESIGN.md
//! "Process model"). It holds an flock on `<runroot>/locks/dns` while it runs and writes its
//! pid to `<runroot>/dns.pid`; a SIGHUP makes it re-read the networks it must listen on.
//!
//! Self-repair (issue 11, item 8): a server killed with -9 leaves a stale pid file but no lock,
//! so every CLI command probes the lock (one flock(2), [`Engine::repair_dns`]) and, when no
//! server holds it while a DNS network exists, starts one and waits until it has bound UDP
//! port 53 on every DNS gateway, so the first query after the command is answered.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_net::NetworkState;

use crate::{Engine, Paths};

/// The DNS port (RFC 1035 §4.2).
const DNS_PORT: u16 = 53;

/// How long a command that started the server waits for its sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

fn lock_path(paths: &Paths) -> std::path::PathBuf {
    paths.runroot.join("locks").join("dns")
}

/// The running server's pid, if one holds the lock.
pub fn running_pid(paths: &Paths) -> Option<i32> {
    let path = lock_path(paths);
    if !path.exists() || berth_sys::flock::is_free(&path) {
        // No lock file, or we got the lock: nobody serves.
        return None;
    }
    std::fs::read_to_string(paths.runroot.join("dns.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// Makes sure a server runs when `network` has embedded DNS (starting one, detached, if none
/// does, and waiting until it listens on this network's gateways). A running server already
/// listens on every DNS network: `network create`/`rm` send it [`reload`], so container starts
/// need not. Best effort: name resolution is a service of the network, not a condition for
/// starting a container.
pub fn ensure(paths: &Paths, network: &NetworkState) {
    if !network.dns || running_pid(paths).is_some() {
        return;
    }
    if spawn(paths) {
        wait_listening(&gateways(std::slice::from_ref(network)));
    }
}

impl Engine {
    /// Restarts the embedded DNS server when a DNS-enabled network exists and no server holds
    /// the lock (it was killed), and waits until it listens on every DNS gateway. Costs one
    /// flock(2) probe when a server runs; reads the networks only when none does. Best effort:
    /// failures are logged, never returned.
    pub fn repair_dns(&mut self) {
        if running_pid(&self.paths).is_some() {
            return;
        }
        let networks = match self.networks() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read networks to check the DNS server");
                return;
            }
        };
        let dns: Vec<NetworkState> = networks.into_iter().filter(|n| n.dns).collect();
        if dns.is_empty() {
            return;
        }
        tracing::info!("DNS networks exist but no DNS server runs: restarting it");
        if spawn(&self.paths) {
            wait_listening(&gateways(&dns));
        }
    }
}

/// The gateway addresses of `networks` (where the server listens).
fn gateways(networks: &[NetworkState]) -> Vec<IpAddr> {
    networks
        .iter()
        .flat_map(|n| n.subnets.iter().map(|s| s.gateway))
        .collect()
}

/// Starts `berth dns` detached (own process group, stdio to /dev/null and `dns.log`).
/// Returns whether the process was spawned.
fn spawn(paths: &Paths) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
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
    match cmd.spawn() {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the embedded DNS server");
            false
        }
    }
}

/// Waits (at most [`READY_TIMEOUT`]) until a UDP socket is bound to port 53 on every address
/// of `gateways` in this namespace (netlink sock_diag), so a query sent right after is not
/// refused with ICMP port unreachable.
fn wait_listening(gateways: &[IpAddr]) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let bound = match berth_sys::sockdiag::list_listeners() {
            Ok(l) => gateways.iter().all(|gw| {
                l.iter().any(|s| {
                    s.proto == berth_sys::sockdiag::Proto::Udp
                        && s.port == DNS_PORT
                        && s.addr == *gw
                })
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list sockets to see the DNS server listen");
                return;
            }
        };
        if bound {
            return;
        }
        if Instant::now() > deadline {
            tracing::warn!(?gateways, "the DNS server is not listening yet");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops the server of `paths` if one runs (SIGTERM) and waits up to [`READY_TIMEOUT`] for it
/// to release its lock. For a runroot being given up: its server would keep the gateways.
pub fn stop(paths: &Paths) {
    let Some(pid) = running_pid(paths) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    while running_pid(paths).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGHUP to a running server so it re-reads the networks (after create/rm).
pub fn reload(paths: &Paths) {
    if let Some(pid) = running_pid(paths).and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
    }
}
