//! Pause points for end-to-end tests of recovery: a command run with
//! `BERTH_TEST_PAUSE_AT=<point>` stops at that point of its work (after printing
//! `berth: paused at <point>` to stderr) and sleeps until it is killed, so a test can kill -9 it
//! exactly there and check what the next command repairs. Compiled into every build (the
//! tests run the real binary) and inert without the variable; never set it in production.
//!
//! Points:
//! - [`NETWORK_RM_AFTER_FIREWALL`]: `network rm` after its firewall rules are gone, before its
//!   bridge and its record are.

use std::io::Write as _;
use std::time::Duration;

/// The environment variable naming the point to pause at.
pub const PAUSE_ENV: &str = "BERTH_TEST_PAUSE_AT";

/// `network rm`, between removing the network's firewall elements and deleting its record.
pub const NETWORK_RM_AFTER_FIREWALL: &str = "network-rm-after-firewall";

/// Pauses forever when [`PAUSE_ENV`] names `point`; returns at once otherwise.
pub fn pause_at(point: &str) {
    if std::env::var_os(PAUSE_ENV).is_none_or(|v| v != point) {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "berth: paused at {point}");
    let _ = err.flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
