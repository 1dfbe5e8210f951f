//! `start` (and the second half of `run`): checks that must pass before anything is created
//! (host-mode port conflicts, a running `container:` target), then spawns the container's
//! monitor and waits for it to report the container started, or why it did not.

use std::fs::File;
use std::io::BufReader;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use berth_net::NetworkMode;
use rustix::io::{fcntl_setfd, FdFlags};

use crate::monitor::MonitorError;
use crate::ready::ReadyMessage;
use crate::state::{self, Container, Status};
use crate::{attach, Engine, EngineError};

/// Why a container cannot start (before or while its monitor builds the bundle).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--net container:NAME` whose target does not run.
    #[error("cannot join the network of container {target}: it is not running; start it first (berth start {target})")]
    TargetNotRunning {
        /// The target's name.
        target: String,
    },
    /// Another berth process holds the monitor lock for longer than a start takes.
    #[error("container {id} is already being started by another berth process")]
    AlreadyStarting {
        /// The container's id.
        id: String,
    },
    /// Neither the image nor the command line gives a command.
    #[error("no command specified: the image has no Cmd or Entrypoint; give a command after the image name")]
    NoCommand,
    /// `--add-host NAME:host-gateway` in a mode without a network to reach the host through.
    #[error("--add-host NAME:host-gateway needs a network to reach the host through (not --net none or container:)")]
    HostGatewayNeedsNetwork,
}

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
        let host_guard = match &c.config.network {
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
            self.expect_ready(&mut ready, &mut child, ReadyMessage::Created)?;
            let sock = self.paths.attach_socket(&c.id);
            let conn = berth_sys::fd::SocketPath::new(
                &self.paths.run_dir(&c.id),
                crate::paths::ATTACH_SOCKET,
            )
            .and_then(|sp| attach::connect(sp.path(), c.config.open_stdin))
            .map_err(|e| MonitorError::io(format!("cannot attach to {}", sock.display()), e))?;
            stream = Some(conn);
        }
        self.expect_ready(&mut ready, &mut child, ReadyMessage::Started)?;
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
        match &c.config.network {
            NetworkMode::Host if !c.config.skip_port_check => self.check_host_ports(c),
            NetworkMode::Container(target) => {
                let t = self.container(target)?;
                if t.state.status != Status::Running {
                    return Err(StartError::TargetNotRunning {
                        target: t.name.to_string(),
                    }
                    .into());
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
        let lock = lock
            .ok_or_else(|| EngineError::from(StartError::AlreadyStarting { id: id.to_string() }))?;
        let lock_fd = lock.inheritable_fd()?;
        // Both ends close-on-exec (pipe2(2) O_CLOEXEC) ...
        let (r, w) = std::io::pipe().map_err(|e| MonitorError::io("pipe", e))?;
        // ... but the write end must survive exec into the monitor.
        fcntl_setfd(&w, FdFlags::empty()).map_err(|e| MonitorError::io("fcntl", e))?;
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
            .map_err(|e| MonitorError::io("cannot start the monitor", e))?;
        drop(w);
        // The monitor has its own copy of the locked descriptor now.
        drop(lock);
        Ok((child, File::from(OwnedFd::from(r))))
    }

    /// Reads the next message from the monitor: `want`, or the failure it reports.
    fn expect_ready(
        &self,
        ready: &mut BufReader<File>,
        child: &mut Child,
        want: ReadyMessage,
    ) -> Result<(), EngineError> {
        let msg = ReadyMessage::read_from(ready);
        if matches!(&msg, Ok(Some(m)) if *m == want) {
            return Ok(());
        }
        let status = child.wait().ok();
        Err(match msg {
            Ok(Some(ReadyMessage::Failed { kind, message })) => kind.into_error(message),
            Ok(None) => MonitorError::Exited { status }.into(),
            Ok(Some(other)) => {
                MonitorError::Protocol(format!("expected {want:?}, got {other:?}")).into()
            }
            Err(e) => MonitorError::Protocol(e.to_string()).into(),
        })
    }
}
