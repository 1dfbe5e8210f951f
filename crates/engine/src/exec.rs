//! `exec`: run another process in a running container through the runtime's `exec`
//! (it joins the container's namespaces and cgroup, inherits its capabilities and
//! environment). With `-t` the runtime itself allocates the pty and proxies it to our stdio.

use std::process::Stdio;

use crate::bundle::path_of;
use crate::rootfs::{self, LookupError};
use crate::runtime::ExecOptions;
use crate::state::Status;
use crate::{user, Engine, EngineError};

/// What `exec` was asked.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// argv.
    pub args: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`: pass our stdin through.
    pub interactive: bool,
    /// `-d`.
    pub detach: bool,
    /// `-e`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
}

impl Engine {
    /// Runs `req` in container `key` and returns its exit code (0 at once with `-d`).
    ///
    /// Errors: not running; command not found (127) or not executable (126); runtime failure.
    pub fn exec(&mut self, key: &str, req: &ExecRequest) -> Result<i32, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if c.state.status != Status::Running {
            return Err(EngineError::NotRunning(c.name.to_string()));
        }
        let rootfs_dir = self.paths.rootfs(&c.id);
        let cmd = req.args.first().ok_or(EngineError::ExecNoCommand)?;
        let env = self.container_env(&c)?;
        match rootfs::lookup_command(&rootfs_dir, path_of(&env), cmd) {
            Ok(_) => {}
            Err(LookupError::NotFound) => {
                return Err(EngineError::CommandNotFound(format!(
                    "exec: \"{cmd}\": executable file not found in $PATH"
                )))
            }
            Err(LookupError::NotExecutable) => {
                return Err(EngineError::CannotInvoke(format!(
                    "exec: \"{cmd}\": permission denied"
                )))
            }
        }
        if let Some(w) = &req.workdir {
            let dir = rootfs::resolve_in_root(&rootfs_dir, std::path::Path::new(w));
            if !w.starts_with('/') || !dir.is_some_and(|d| d.is_dir()) {
                return Err(EngineError::CannotInvoke(format!(
                    "exec: working directory {w:?} is not an existing absolute directory in \
                     container {}",
                    c.name
                )));
            }
        }
        let u = match &req.user {
            Some(spec) => Some(user::resolve_user(&rootfs_dir, Some(spec))?),
            None => None,
        };
        let opts = ExecOptions {
            args: req.args.clone(),
            tty: req.tty,
            detach: req.detach,
            cwd: req.workdir.clone(),
            env: req.env.clone(),
            user: u.as_ref().map(|u| format!("{}:{}", u.uid, u.gid)),
            additional_gids: u.map(|u| u.additional_gids).unwrap_or_default(),
            caps: Vec::new(),
        };
        let mut cmd = self.runtime.exec_command(&c.id, &opts);
        if !req.interactive || req.detach {
            cmd.stdin(Stdio::null());
        }
        if req.detach {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let status = cmd.status().map_err(|e| EngineError::Runtime {
            op: "exec",
            message: format!("cannot run {}: {e}", self.runtime.binary.display()),
        })?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(9)))
    }

    /// The environment of the container's main process, from its config.json.
    fn container_env(&self, c: &crate::Container) -> Result<Vec<String>, EngineError> {
        let path = self.paths.container_dir(&c.id).join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        Ok(v["process"]["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}
