//! `start` (and the second half of `run`): checks that must pass before anything is created
//! (host-mode port conflicts, a running `container:` target), then spawns the container's
//! monitor and waits for it to report the container started, or why it did not.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;

use berth_net::NetworkMode;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

use crate::state::{self, Container, Status};
use crate::{attach, Engine, EngineError};

/// A started container; for an attached start, the attach stream too.
#[derive(Debug)]
pub struct Started {
    /// The container as recorded after the start.
    pub container: Container,
    /// The monitor process (a child of this process until this process exits).
    pub monitor: Option<Child>,
    /// The attach stream and the container's stdin fd, for `run` without `-d` and `start -a`.
    pub attach: Option<(UnixStream, Option<OwnedFd>)>,
    /// The container was already running: nothing was done.
    pub already_running: bool,
}

impl Engine {
    /// Starts the container `key`. With `attach`, the monitor waits for this process to attach
    /// before starting the container's process, so no output is lost.
    ///
    /// Errors: host-mode port conflict (nothing created), `container:` target not running,
    /// command not found (127) or not executable (126), runtime failures (125).
    pub fn start(&mut self, key: &str, attach: bool) -> Result<Started, EngineError> {
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            return Ok(Started {
                container: c,
                monitor: None,
                attach: None,
                already_running: true,
            });
        }
        let host_guard = match NetworkMode::from_str(&c.config.network)? {
            NetworkMode::Host if !c.config.skip_port_check => Some(self.host_port_lock()?),
            _ => None,
        };
        self.preflight(&c)?;
        state::update_state(&mut self.store, &c.id, |s| {
            s.user_stopped = false;
            s.error.clear();
        })?;
        let (mut child, ready) = self.spawn_monitor(&c.id, attach)?;
        let mut ready = BufReader::new(ready);
        let mut stream = None;
        if attach {
            self.expect_ready(&mut ready, &mut child, "created")?;
            let sock = self.paths.attach_socket(&c.id);
            let conn = berth_sys::fd::SocketPath::new(
                &self.paths.run_dir(&c.id),
                crate::paths::ATTACH_SOCKET,
            )
            .and_then(|sp| attach::connect(sp.path(), c.config.open_stdin))
            .map_err(|e| {
                EngineError::Monitor(format!("cannot attach to {}: {e}", sock.display()))
            })?;
            stream = Some(conn);
        }
        self.expect_ready(&mut ready, &mut child, "started")?;
        drop(host_guard);
        Ok(Started {
            container: self.container(&c.id)?,
            monitor: Some(child),
            attach: stream,
            already_running: false,
        })
    }

    /// The checks that must pass before anything is created.
    fn preflight(&self, c: &Container) -> Result<(), EngineError> {
        match NetworkMode::from_str(&c.config.network)? {
            NetworkMode::Host if !c.config.skip_port_check => self.check_host_ports(c),
            NetworkMode::Container(target) => {
                let t = self.container(&target)?;
                if t.state.status != Status::Running {
                    return Err(EngineError::Invalid(format!(
                        "cannot join the network of container {}: it is not running; start it \
                         first (berth start {})",
                        t.name, t.name
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn spawn_monitor(&self, id: &str, attach: bool) -> Result<(Child, File), EngineError> {
        // Taken here and inherited by the monitor: never a moment with a monitor but no lock.
        // Recovery probes hold it for microseconds; a monitor holds it for good.
        let mut lock = None;
        for _ in 0..100 {
            lock = crate::lock::MonitorLock::try_acquire(&self.paths, id)?;
            if lock.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let lock = lock.ok_or_else(|| {
            EngineError::Invalid(format!(
                "container {id} is already being started by another berth process"
            ))
        })?;
        let lock_fd = lock.inheritable_fd()?;
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::Monitor(format!("pipe: {e}")))?;
        // The write end must survive exec into the monitor: clear its close-on-exec flag.
        fcntl(w.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| EngineError::Monitor(format!("fcntl: {e}")))?;
        let exe =
            std::env::current_exe().map_err(|e| EngineError::io("/proc/self/exe".as_ref(), e))?;
        let dir = self.paths.container_dir(id);
        let log_path = dir.join("monitor.log");
        let log = File::create(&log_path).map_err(|e| EngineError::io(&log_path, e))?;
        let log2 = log.try_clone().map_err(|e| EngineError::io(&log_path, e))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--root")
            .arg(&self.paths.root)
            .arg("--runroot")
            .arg(&self.paths.runroot)
            .arg("--runtime")
            .arg(&self.runtime_name)
            .arg("__monitor")
            .arg("--ready-fd")
            .arg(w.as_raw_fd().to_string())
            .arg("--lock-fd")
            .arg(lock_fd.to_string());
        if attach {
            cmd.arg("--attach");
        }
        cmd.arg(id)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a ^C at the terminal does not reach the monitor.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| EngineError::Monitor(format!("cannot start the monitor: {e}")))?;
        drop(w);
        // The monitor has its own copy of the locked descriptor now.
        drop(lock);
        Ok((child, File::from(r)))
    }

    /// Reads the next line from the monitor: `want`, or `error CODE MESSAGE`.
    fn expect_ready(
        &self,
        ready: &mut BufReader<File>,
        child: &mut Child,
        want: &str,
    ) -> Result<(), EngineError> {
        let mut line = String::new();
        let n = ready
            .read_line(&mut line)
            .map_err(|e| EngineError::Monitor(e.to_string()))?;
        let line = line.trim_end();
        if n == 0 {
            let status = child.wait().ok();
            return Err(EngineError::Monitor(format!(
                "the monitor exited before the container started ({status:?}); see its log \
                 under the container directory (monitor.log)"
            )));
        }
        if line == want {
            return Ok(());
        }
        let rest = line.strip_prefix("error ").unwrap_or(line);
        let (code, msg) = rest.split_once(' ').unwrap_or(("125", rest));
        let _ = child.wait();
        Err(match code {
            "127" => EngineError::CommandNotFound(msg.to_string()),
            "126" => EngineError::CannotInvoke(msg.to_string()),
            "port" => EngineError::PortConflict(msg.to_string()),
            _ => EngineError::Invalid(msg.to_string()),
        })
    }
}
