//! The monitor: one detached process per running container (berth re-executed as the hidden
//! `__monitor` command, like conmon). It is a child subreaper (prctl(2)
//! `PR_SET_CHILD_SUBREAPER`), so the container's init becomes its child once the runtime's
//! `create` returns; it owns the container's stdio and log, serves attach clients, waits for
//! the exit, records it, applies the restart policy (Docker's back-off: 100 ms doubling to
//! 1 min, reset after 10 s of running) and tears the sandbox and rootfs down at the end.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{wait, WaitOptions};

use crate::attach::{self, FrameKind};
use crate::logs::LogWriter;
use crate::paths::ATTACH_SOCKET;
use crate::ready::ReadyMessage;
use crate::runtime::Verb;
use crate::state::{self, Status};
use crate::{Engine, EngineError};
use berth_sys::fd::SocketPath;

/// Failures of the monitor itself and of talking to it (the container's own failures are
/// the runtime's and the bundle's errors).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A system call of the monitor or of spawning it failed (`op` says which).
    #[error("container monitor: {op}: {source}")]
    Io {
        /// What was being done: `pipe`, `dup`, `console socket`, `cannot start the monitor`...
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The runtime did not hand over what the monitor needs.
    #[error("container monitor: {0}")]
    Runtime(&'static str),
    /// The monitor exited before it reported the container started.
    #[error("container monitor: the monitor exited before the container started ({status:?}); see its log under the container directory (monitor.log)")]
    Exited {
        /// How it exited, if known.
        status: Option<std::process::ExitStatus>,
    },
    /// The ready pipe said something unexpected or could not be read.
    #[error("container monitor: {0}")]
    Protocol(String),
}

impl MonitorError {
    /// A failed system call of the monitor, as an [`EngineError`].
    pub fn io(op: impl Into<String>, source: impl Into<std::io::Error>) -> EngineError {
        EngineError::Monitor(Self::Io {
            op: op.into(),
            source: source.into(),
        })
    }
}

/// Back-off bounds (moby `restartmanager`: 100 ms initial, doubling, 1 min max, reset after
/// a run of 10 s).
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// Entry point of `berth __monitor`. `ready_fd` is the pipe the starting CLI reads
/// ([`ReadyMessage`]s, one JSON line each). Returns the process exit code.
/// `lock_fd` is the container's monitor lock (see `lock`), held until this process exits.
pub fn main(engine: Engine, id: &str, attach_first: bool, ready_fd: RawFd, lock_fd: RawFd) -> i32 {
    let ready = berth_sys::fd::take_inherited(ready_fd).map(File::from).ok();
    let _lock = berth_sys::fd::take_inherited(lock_fd).ok();
    let _ = rustix::process::setsid();
    // prctl(2) PR_SET_CHILD_SUBREAPER: any non-zero value turns it on.
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        tracing::warn!(%e, "cannot become a child subreaper");
    }
    let mut m = Monitor {
        engine,
        id: id.to_string(),
        ready,
        hub: Arc::new(Hub::default()),
        first_client: None,
        ports: None,
    };
    let code = match m.prepare() {
        Ok(prepared) => {
            m.serve(&prepared, attach_first);
            0
        }
        Err(e) => {
            m.report_error(&e);
            1
        }
    };
    m.teardown();
    code
}

struct Monitor {
    engine: Engine,
    id: String,
    ready: Option<File>,
    hub: Arc<Hub>,
    first_client: Option<mpsc::Receiver<()>>,
    /// Published host ports, held until teardown has removed the rules.
    ports: Option<berth_net::ports::Reservation>,
}

/// The attach clients and the container's stdin end, shared with the acceptor and pumps.
#[derive(Default)]
struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    stdin: Mutex<Option<OwnedFd>>,
    tty: Mutex<bool>,
}

impl Hub {
    fn broadcast(&self, kind: FrameKind, data: &[u8]) {
        let mut clients = self.clients.lock().expect("hub lock");
        clients.retain_mut(|c| attach::write_frame(c, kind, data).is_ok());
    }
}

/// What one run of the container needs, computed once per monitor.
pub struct Prepared {
    stdin: bool,
    tty: bool,
}

impl Monitor {
    fn say(&mut self, msg: &ReadyMessage) {
        if let Some(r) = self.ready.as_mut() {
            let _ = msg.write_to(r);
        }
    }

    fn report_error(&mut self, e: &EngineError) {
        let msg = e.to_string().replace('\n', " ");
        tracing::error!(id = %self.id, error = %msg, "container did not start");
        let code = e.exit_code();
        let _ = state::update_state(&mut self.engine.store, &self.id, |s| {
            s.error = msg.clone();
            if s.status != Status::Exited {
                s.exit_code = if code == 125 { 128 } else { code };
            }
        });
        // A port conflict travels as its own kind: `run` removes a container refused for it.
        self.say(&ReadyMessage::failed(e));
        self.ready = None;
    }

