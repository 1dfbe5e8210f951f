//! Running commands with a deadline, and background processes killed (by pid) on drop.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs `cmd` with stdin closed, capturing stdout and stderr; kills it (SIGKILL, by pid) and
/// panics if it runs longer than `timeout`, so a hung `berth run` cannot hang the suite.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run_with_timeout`] but returns the failure (cannot spawn, deadline passed) as text
/// instead of panicking: for use in `Drop`.
pub(crate) fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot spawn {shown}: {e}"))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                return Err(format!(
                    "{shown} did not finish within {timeout:?}; stderr so far: {}",
                    String::from_utf8_lossy(&stderr)
                ));
            }
            Err(e) => return Err(format!("cannot wait for {shown}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// The result of one command, as text: what the suites assert on.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line, for failure messages.
    pub cmd: String,
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Outcome {
    /// Wraps a finished process's output.
    pub fn new(cmd: String, out: Output) -> Self {
        Self {
            cmd,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics (showing the command, code and both streams) unless it exited 0;
    /// returns stdout with surrounding whitespace trimmed.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(self.success(), "expected success: {self}");
        self.stdout.trim().to_string()
    }

    /// Accepts success, or a failure reported the berth way (stderr starting `berth: `):
    /// for cleanup steps whose target may or may not exist (e.g. `rm -f` of a container a
    /// refused `run` may have left created).
    #[track_caller]
    pub fn ok_or_berth_error(&self) {
        assert!(
            self.success() || self.stderr.starts_with("berth: "),
            "{self}"
        );
    }

    /// Panics unless the command exited with `code`; returns stderr.
    #[track_caller]
    pub fn code(&self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "expected exit code {code}: {self}");
        self.stderr.clone()
    }

    /// Panics unless the command failed (nonzero exit); returns stderr.
    #[track_caller]
    pub fn fails(&self) -> String {
        assert!(!self.success(), "expected failure: {self}");
        self.stderr.clone()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

/// A process started in the background (a listener, `logs -f`, a PTY session); SIGKILLed by
/// pid and reaped on drop unless it already exited.
#[derive(Debug)]
pub struct Background {
    child: Child,
}

impl Background {
    /// Spawns `cmd` with the given stdio settings already applied by the caller.
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        Self { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The underlying child, e.g. to take its stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` to the process (by pid).
    pub fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
