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

/// True under CI (`CI=true`), where only a kernel feature this kernel lacks may skip a test:
/// a missing tool, package or privilege is an install bug there (issue 10).
pub fn strict_skips() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Reports a skip whose cause is not a missing kernel feature (not root, a tool or package
/// missing): prints `SKIP: <reason>`; under `CI=true` panics instead, naming the reason.
/// The caller returns from the test afterwards.
pub fn skip_or_fail(reason: &str) {
    println!("SKIP: {reason}");
    eprintln!("SKIP: {reason}");
    assert!(
        !strict_skips(),
        "CI=true allows no skip but a missing kernel feature: {reason} \
         (a missing tool or package is an install bug: scripts/test-deps.sh)"
    );
}

/// Reports a skip caused by a kernel feature this kernel lacks (ipvlan, 802.1q, dummy ...):
/// prints `SKIP: <reason>`, under CI too. The caller returns from the test afterwards.
pub fn skip_kernel(reason: &str) {
    println!("SKIP: {reason}");
    eprintln!("SKIP: {reason}");
}

/// Prints `SKIP: <reason>` and returns from the enclosing test when
/// privileged tests cannot run; never lets such a test pass silently (fails under `CI=true`).
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if let Some(reason) = $crate::testing::privileged_skip_reason() {
            $crate::testing::skip_or_fail(&reason);
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
                $crate::testing::skip_or_fail(&format!("cannot create a test netns: {reason}"));
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
