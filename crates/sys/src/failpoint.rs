//! Fault injection for the end-to-end suites: named steps of `run`, `rm` and the network
//! commands ([`hit`]) where a test makes the real binary die, to prove that the next command
//! repairs what the dead one left (tests/suites/16_faults.rs; the step names are listed in
//! tests/README.md).
//!
//! Built only with the cargo feature `failpoints` (`make test` builds the binary the suites
//! use with it; `make build` and `make release` do not): without it [`hit`] is an empty inline
//! function and [`setup`] does nothing, so production builds pay nothing. With it, the steps
//! are armed at run time by the environment variable [`ENV`] through the `fail` crate:
//!
//! `BERTH_FAILPOINTS='attach::after-veth;network-rm::after-firewall=return(stop)'`
//!
//! Each entry is a step name, optionally `=` and one of `fail`'s actions. `return` (the
//! default) makes the process SIGKILL itself at that step (signal(7): no unwinding, no
//! destructor, like a crash or an OOM kill); `return(stop)` makes it SIGSTOP itself, so the
//! test can look at the half-done state and SIGKILL it; `fail`'s other actions (`sleep(MS)`,
//! `pause`, `panic`, `N*action`, ...) work as documented there. Both `kill` and `stop` print
//! `berth: failpoint NAME: ...` to stderr first (the monitor's goes to its monitor.log).

/// The environment variable that arms failpoints (see the module header).
pub const ENV: &str = "BERTH_FAILPOINTS";

/// A `BERTH_FAILPOINTS` entry that `fail` does not accept.
#[derive(Debug, thiserror::Error)]
#[error("{ENV}: bad entry {entry:?}: {reason} (expected NAME or NAME=ACTION, separated by ';')")]
pub struct FailpointError {
    /// The entry as written.
    pub entry: String,
    /// `fail`'s reason.
    pub reason: String,
}

/// Arms the failpoints named in [`ENV`], once at start-up. Without the `failpoints` feature,
/// or without the variable, does nothing.
///
/// # Errors
/// [`FailpointError`] for an entry whose action `fail` cannot parse.
pub fn setup() -> Result<(), FailpointError> {
    #[cfg(feature = "failpoints")]
    if let Some(spec) = std::env::var_os(ENV) {
        for entry in spec.to_string_lossy().split(';').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let (name, action) = entry.split_once('=').unwrap_or((entry, "return"));
            fail::cfg(name.trim(), action.trim()).map_err(|reason| FailpointError {
                entry: entry.to_string(),
                reason,
            })?;
        }
    }
    Ok(())
}

/// The step `name` of a command: with the feature, runs the action [`ENV`] gives it (if any);
/// without it, nothing.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    fail::fail_point!(name, |arg: Option<String>| die(name, arg.as_deref()));
}

/// The step `name` of a command: with the feature, runs the action [`ENV`] gives it (if any);
/// without it, nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// The `return` action: SIGKILL (default) or SIGSTOP (`return(stop)`) to the process itself.
#[cfg(feature = "failpoints")]
fn die(name: &str, arg: Option<&str>) {
    use nix::sys::signal::{raise, Signal};
    let (signal, what) = match arg {
        Some("stop") => (Signal::SIGSTOP, "stopping (SIGSTOP)"),
        _ => (Signal::SIGKILL, "killing itself (SIGKILL)"),
    };
    eprintln!("berth: failpoint {name}: {what}");
    let _ = raise(signal);
}
