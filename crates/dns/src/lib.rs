//! berth-dns: the embedded DNS server of user-defined networks (`berth dns`, one per host,
//! started on demand; shared/DESIGN.md "Process model", issue 3 "Embedded DNS").
//!
//! It listens on each DNS-enabled network's gateway address, port 53, UDP and TCP; answers
//! the names of the containers on *that* network (container name, short id, aliases; A, AAAA,
//! PTR) straight from the store at query time; and forwards everything else to the upstream
//! resolvers of the namespace it runs in.
//!
//! Why hickory-proto plus a small tokio loop rather than hickory-server: the answer depends on
//! which gateway a query arrived on (one network's names per address), names must be read from
//! the store on every query rather than loaded into zones, and forwarding is a byte-level relay
//! with a per-server timeout; hickory-server's catalog/authority model fits none of the three,
//! while hickory-proto gives exactly the wire format. The runtime is single-threaded: store
//! reads are sub-millisecond, and only forwarding waits.
//!
//! - [`records`]: the store queries ([`StoreRecords`]).
//! - [`answer`]: the answer-or-forward decision ([`answer::answer`]).
//! - [`forward`]: relaying to upstream servers with timeouts.
//! - [`resolv`]: upstream servers from resolv.conf.
//! - [`listen`]: sockets on gateway addresses (IP_FREEBIND).
//! - [`instance`]: the single-instance lock and pid file.
//! - `server`: the loop tying them together.

pub mod answer;
pub mod forward;
pub mod instance;
pub mod listen;
pub mod records;
pub mod resolv;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

pub use instance::{Instance, InstanceError};
pub use listen::ListenError;
pub use records::{DnsNetwork, RecordsError, StoreRecords};
pub use resolv::{ForwardOptions, ResolvError};
pub use server::{Command, DNS_PORT, RESYNC};

/// Errors of running the server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The single-instance lock or pid file could not be handled.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// The store could not be opened.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// The tokio runtime or the signal handlers could not be set up.
    #[error("cannot start the DNS server's event loop: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What `berth dns` needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// `--root`: the store is `<root>/berth.db`.
    pub root: PathBuf,
    /// `--runroot`: the pid file `<runroot>/dns.pid` and the lock `<runroot>/locks/dns`.
    pub runroot: PathBuf,
    /// Upstream servers to forward to, in order; `None` reads the `nameserver` lines of
    /// `/etc/resolv.conf` (at start and at every reload). Tests pass their own.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// Per-server timeout and rounds; `None` reads resolv.conf's `options timeout:N
    /// attempts:N` (at start and at every reload), see [`resolv::ForwardOptions`].
    pub forward: Option<resolv::ForwardOptions>,
}

/// The sending side of a server's control channel (tests and embedders; `berth dns` itself is
/// controlled by signals).
#[derive(Debug, Clone)]
pub struct Controller(mpsc::UnboundedSender<Command>);

impl Controller {
    /// Asks the server to re-read networks and resolv.conf and rebind (what SIGHUP does).
    pub fn reload(&self) {
        let _ = self.0.send(Command::Reload);
    }

    /// Asks the server to stop; [`serve_with`] then returns `Ok(())`.
    pub fn stop(&self) {
        let _ = self.0.send(Command::Stop);
    }
}

/// The receiving side of a control channel, consumed by [`serve_with`].
#[derive(Debug)]
pub struct Control(mpsc::UnboundedReceiver<Command>);

/// A new control channel.
pub fn control() -> (Controller, Control) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Controller(tx), Control(rx))
}

/// Runs the host's DNS server until no DNS-enabled network is left, or SIGTERM/SIGINT; SIGHUP
/// re-reads the networks (the network manager sends it after creating or removing one).
/// Blocks; builds its own single-threaded tokio runtime. Returns `Ok(())` at once when another
/// server holds `<runroot>/locks/dns`.
///
/// Errors: [`DnsError`] when it cannot start (lock, store, runtime). Listener bind failures are
/// logged and retried at the next reload rather than fatal.
pub fn serve(cfg: DnsConfig) -> Result<(), DnsError> {
    let (ctl, control) = control();
    run(cfg, control, Some(ctl))
}

/// [`serve`] driven by a [`Controller`] instead of signals (signals are left alone).
///
/// Errors: as [`serve`].
pub fn serve_with(cfg: DnsConfig, control: Control) -> Result<(), DnsError> {
    run(cfg, control, None)
}

fn run(cfg: DnsConfig, control: Control, signals: Option<Controller>) -> Result<(), DnsError> {
    let Some(instance) = Instance::acquire(&cfg.runroot)? else {
        tracing::info!("another berth dns is running");
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DnsError::Runtime)?;
    rt.block_on(async {
        if let Some(ctl) = signals {
            forward_signals(ctl)?;
        }
        server::run(&cfg, &instance, control.0).await?;
        Ok(())
    })
}

/// SIGHUP → reload, SIGTERM/SIGINT → stop. The handlers stay installed until the process
/// exits, so a SIGHUP arriving while the server retires is never fatal (its default action).
fn forward_signals(ctl: Controller) -> Result<(), DnsError> {
    let mut hup = signal(SignalKind::hangup()).map_err(DnsError::Runtime)?;
    let mut term = signal(SignalKind::terminate()).map_err(DnsError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DnsError::Runtime)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => ctl.reload(),
                _ = term.recv() => ctl.stop(),
                _ = int.recv() => ctl.stop(),
            }
        }
    });
    Ok(())
}
