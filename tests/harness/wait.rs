//! Polling with a deadline, for state that changes asynchronously (monitors, restarts).

use std::time::{Duration, Instant};

/// Calls `cond` every 100 ms until it returns true or `timeout` passes.
/// Returns whether the condition became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
