//! The upstream resolvers: the `nameserver` lines of `/etc/resolv.conf` as seen by the
//! namespace the server runs in (resolv.conf(5)), port 53; and how long and how often to ask
//! them: its `options timeout:N attempts:N`, else Docker's embedded DNS behaviour.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long and how often upstream servers are asked ([`crate::forward::forward`]).
///
/// Defaults follow Docker's embedded DNS (moby `libnetwork/resolver.go`: `extIOTimeout = 4 *
/// time.Second`, each external server asked once): 4 s per server, one round. glibc's own
/// defaults (resolv.conf(5): timeout 5 s, attempts 2) are not used as defaults: a client in a
/// container waits 5 s for *us*, so our SERVFAIL must come before that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardOptions {
    /// How long one server may take to answer (`options timeout:N`, capped at 30 s).
    pub timeout: Duration,
    /// Rounds over the whole server list (`options attempts:N`, capped at 5).
    pub attempts: u32,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(4),
            attempts: 1,
        }
    }
}

/// resolv.conf(5): "timeout:n ... capped to 30".
const MAX_TIMEOUT_SECS: u64 = 30;
/// resolv.conf(5): "attempts:n ... capped to 5".
const MAX_ATTEMPTS: u32 = 5;

/// The forwarding options of a resolv.conf text: `timeout:N` and `attempts:N` from its
/// `options` lines (a later value wins, as in glibc), clamped to resolv.conf(5)'s limits
/// (at least 1); [`ForwardOptions::default`] for what is not set.
pub fn options(text: &str) -> ForwardOptions {
    let mut o = ForwardOptions::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("options") {
            continue;
        }
        for w in words.take_while(|w| !w.starts_with(['#', ';'])) {
            if let Some(n) = w
                .strip_prefix("timeout:")
                .and_then(|n| n.parse::<u64>().ok())
            {
                o.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS));
            } else if let Some(n) = w
                .strip_prefix("attempts:")
                .and_then(|n| n.parse::<u32>().ok())
            {
                o.attempts = n.clamp(1, MAX_ATTEMPTS);
            }
        }
    }
    o
}

/// Reads [`options`] from `path`; a missing file gives the defaults.
///
/// Errors: [`ResolvError::Read`].
pub fn read_options(path: &Path) -> Result<ForwardOptions, ResolvError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(options(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ForwardOptions::default()),
        Err(source) => Err(ResolvError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The file read when no upstream list is given.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Errors of reading resolv.conf.
#[derive(Debug, thiserror::Error)]
pub enum ResolvError {
    /// The file exists but cannot be read.
    #[error(
        "cannot read {path}: {source}; fix its permissions or pass upstream servers explicitly"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Reads the upstream servers from `path`; a missing file means none (then every forwarded
/// query is answered SERVFAIL).
///
/// Errors: [`ResolvError::Read`].
pub fn read_upstreams(path: &Path) -> Result<Vec<SocketAddr>, ResolvError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(nameservers(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(ResolvError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The `nameserver ADDR` entries of a resolv.conf text, in order, as `ADDR:53`. Comments (`#`,
/// `;`) and other keywords are ignored; link-local IPv6 servers with a `%zone` are skipped
/// (a zone cannot be carried in a plain address and the server would be unreachable without it).
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let addr = words.next()?;
            match addr.parse::<IpAddr>() {
                Ok(ip) => Some(SocketAddr::new(ip, 53)),
                Err(_) => {
                    tracing::warn!(%addr, "ignoring unusable nameserver in resolv.conf");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_in_order() {
        let text = "# generated\nsearch corp.example\nnameserver 10.0.0.2\n; x\n  nameserver   2001:db8::53  \nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\nnameserver 10.0.0.3 # trailing\n";
        let got: Vec<String> = nameservers(text).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.0.0.2:53", "[2001:db8::53]:53", "10.0.0.3:53"]);
    }

    #[test]
    fn options_timeout_and_attempts_clamped_later_wins() {
        assert_eq!(options("nameserver 10.0.0.2\n"), ForwardOptions::default());
        let o = options("options ndots:2 timeout:2\noptions attempts:3 # x timeout:9\n");
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.attempts, 3);
        let o = options("options timeout:99 attempts:0\noptions timeout:7 attempts:50\n");
        assert_eq!(o.timeout, Duration::from_secs(7));
        assert_eq!(o.attempts, 5);
        let o = options("options timeout:0 attempts:bogus\n");
        assert_eq!(o.timeout, Duration::from_secs(1));
        assert_eq!(o.attempts, 1);
    }

    #[test]
    fn missing_file_means_no_upstream() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_upstreams(&dir.path().join("none")).unwrap().is_empty());
        let p = dir.path().join("resolv.conf");
        std::fs::write(&p, "nameserver 192.0.2.1\n").unwrap();
        assert_eq!(
            read_upstreams(&p).unwrap(),
            vec!["192.0.2.1:53".parse().unwrap()]
        );
    }
}
