//! Process-wide settings of the berth CLI.

use nix::sys::signal::{signal, SigHandler, Signal};

/// Restores the default action of SIGPIPE (terminate), which the Rust runtime sets to
/// "ignore" at start-up. A CLI whose output goes into `| head` should then end quietly, like
/// every Unix tool, instead of failing (or panicking in `println!`) on EPIPE (signal(7)).
///
/// Not for long-lived processes that write to sockets of clients that may go away (the
/// monitor), which must see EPIPE as an error instead.
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL runs no handler code, so none of signal-safety(7)'s
    // restrictions on handlers apply; called once at start-up before threads are spawned.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The environment variable naming a test pause point (see [`pause_at`]).
pub const PAUSE_ENV: &str = "BERTH_TEST_PAUSE_AT";

/// A test hook, compiled in always: when `BERTH_TEST_PAUSE_AT` equals `point`, the process
/// stops itself with SIGSTOP (signal(7)) right there, so an end-to-end test can SIGKILL it at
/// exactly that step and check that the next command repairs what it left. Points:
/// `connect-after-record` (`network connect`: endpoint recorded, no interface yet). Costs one
/// environment lookup when unset.
pub fn pause_at(point: &str) {
    if std::env::var_os(PAUSE_ENV).is_some_and(|v| v == point) {
        eprintln!("berth: {PAUSE_ENV}={point}: stopping (SIGSTOP)");
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    }
}
