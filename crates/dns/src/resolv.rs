//! The upstream resolvers: the `nameserver` lines of `/etc/resolv.conf` as seen by the
//! namespace the server runs in (resolv.conf(5)), port 53.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

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
