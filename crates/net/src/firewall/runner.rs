//! The seam between berth and the `nft` binary: [`NftRunner`] applies scripts and reads
//! listings; [`NftCommand`] runs the real binary (optionally inside a network namespace through
//! `nsenter --net=PATH`), [`RecordingRunner`] records scripts for tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Errors of running nft.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The binary could not be started.
    #[error("cannot run {program}: {source}; install nftables (apt-get install nftables) or set NFT to the nft binary")]
    Spawn {
        /// The program started (`nft` or `nsenter`).
        program: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// nft ran and failed; `stderr` is its complaint (it quotes the offending script line).
    #[error("nft {what} failed ({status}): {stderr}")]
    Failed {
        /// `-f -` or the listing arguments.
        what: String,
        /// Exit status as text.
        status: String,
        /// nft's stderr, trimmed.
        stderr: String,
    },
    /// The kernel refused an element batch sent over netlink.
    #[error("{0}")]
    Netlink(Box<berth_sys::nftables::NftNetlinkError>),
    /// The namespace to apply in could not be entered.
    #[error("cannot enter the network namespace for nftables: {0}")]
    Netns(Box<berth_sys::netns::NetNsError>),
}

impl From<berth_sys::nftables::NftNetlinkError> for NftError {
    fn from(e: berth_sys::nftables::NftNetlinkError) -> Self {
        Self::Netlink(Box::new(e))
    }
}

impl From<berth_sys::netns::NetNsError> for NftError {
    fn from(e: berth_sys::netns::NetNsError) -> Self {
        Self::Netns(Box::new(e))
    }
}

/// Runs nft. Implementations must apply a script as one transaction.
pub trait NftRunner {
    /// Applies `script` atomically (`nft -f -`): all of it or none of it.
    ///
    /// Errors: [`NftError`] with nft's stderr.
    fn apply(&self, script: &str) -> Result<(), NftError>;

    /// Runs `nft ARGS` (read-only listings such as `list set inet berth bridges`) and returns
    /// its stdout.
    ///
    /// Errors: [`NftError`] with nft's stderr (e.g. the table does not exist).
    fn list(&self, args: &[&str]) -> Result<String, NftError>;

    /// Whether both of berth's tables hold `generation` in their `generation` set (a missing
    /// table or set counts as `false`). The default asks `nft list set` (recording runners
    /// answer with their canned listing); [`NftCommand`] looks the element up over netlink.
    ///
    /// Errors: [`NftError`] when the kernel cannot be asked.
    fn has_generation(&self, generation: u32) -> Result<bool, NftError> {
        let stamped = |family: &str| {
            self.list(&["list", "set", family, "berth", "generation"])
                .is_ok_and(|text| text.contains(&format!("elements = {{ {generation} }}")))
        };
        Ok(stamped("inet") && stamped("bridge"))
    }

    /// Adds/deletes set and map elements as one transaction without the `nft` tool (the
    /// start path's only firewall change). `None`: this runner has no such path; the caller
    /// renders a script instead (recording runners keep seeing scripts).
    fn apply_elements(&self, ops: &[berth_sys::nftables::SetElem]) -> Option<Result<(), NftError>> {
        let _ = ops;
        None
    }
}

/// The real `nft` binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftCommand {
    program: PathBuf,
    netns: Option<PathBuf>,
}

impl NftCommand {
    /// `nft` from the `NFT` environment variable, else `/usr/sbin/nft`, in the current netns.
    pub fn from_env() -> NftCommand {
        let program = std::env::var_os("NFT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/nft"));
        NftCommand {
            program,
            netns: None,
        }
    }

    /// Runs nft inside the network namespace pinned at `path` (via `nsenter --net=PATH`), so
    /// tests touch only their throwaway namespace.
    pub fn in_netns(mut self, path: &Path) -> NftCommand {
        self.netns = Some(path.to_path_buf());
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(args);
        cmd
    }

    fn spawn_error(&self, source: std::io::Error) -> NftError {
        let program = if self.netns.is_some() {
            PathBuf::from("nsenter")
        } else {
            self.program.clone()
        };
        NftError::Spawn { program, source }
    }
}

impl NftRunner for NftCommand {
    fn has_generation(&self, generation: u32) -> Result<bool, NftError> {
        use berth_sys::nftables::{has_set_element, NFPROTO_BRIDGE, NFPROTO_INET};
        // `type mark` keys are host byte order (nft's mark datatype).
        let key = generation.to_ne_bytes();
        let check = move || -> Result<bool, berth_sys::nftables::NftNetlinkError> {
            Ok(has_set_element(NFPROTO_INET, "berth", "generation", &key)?
                && has_set_element(NFPROTO_BRIDGE, "berth", "generation", &key)?)
        };
        match &self.netns {
            None => Ok(check()?),
            Some(ns) => Ok(berth_sys::netns::run_in(ns, check)??),
        }
    }

    fn apply_elements(&self, ops: &[berth_sys::nftables::SetElem]) -> Option<Result<(), NftError>> {
        let ops = ops.to_vec();
        Some(match &self.netns {
            None => berth_sys::nftables::apply_set_elements(&ops).map_err(NftError::from),
            Some(ns) => {
                berth_sys::netns::run_in(ns, move || berth_sys::nftables::apply_set_elements(&ops))
                    .map_err(NftError::from)
                    .and_then(|r| r.map_err(NftError::from))
            }
        })
    }

    fn apply(&self, script: &str) -> Result<(), NftError> {
        let mut child = self
            .command(&["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        // nft reads the whole script before committing, so a write error (nft died early)
        // surfaces as its exit status and stderr below.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| self.spawn_error(e))?;
        check("-f -", &out)
    }

    fn list(&self, args: &[&str]) -> Result<String, NftError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        check(&args.join(" "), &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn check(what: &str, out: &std::process::Output) -> Result<(), NftError> {
    if out.status.success() {
        return Ok(());
    }
    Err(NftError::Failed {
        what: what.to_string(),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// A fake runner: records every applied script and answers listings with a canned text.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    scripts: Mutex<Vec<String>>,
    listing: Mutex<Option<String>>,
}

impl RecordingRunner {
    /// A recorder whose listings fail as if the table did not exist.
    pub fn new() -> RecordingRunner {
        RecordingRunner::default()
    }

    /// Makes [`NftRunner::list`] return `text` (`None`: fail like a missing table).
    pub fn set_listing(&self, text: Option<&str>) {
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = text.map(str::to_string);
    }

    /// The scripts applied so far, oldest first.
    pub fn scripts(&self) -> Vec<String> {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl NftRunner for RecordingRunner {
    fn apply(&self, script: &str) -> Result<(), NftError> {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(script.to_string());
        Ok(())
    }

    fn list(&self, args: &[&str]) -> Result<String, NftError> {
        let listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        listing.clone().ok_or_else(|| NftError::Failed {
            what: args.join(" "),
            status: "exit status: 1".to_string(),
            stderr: "Error: No such file or directory".to_string(),
        })
    }
}
