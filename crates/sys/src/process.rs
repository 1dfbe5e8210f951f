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