    /// Records the monitor, then builds the bundle: rootfs, sandbox, etc files, config.json.
    fn prepare(&mut self) -> Result<Prepared, EngineError> {
        let me = std::process::id() as i32;
        let start = crate::reconcile::process_start_time(me).unwrap_or(0);
        state::update_state(&mut self.engine.store, &self.id, |s| {
            s.monitor_pid = me;
            s.monitor_start = start;
        })?;
        let c = self.engine.container(&self.id)?;
        std::fs::create_dir_all(self.engine.paths.run_dir(&self.id))
            .map_err(|e| EngineError::io(&self.engine.paths.run_dir(&self.id), e))?;
        let bundle = crate::bundle::write_bundle(&mut self.engine, &c)?;
        state::update_state(&mut self.engine.store, &self.id, |s| {
            s.sandbox_key = bundle.sandbox_key.clone();
        })?;
        berth_sys::failpoint::hit("run::after-bundle");
        self.ports = bundle.reservation;
        *self.hub.tty.lock().expect("hub lock") = c.config.tty;
        Ok(Prepared {
            stdin: c.config.open_stdin,
            tty: c.config.tty,
        })
    }

    fn serve(&mut self, p: &Prepared, attach_first: bool) {
        let sock = self.engine.paths.attach_socket(&self.id);
        let _ = std::fs::remove_file(&sock);
        let bound = SocketPath::new(&self.engine.paths.run_dir(&self.id), ATTACH_SOCKET)
            .and_then(|sp| UnixListener::bind(sp.path()));
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                self.report_error(&EngineError::io(&sock, e));
                return;
            }
        };
        let (tx, rx) = mpsc::channel();
        self.first_client = Some(rx);
        let hub = Arc::clone(&self.hub);
        std::thread::spawn(move || accept_loop(listener, hub, tx));
        let mut backoff = BACKOFF_START;
        let mut first = true;
        loop {
            let started = Instant::now();
            let code = match self.run_once(p, first && attach_first) {
                Ok(code) => code,
                Err(e) => {
                    if first {
                        self.report_error(&e);
                    } else {
                        let msg = e.to_string();
                        let _ = state::update_state(&mut self.engine.store, &self.id, |s| {
                            s.error = msg;
                            s.status = Status::Exited;
                        });
                    }
                    return;
                }
            };
            first = false;
            if !self.decide_restart(code) {
                return;
            }
            if started.elapsed() >= BACKOFF_RESET_AFTER {
                backoff = BACKOFF_START;
            }
            if !self.sleep_unless_stopped(backoff) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One run → wait → delete cycle. Returns the exit code.
    ///
    /// The usual path is a single `runc run --detach`: an attaching client is accepted first,
    /// and output waits in the pipes until the pumps start, so nothing is lost. Only an
    /// attached terminal (`run -it`) needs `create` and `start` apart: the client must get the
    /// pty master, which exists only after `create`.
    fn run_once(&mut self, p: &Prepared, wait_for_client: bool) -> Result<i32, EngineError> {
        let rt = self.engine.runtime.clone();
        let _ = rt.delete(&self.id);
        let dir = self.engine.paths.container_dir(&self.id);
        let pid_file = self.engine.paths.pid_file(&self.id);
        let _ = std::fs::remove_file(&pid_file);
        let mut io = ContainerIo::new(p, &self.engine.paths.console_socket(&self.id))?;
        let console = io.console_path.clone();
        let split = p.tty && wait_for_client;
        if !split {
            *self.hub.stdin.lock().expect("hub lock") = io.client_stdin.take();
            if wait_for_client {
                self.wait_for_client();
            }
        }
        let verb = if split {
            Verb::Create
        } else {
            Verb::RunDetached
        };
        rt.create(
            verb,
            &self.id,
            &dir,
            console.as_deref(),
            &pid_file,
            io.stdio()?,
        )?;
        berth_sys::failpoint::hit("run::after-runtime-create");
        let mut io = io.after_create()?;
        if let Some(fd) = io.client_stdin.take() {
            *self.hub.stdin.lock().expect("hub lock") = Some(fd);
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                EngineError::Monitor(MonitorError::Runtime("the runtime wrote no init pid"))
            })?;
        if split {
            self.wait_for_client();
            if let Err(e) = rt.start(&self.id) {
                let _ = rt.delete(&self.id);
                return Err(e);
            }
        }
        state::update_state(&mut self.engine.store, &self.id, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.started_at = Some(chrono::Utc::now());
            s.error.clear();
        })?;
        self.say(&ReadyMessage::Started);
        self.ready = None;
        berth_sys::failpoint::hit("run::after-started");
        let log = self.engine.paths.log_file(&self.id);
        let pumps = spawn_pumps(io.outputs, &log, &self.hub)?;
        let code = wait_for(pid);
        for p in pumps {
            let _ = p.join();
        }
        let _ = rt.delete(&self.id);
        *self.hub.stdin.lock().expect("hub lock") = None;
        Ok(code)
    }

    /// Tells the starting CLI it may attach, and waits until it has, or has died (the read
    /// end of the ready pipe closed), or 60 s passed. The container starts in every case, as
    /// Docker's does once `start` was asked for.
    fn wait_for_client(&mut self) {
        self.say(&ReadyMessage::Created);
        let Some(rx) = &self.first_client else { return };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return;
            }
            if self.ready.as_ref().is_none_or(reader_gone) {
                return;
            }
        }
    }

    /// Records the exit and says whether to restart.
    fn decide_restart(&mut self, code: i32) -> bool {
        let c = match self.engine.container(&self.id) {
            Ok(c) => c,
            Err(_) => return false,
        };
        let restart = !c.config.auto_remove
            && c.config
                .restart
                .should_restart(code, c.state.restart_count, c.state.user_stopped);
        let _ = state::update_state(&mut self.engine.store, &self.id, |s| {
            s.exit_code = code;
            s.pid = 0;
            s.finished_at = Some(chrono::Utc::now());
            s.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            if restart {
                s.restart_count += 1;
            }
        });
        self.hub
            .broadcast(FrameKind::Exit, code.to_string().as_bytes());
        self.hub.clients.lock().expect("hub lock").clear();
        restart
    }

    /// Sleeps `d`, waking early (and returning false) if the user stops the container.
    fn sleep_unless_stopped(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
            match self.engine.container(&self.id) {
                Ok(c) if c.state.user_stopped => {
                    let _ = state::update_state(&mut self.engine.store, &self.id, |s| {
                        s.status = Status::Exited;
                    });
                    return false;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Releases everything the container held; removes it with `--rm`.
    fn teardown(&mut self) {
        let _ = self.engine.runtime.delete(&self.id);
        let c = self.engine.container(&self.id).ok();
        let errors = crate::remove::release_resources(&mut self.engine, &self.id);
        self.ports = None;
        for e in &errors {
            tracing::error!(id = %self.id, error = %e, "teardown");
        }
        let _ = state::update_state(&mut self.engine.store, &self.id, |s| {
            s.monitor_pid = 0;
            s.monitor_start = 0;
            s.pid = 0;
            s.sandbox_key.clear();
            if matches!(s.status, Status::Running | Status::Restarting) {
                s.status = Status::Exited;
            }
        });
        if c.is_some_and(|c| c.config.auto_remove) {
            let _ = crate::remove::purge(&mut self.engine, &self.id);
        }
    }
}

/// The container's stdio for one run: pipes (or a console socket for `-t`) whose far ends go
/// to the runtime, and the near ends the monitor keeps.
struct ContainerIo {
    console_path: Option<std::path::PathBuf>,
    /// Keeps a `/proc/<pid>/fd/<n>` console path valid until the runtime has connected.
    _console_dir: Option<SocketPath>,
    console: Option<UnixListener>,
    child_ends: Vec<Option<OwnedFd>>,
    client_stdin: Option<OwnedFd>,
    outputs: Vec<(OwnedFd, FrameKind)>,
}

impl ContainerIo {
    fn new(p: &Prepared, console_path: &std::path::Path) -> Result<Self, EngineError> {
        // pipe2(2) with O_CLOEXEC: the runtime gets its ends through Stdio, nothing else.
        let pipe = || -> Result<(OwnedFd, OwnedFd), EngineError> {
            let (r, w) = std::io::pipe().map_err(|e| MonitorError::io("pipe", e))?;
            Ok((r.into(), w.into()))
        };
        if p.tty {
            let _ = std::fs::remove_file(console_path);
            let dir = console_path.parent().unwrap_or(console_path);
            let name = console_path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let sp = SocketPath::new(dir, name).map_err(|e| EngineError::io(console_path, e))?;
            let l = UnixListener::bind(sp.path()).map_err(|e| EngineError::io(console_path, e))?;
            return Ok(Self {
                console_path: Some(sp.path().to_path_buf()),
                _console_dir: Some(sp),
                console: Some(l),
                child_ends: vec![None, None, None],
                client_stdin: None,
                outputs: Vec::new(),
            });
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_child, client_stdin) = if p.stdin {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        Ok(Self {
            console_path: None,
            _console_dir: None,
            console: None,
            child_ends: vec![stdin_child, Some(out_w), Some(err_w)],
            client_stdin,
            outputs: vec![(out_r, FrameKind::Stdout), (err_r, FrameKind::Stderr)],
        })
    }

    fn stdio(&self) -> Result<[Stdio; 3], EngineError> {
        let one = |fd: &Option<OwnedFd>| -> Result<Stdio, EngineError> {
            Ok(match fd {
                Some(f) => Stdio::from(f.try_clone().map_err(|e| MonitorError::io("dup", e))?),
                None => Stdio::null(),
            })
        };
        Ok([
            one(&self.child_ends[0])?,
            one(&self.child_ends[1])?,
            one(&self.child_ends[2])?,
        ])
    }

    /// After `create`: drop the child's ends (so EOF arrives when the container exits) and,
    /// with a terminal, receive the pty master the runtime sent to the console socket.
    fn after_create(mut self) -> Result<Self, EngineError> {
        self.child_ends.clear();
        if let Some(l) = self.console.take() {
            l.set_nonblocking(true).ok();
            let deadline = Instant::now() + Duration::from_secs(10);
            let conn = loop {
                match l.accept() {
                    Ok((c, _)) => break c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err(EngineError::Monitor(MonitorError::Runtime(
                                "the runtime sent no terminal on the console socket",
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(MonitorError::io("console socket", e)),
                }
            };
            conn.set_nonblocking(false).ok();
            let mut buf = [0u8; 4096];
            let (_, fd) = attach::recv_fd(&conn, &mut buf)
                .map_err(|e| MonitorError::io("console socket", e))?;
            let master = fd.ok_or(EngineError::Monitor(MonitorError::Runtime(
                "no pty master was received",
            )))?;
            self.client_stdin = Some(master.try_clone().map_err(|e| MonitorError::io("dup", e))?);
            self.outputs = vec![(master, FrameKind::Stdout)];
            if let Some(p) = &self.console_path {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(self)
    }
}

fn accept_loop(listener: UnixListener, hub: Arc<Hub>, first: mpsc::Sender<()>) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut flag = [0u8; 1];
        if conn.read_exact(&mut flag).is_err() {
            continue;
        }
        let wants_stdin = flag[0] & attach::WANT_STDIN != 0;
        let tty = *hub.tty.lock().expect("hub lock");
        let fd = if !wants_stdin {
            None
        } else if tty {
            hub.stdin
                .lock()
                .expect("hub lock")
                .as_ref()
                .and_then(|f| f.try_clone().ok())
        } else {
            // A pipe's write end goes to one client only, so the container sees EOF when that
            // client's input ends (Docker's StdinOnce for `run -i`).
            hub.stdin.lock().expect("hub lock").take()
        };
        if attach::send_hello(&conn, fd.as_ref().map(|f| f.as_raw_fd())).is_err() {
            continue;
        }
        drop(fd);
        hub.clients.lock().expect("hub lock").push(conn);
        let _ = first.send(());
    }
}

fn spawn_pumps(
    outputs: Vec<(OwnedFd, FrameKind)>,
    log: &std::path::Path,
    hub: &Arc<Hub>,
) -> Result<Vec<JoinHandle<()>>, EngineError> {
    let mut handles = Vec::new();
    for (fd, kind) in outputs {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| EngineError::io(log, e))?;
        let stream = if kind == FrameKind::Stderr {
            "stderr"
        } else {
            "stdout"
        };
        let hub = Arc::clone(hub);
        handles.push(std::thread::spawn(move || {
            let mut w = LogWriter::new(file, stream);
            let mut src = File::from(fd);
            let mut buf = vec![0u8; 32 * 1024];
            // A pty master reads EIO once the last slave fd closes: treat it as EOF.
            while let Ok(n) = src.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = w.write(&buf[..n]);
                hub.broadcast(kind, &buf[..n]);
            }
            let _ = w.finish();
        }));
    }
    Ok(handles)
}

/// Whether nobody reads the pipe any more (poll(2) reports `POLLERR` on a write end whose
/// read end is closed).
fn reader_gone(pipe: &File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

/// Reaps children until `pid` exits; returns its exit code (128 + signal when killed, as
/// a shell reports it).
fn wait_for(pid: i32) -> i32 {
    loop {
        // wait(2), any child (pid -1). Not rustix's `waitpid(None, ..)`: that is pid 0, the
        // children of our own process group only, which the container's init is not in.
        match wait(WaitOptions::empty()) {
            Ok(Some((p, status))) if p.as_raw_nonzero().get() == pid => {
                if let Some(code) = status.exit_status() {
                    return code;
                }
                if let Some(sig) = status.terminating_signal() {
                    return 128 + sig;
                }
            }
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(Errno::CHILD) => {
                // Not our child (should not happen with the subreaper): poll for it.
                while crate::reconcile::pid_alive(pid) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return 137;
            }
            Err(_) => return 137,
        }
    }
}
