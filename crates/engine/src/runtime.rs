//! The OCI runtime binary (runc by default; crun and youki accepted), driven through its
//! command line as the OCI runtime spec's "Runtime and Lifecycle" describes: `create`, `start`,
//! `kill`, `delete`, `exec`. Every runtime gets its own state dir (`<runroot>/runtime`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::EngineError;

/// A runtime binary and the state directory berth gives it (`--root` of runc/crun/youki).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The binary, as found on PATH or given as a path.
    pub binary: PathBuf,
    /// The runtime's own state root.
    pub state_root: PathBuf,
}

impl Runtime {
    /// Resolves `name` (`runc`, `crun`, `youki` or a path) on PATH.
    ///
    /// Errors: [`EngineError::Runtime`] when the binary cannot be found.
    pub fn new(name: &str, runroot: &Path) -> Result<Self, EngineError> {
        let binary = if name.contains('/') {
            PathBuf::from(name)
        } else {
            find_on_path(name).ok_or_else(|| EngineError::Runtime {
                op: "find",
                message: format!(
                    "OCI runtime {name:?} is not on PATH: install it (runc is the default; \
                     crun and youki also work) or pass --runtime /path/to/runtime"
                ),
            })?
        };
        Ok(Self {
            binary,
            state_root: runroot.join("runtime"),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    fn name(&self) -> String {
        self.binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `create` (or `run --detach`) `--bundle B [--console-socket S] --pid-file P ID` with the given stdio, which the
    /// runtime passes through to the container's process when no terminal is used. The
    /// runtime's own log goes to `<bundle>/runtime.log` (JSON lines) so its error can be quoted.
    ///
    /// Errors: [`EngineError::CommandNotFound`] / [`EngineError::CannotInvoke`] when the
    /// container's command cannot be run, [`EngineError::Runtime`] otherwise.
    pub fn create(
        &self,
        verb: Verb,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        pid_file: &Path,
        stdio: [Stdio; 3],
    ) -> Result<(), EngineError> {
        let log = bundle.join("runtime.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = self.command();
        // --log and --log-format are global options: they precede the verb.
        cmd.arg("--log").arg(&log).arg("--log-format").arg("json");
        match verb {
            Verb::Create => cmd.arg("create"),
            Verb::RunDetached => cmd.arg("run").arg("--detach"),
        };
        cmd.arg("--bundle").arg(bundle);
        cmd.arg("--pid-file").arg(pid_file);
        if let Some(s) = console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        cmd.arg(id);
        let [i, o, e] = stdio;
        cmd.stdin(i).stdout(o).stderr(e);
        let status = cmd.status().map_err(|e| self.spawn_error("create", e))?;
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Err(self.classify("create", &last_error_line(&text)))
    }

    /// `start ID`: runs the process the container was created with.
    pub fn start(&self, id: &str) -> Result<(), EngineError> {
        let out = self.run("start", &[id])?;
        self.check("start", out)
    }

    /// `kill ID SIGNAL` (signal by name or number). A container that is already gone is fine.
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let out = self.run("kill", &[id, signal])?;
        if out.status.success() || is_gone(&out) {
            return Ok(());
        }
        self.check("kill", out)
    }

    /// `delete --force ID`; a container the runtime does not know is fine (idempotent).
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        // runc, crun and youki keep a container's state in `<root>/<id>`: without it there
        // is nothing to delete, and not spawning the runtime saves ~10 ms per call.
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        let out = self.run("delete", &["--force", id])?;
        if out.status.success() || is_gone(&out) {
            return Ok(());
        }
        self.check("delete", out)
    }

    /// A `Command` for `exec` with the caller's stdio; the caller spawns and waits.
    pub fn exec_command(&self, id: &str, opts: &ExecOptions) -> Command {
        let mut cmd = self.command();
        cmd.arg("exec");
        if opts.tty {
            cmd.arg("--tty");
        }
        if opts.detach {
            cmd.arg("--detach");
        }
        if let Some(cwd) = &opts.cwd {
            cmd.arg("--cwd").arg(cwd);
        }
        for e in &opts.env {
            cmd.arg("--env").arg(e);
        }
        if let Some(u) = &opts.user {
            cmd.arg("--user").arg(u);
        }
        for g in &opts.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
        for c in &opts.caps {
            cmd.arg("--cap").arg(c);
        }
        // No `--`: runc stops parsing its own flags at the container id.
        cmd.arg(id).args(&opts.args);
        cmd
    }

    fn run(&self, op: &'static str, args: &[&str]) -> Result<Output, EngineError> {
        self.command()
            .arg(op)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(op, e))
    }

    fn check(&self, op: &'static str, out: Output) -> Result<(), EngineError> {
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        Err(self.classify(op, text.trim()))
    }

    fn spawn_error(&self, op: &'static str, e: std::io::Error) -> EngineError {
        EngineError::Runtime {
            op,
            message: format!("cannot run {}: {e}", self.binary.display()),
        }
    }

    /// Turns a runtime's error text into an error that says what went wrong and what to do.
    fn classify(&self, op: &'static str, text: &str) -> EngineError {
        let lower = text.to_ascii_lowercase();
        if lower.contains("executable file not found")
            || lower.contains("no such file or directory") && lower.contains("exec")
        {
            return EngineError::CommandNotFound(text.to_string());
        }
        if lower.contains("permission denied") && lower.contains("exec") {
            return EngineError::CannotInvoke(text.to_string());
        }
        let name = self.name();
        if name == "crun" && (lower.contains("cgroup") || lower.contains("unified")) {
            return EngineError::Runtime {
                op,
                message: format!(
                    "crun refused this host's cgroup layout (a hybrid cgroup v1/v2 mount, which \
                     crun 1.8 does not support): {text}; use --runtime runc"
                ),
            };
        }
        EngineError::Runtime {
            op,
            message: format!("{name} {op} failed: {text}"),
        }
    }
}

/// How [`Runtime::create`] brings the container up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `create` only: the process waits for `start`.
    Create,
    /// `run --detach`: create and start in one runtime call.
    RunDetached,
}

/// What `exec` runs and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// argv.
    pub args: Vec<String>,
    /// Allocate a terminal (the runtime proxies it to its own stdio).
    pub tty: bool,
    /// Do not wait for the process.
    pub detach: bool,
    /// Working directory inside the container.
    pub cwd: Option<String>,
    /// Extra `NAME=VALUE` variables.
    pub env: Vec<String>,
    /// `uid:gid`.
    pub user: Option<String>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities for the process (`CAP_*`).
    pub caps: Vec<String>,
}

