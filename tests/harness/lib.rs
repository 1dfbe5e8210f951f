//! Sandbox-host harness for the end-to-end suites.
//!
//! Every test builds its own [`SandboxHost`]: a throwaway network namespace plus fresh
//! `--root`/`--runroot` directories, in which the real `berth` binary runs (entered with
//! `nsenter --net`, never `ip netns exec`, which would remount `/sys` for the OCI runtime).
//! Dropping the host removes every container, then fails the test if anything leaked:
//! processes in the host's containers' cgroups or namespace, mounts under its directories,
//! cgroup directories, or the namespace itself. Fixture images are built once per
//! `cargo test` run by `tests/fixtures/build-image.sh` ([`fixture_images`]).

mod bridge;
mod client;
mod command;
mod fixtures;
mod leaks;
mod listen;
mod malicious;
mod netns;
mod registry;
mod sandbox;
mod teardown;
mod underlay;
mod wait;

pub use bridge::HostState;
pub use client::Client;
pub use command::{run_with_timeout, Background, Outcome};
pub use fixtures::{fixture_images, Fixtures};
pub use listen::{shell_quote, Proto};
pub use malicious::{escaping_archive, linked_rootfs_archive, Escape};
pub use netns::Netns;
pub use registry::{
    basic_auth_field, registry_fixtures, sha256_digest, ClientConfig, FakeOptions, FakeRegistry,
    Registry, RegistryAuth, RegistryFixtures, SpawnedBerth, PASSWORD, USER,
};
pub use sandbox::{berth_binary, parse_addrs, SandboxHost};
pub use underlay::{kernel_has_link_kind, Lab};
pub use wait::wait_until;

/// Prints `SKIP: reason` and returns from the calling test: for tests that cannot run here
/// (not root, a tool missing). Never a silent pass; under `CI=true` it fails the test instead,
/// since there a missing tool or package is an install bug (issue 10). A kernel feature this
/// kernel lacks uses [`skip_kernel!`].
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {{
        $crate::skip_or_fail(&format!($($reason)+));
        return;
    }};
}

/// Prints `SKIP: reason` and returns from the calling test, under CI too: only for a kernel
/// feature this kernel lacks (or has, when the test shows its absence).
#[macro_export]
macro_rules! skip_kernel {
    ($($reason:tt)+) => {{
        let reason = format!($($reason)+);
        println!("SKIP: {reason}");
        eprintln!("SKIP: {reason}");
        return;
    }};
}

/// CI's skip policy, shared with the crates' own tests: [`strict_skips`] is true under
/// `CI=true`, where [`skip_or_fail`] fails instead of skipping (see [`skip!`]).
pub use berth_sys::testing::{skip_or_fail, strict_skips};

/// Skips the calling test unless it runs as root (namespaces, mounts and runc need it).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            $crate::skip!("end-to-end tests need root (namespaces, mounts, runc)");
        }
    };
}

/// Returns true when the current process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A fresh random hex suffix of `len` characters (at most 16), for names of namespaces,
/// interfaces and containers that must not collide with parallel tests.
pub fn random_suffix(len: usize) -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")[..len.min(16)].to_string()
}

#[cfg(test)]
mod selftest;
