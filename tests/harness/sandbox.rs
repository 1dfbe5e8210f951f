//! [`SandboxHost`]: one throwaway "machine" for one test: its own network namespace and its
//! own berth `--root`/`--runroot`, with the real `berth` binary run inside it, and a teardown
//! that removes every container and then fails the test on anything leaked.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use crate::client::Client;
use crate::command::{try_run, Background, Outcome};
use crate::netns::Netns;

/// Deadline for one berth command (an attached `run` included).
const BERTH_TIMEOUT: Duration = Duration::from_secs(90);

/// The berth binary under test: `$BERTH_BIN`, else `<workspace>/target/debug/berth`.
/// Panics, saying how to build it, if it does not exist.
pub fn berth_binary() -> PathBuf {
    let bin = std::env::var_os("BERTH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::fixtures::target_dir().join("debug/berth"));
    assert!(
        bin.is_file(),
        "berth binary {} not found: run `cargo build --bin berth` first (or set BERTH_BIN)",
        bin.display()
    );
    bin
}

/// A directory for `--root`/`--runroot` where overlayfs works: `$BERTH_TEST_TMPDIR`, else the
/// first of /var/tmp and /tmp that is neither tmpfs nor overlayfs (an overlay upper dir cannot
/// live on overlayfs, and tmpfs lacks the xattrs older kernels need for it).
fn scratch_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_TEST_TMPDIR") {
        return PathBuf::from(dir);
    }
    use nix::sys::statfs::{statfs, OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC};
    ["/var/tmp", "/tmp"]
        .iter()
        .map(PathBuf::from)
        .find(|d| {
            statfs(d.as_path())
                .map(|s| ![TMPFS_MAGIC, OVERLAYFS_SUPER_MAGIC].contains(&s.filesystem_type()))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// One sandbox host. Create it first in a test so it drops last.
#[derive(Debug)]
pub struct SandboxHost {
    netns: Netns,
    netns_ino: Option<u64>,
    root: TempDir,
    runroot: TempDir,
    bin: PathBuf,
    next_subnet: AtomicU8,
    seen_ids: Mutex<BTreeSet<String>>,
}

impl SandboxHost {
    /// Creates netns `berth-t-<random>` (lo up) and fresh root/runroot directories.
    /// Panics if the berth binary is missing or the namespace cannot be made.
    pub fn new() -> Self {
        Self::with_binary(berth_binary())
    }

    /// Like [`Self::new`] with an explicit binary (another build, or a fake in harness tests).
    pub fn with_binary(bin: PathBuf) -> Self {
        let base = scratch_base();
        let root = tempfile::Builder::new()
            .prefix("berth-root-")
            .tempdir_in(&base)
            .expect("cannot create the --root tempdir");
        // The runroot holds unix sockets `<runroot>/containers/<64-hex id>/attach.sock`; a
        // sun_path has 107 usable bytes, so keep it short (/run/bt-XXXXXX: 14). Only the
        // root needs a real filesystem (overlay upper dirs).
        let runroot = tempfile::Builder::new()
            .prefix("bt-")
            .rand_bytes(6)
            .tempdir_in("/run")
            .expect("cannot create the --runroot tempdir under /run");
        let name = format!("berth-t-{}", crate::random_suffix(8));
        let netns = Netns::new(&name).unwrap_or_else(|e| panic!("sandbox host netns: {e:#}"));
        let netns_ino = std::fs::metadata(netns.path()).ok().map(|m| m.ino());
        Self {
            netns,
            netns_ino,
            root,
            runroot,
            bin,
            next_subnet: AtomicU8::new(0),
            seen_ids: Mutex::new(BTreeSet::new()),
        }
    }

    /// The host's network namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `--runroot` directory.
    pub fn runroot(&self) -> &Path {
        self.runroot.path()
    }

    /// `nsenter --net=/run/netns/NAME <berth> --root R --runroot RR ARGS`, not yet run.
    pub fn berth_command(&self, args: &[&str]) -> Command {
        let mut cmd = self
            .netns
            .command(self.bin.to_str().expect("utf-8 binary path"));
        cmd.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot());
        cmd.args(args);
        cmd
    }

    /// Runs berth with `args` inside the host (stdin closed, 90 s deadline: panics past it).
    pub fn berth(&self, args: &[&str]) -> Output {
        let out =
            try_run(&mut self.berth_command(args), BERTH_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        self.remember_ids(&out.stdout);
        out
    }

    /// [`Self::berth`] as an [`Outcome`] (text streams, exit code, assertion helpers).
    pub fn cli(&self, args: &[&str]) -> Outcome {
        Outcome::new(format!("berth {}", args.join(" ")), self.berth(args))
    }

    /// Runs `sh -c cmd` inside the host's namespace (the host's tools, not the image's).
    pub fn sh(&self, cmd: &str) -> Outcome {
        let mut c = self.netns.command("sh");
        c.arg("-c").arg(cmd);
        let out = try_run(&mut c, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        Outcome::new(format!("host sh: {cmd}"), out)
    }

    /// Starts `sh -c cmd` in the background inside the host's namespace (stdio to /dev/null);
    /// it is killed by pid when the returned guard drops.
    pub fn spawn_sh(&self, cmd: &str) -> Background {
        let mut c = self.netns.command("sh");
        c.arg("-c").arg(cmd);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Background::spawn(&mut c)
    }

    /// Adds a client namespace joined to this host by a veth pair (subnets 10.77.0.0/24,
    /// 10.77.1.0/24, ... in creation order). Panics if `ip` fails.
    pub fn add_client(&self) -> Client {
        let subnet = self.next_subnet.fetch_add(1, Ordering::Relaxed);
        Client::new(self.netns.name(), subnet).unwrap_or_else(|e| panic!("client netns: {e:#}"))
    }

    /// Loads the fixture docker-archive (`web:latest`); panics unless berth says
    /// `Loaded image: web:latest`.
    pub fn load_web(&self) {
        let archive = crate::fixture_images()
            .docker_archive
            .to_str()
            .expect("utf-8 path");
        let out = self.cli(&["load", "-i", archive]).ok();
        assert!(
            out.contains("Loaded image: web:latest"),
            "load printed: {out}"
        );
    }

    /// A sandbox host with `web:latest` already loaded.
    pub fn with_web() -> Self {
        let host = Self::new();
        host.load_web();
        host
    }

    /// Pids of live processes whose command line names this host's `--root` (the berth CLI
    /// processes and the container monitors it started), excluding the caller.
    pub fn berth_processes(&self) -> Vec<(u32, String)> {
        crate::leaks::processes(&[], None, &[self.root()])
            .into_iter()
            .map(|p| (p.pid as u32, p.why))
            .collect()
    }

    /// `berth inspect NAME` parsed, first element. Panics if the command fails.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.cli(&["inspect", name]).ok();
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("inspect {name}: {e}: {text}"));
        v.get(0)
            .cloned()
            .unwrap_or_else(|| panic!("inspect {name}: not an array: {text}"))
    }

    /// `State.Status` of a container per `inspect` (e.g. `running`, `exited`).
    pub fn status(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The host namespace's addresses per `ip -o addr`, as `parse_addrs` sets.
    pub fn host_addrs(&self) -> BTreeSet<String> {
        parse_addrs(&self.sh("ip -o addr").ok())
    }

    pub(crate) fn seen_ids_snapshot(&self) -> Vec<String> {
        self.seen_ids
            .lock()
            .expect("ids lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn netns_ino(&self) -> Option<u64> {
        self.netns_ino
    }

    pub(crate) fn delete_netns(&mut self) -> Result<(), String> {
        self.netns.delete()
    }

    fn remember_ids(&self, stdout: &[u8]) {
        let text = String::from_utf8_lossy(stdout);
        let mut seen = self.seen_ids.lock().expect("ids lock");
        for word in text.split_whitespace() {
            if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
                seen.insert(word.to_string());
            }
        }
    }
}

impl Default for SandboxHost {
    fn default() -> Self {
        Self::new()
    }
}

/// Normalises `ip -o addr` output (iproute2's or busybox's) to a set of
/// `"<ifname> <family> <address/prefix>"`, so both formats compare equal.
pub fn parse_addrs(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let tok: Vec<&str> = line.split_whitespace().collect();
            let ifname = tok.get(1)?.trim_end_matches(':');
            let ifname = ifname.split('@').next()?;
            let fam = *tok.get(2)?;
            let addr = *tok.get(3)?;
            matches!(fam, "inet" | "inet6").then(|| format!("{ifname} {fam} {addr}"))
        })
        .collect()
}