fn is_gone(out: &Output) -> bool {
    let t = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    t.contains("does not exist")
        || t.contains("not found")
        || t.contains("container not running")
        || t.contains("process already finished")
}

/// runc/crun `--log-format json` writes one object per line; the last `"level":"error"` `msg`
/// says why a create failed.
fn last_error_line(log: &str) -> String {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
        .unwrap_or_else(|| log.trim().to_string())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_line_picks_the_last_error() {
        let log = r#"{"level":"info","msg":"x"}
{"level":"error","msg":"first"}
{"level":"error","msg":"runc create failed: exec: \"nope\": executable file not found in $PATH"}
"#;
        assert!(last_error_line(log).contains("executable file not found"));
    }

    #[test]
    fn classify_maps_exec_failures() {
        let rt = Runtime {
            binary: "/usr/sbin/runc".into(),
            state_root: "/tmp/x".into(),
        };
        assert!(matches!(
            rt.classify(
                "create",
                "exec: \"nope\": executable file not found in $PATH"
            ),
            EngineError::CommandNotFound(_)
        ));
        assert!(matches!(
            rt.classify("create", "exec /etc/passwd: permission denied"),
            EngineError::CannotInvoke(_)
        ));
        let crun = Runtime {
            binary: "/usr/bin/crun".into(),
            state_root: "/tmp/x".into(),
        };
        let e = crun.classify("create", "cannot set up unified cgroup");
        assert!(e.to_string().contains("--runtime runc"));
    }
}
