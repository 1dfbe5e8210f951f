//! Test support shared by berth's crates (feature `test-support`): explicit
//! skips and throwaway network namespaces that are deleted on drop, pass or fail.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Returns `Some(reason)` when privileged tests cannot run here (not root).
pub fn privileged_skip_reason() -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        None
    } else {
        Some("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for network namespaces".into())
    }
}

/// Prints `SKIP: <reason>` and returns from the enclosing test when
/// privileged tests cannot run; never lets such a test pass silently.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if let Some(reason) = $crate::testing::privileged_skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

/// Evaluates to a fresh [`TestNetns`], or prints `SKIP: <reason>` and returns
/// from the enclosing test when one cannot be made here.
#[macro_export]
macro_rules! test_netns_or_skip {
    () => {{
        $crate::skip_unless_root!();
        match $crate::testing::TestNetns::new() {
            Ok(ns) => ns,
            Err(reason) => {
                eprintln!("SKIP: cannot create a test netns: {reason}");
                return;
            }
        }
    }};
}

/// A throwaway namespace `berth-t-<unique>` made with `ip netns add`,
/// deleted with `ip netns del` on drop.
#[derive(Debug)]
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    /// Creates the namespace; the error is a human-readable reason.
    pub fn new() -> Result<TestNetns, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "berth-t-{}-{}-{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos & 0xffff
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(TestNetns { name })
    }

    /// The namespace name (`berth-t-...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pin path, `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
