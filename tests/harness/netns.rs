//! Named network namespaces (`/run/netns/NAME`) owned by a test and deleted on drop.

use std::path::PathBuf;
use std::process::Command;

/// A named network namespace made with `ip netns add`, with `lo` up; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    deleted: bool,
}

impl Netns {
    /// Creates `/run/netns/<name>` and brings `lo` up inside it.
    ///
    /// Errors: `ip netns add` failing (not root, name taken).
    pub fn new(name: &str) -> anyhow::Result<Self> {
        ip(&["netns", "add", name])?;
        let ns = Self {
            name: name.to_string(),
            deleted: false,
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the bind mount that keeps the namespace alive.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `--net=/run/netns/<name>`, the argument `nsenter` needs to enter it.
    pub fn nsenter_arg(&self) -> String {
        format!("--net=/run/netns/{}", self.name)
    }

    /// A `Command` that runs `program` inside this namespace (via `nsenter --net`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(self.nsenter_arg()).arg("--").arg(program);
        cmd
    }

    /// Deletes the namespace now; returns an error text if it is still there afterwards.
    pub fn delete(&mut self) -> Result<(), String> {
        if self.deleted {
            return Ok(());
        }
        self.deleted = true;
        let res = ip(&["netns", "del", &self.name]);
        if self.path().exists() {
            return Err(format!(
                "netns {} still present after `ip netns del`: {res:?}",
                self.name
            ));
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            eprintln!("harness: {e}");
        }
    }
}

/// Runs `ip ARGS` (in the caller's namespace; every caller passes `-n NS` or `netns`).
pub(crate) fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
