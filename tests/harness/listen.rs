//! Plain (non-berth) listeners in a sandbox host, and queries of who listens where (`ss`),
//! for the host-mode port checks.

use std::time::Duration;

use crate::command::Background;
use crate::sandbox::SandboxHost;

/// A socket protocol as `ss` and the port check name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP (listening sockets).
    Tcp,
    /// UDP (bound sockets).
    Udp,
}

impl Proto {
    fn ss_flag(self) -> &'static str {
        match self {
            Proto::Tcp => "-ltnpH",
            Proto::Udp => "-lunpH",
        }
    }
}

/// Python that binds `ADDR:PORT` (IPv6 only when ADDR contains ':') and then sleeps.
const LISTENER: &str = r#"
import socket, sys, time
proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
kind = socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM
s = socket.socket(fam, kind)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((addr, port))
if kind == socket.SOCK_STREAM:
    s.listen(8)
time.sleep(3600)
"#;

impl SandboxHost {
    /// Starts a python3 listener on `addr:port` (`proto`) in the host's namespace and waits
    /// until `ss` shows it; returns its guard and the listening pid. Panics after 10 s.
    pub fn listen(&self, proto: Proto, addr: &str, port: u16) -> (Background, u32) {
        let p = match proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        let mut cmd = self.netns().command("python3");
        cmd.args(["-c", LISTENER, p, addr, &port.to_string()]);
        cmd.stdin(std::process::Stdio::null());
        let bg = Background::spawn(&mut cmd);
        let mut pid = None;
        crate::wait_until(Duration::from_secs(10), || {
            pid = self.listener_pid(proto, port);
            pid.is_some()
        });
        let pid = pid.unwrap_or_else(|| panic!("listener {p} {addr}:{port} did not come up"));
        (bg, pid)
    }

    /// The pid of a process listening on `port`/`proto` in the host namespace (per `ss -p`).
    pub fn listener_pid(&self, proto: Proto, port: u16) -> Option<u32> {
        let out = self.sh(&format!("ss {} 'sport = :{port}'", proto.ss_flag()));
        let text = out.stdout;
        let at = text.find("pid=")? + 4;
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// Waits up to `timeout` until something listens on TCP `port` in the host namespace.
    pub fn wait_listening(&self, port: u16, timeout: Duration) -> bool {
        crate::wait_until(timeout, || self.listener_pid(Proto::Tcp, port).is_some())
    }

    /// One shell-quoted command line running berth in this host, for `script -c` or tmux.
    pub fn berth_shell_line(&self, args: &[&str]) -> String {
        let cmd = self.berth_command(args);
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes `s` for a POSIX shell (single quotes, embedded ones as `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
