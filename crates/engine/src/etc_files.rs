//! The `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` berth writes for a container and
//! bind-mounts over the image's (Docker's behaviour: the container may edit its copies, the
//! host's files are never touched).

use std::path::{Path, PathBuf};

use crate::EngineError;

/// The three files of one container, under its container dir.
#[derive(Debug, Clone)]
pub struct EtcPaths {
    /// `hosts`.
    pub hosts: PathBuf,
    /// `hostname`.
    pub hostname: PathBuf,
    /// `resolv.conf`.
    pub resolv_conf: PathBuf,
}

impl EtcPaths {
    /// The paths inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
        }
    }
}

/// The host's hostname (from the UTS namespace berth runs in).
pub fn host_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Loopback entries every container gets (as Docker's `etchosts.Build`).
const LOOPBACK_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes the files for a container that has its own network namespace (`none`):
/// loopback entries, and `hostname` mapped to 127.0.1.1 so the name resolves without a network;
/// resolv.conf copied from the host's (it is unused without a network, as in Docker).
pub fn write_isolated(dir: &Path, hostname: &str) -> Result<EtcPaths, EngineError> {
    let p = EtcPaths::in_dir(dir);
    write(
        &p.hosts,
        &format!("{LOOPBACK_HOSTS}127.0.1.1\t{hostname}\n"),
    )?;
    write(&p.hostname, &format!("{hostname}\n"))?;
    write(&p.resolv_conf, &host_file("/etc/resolv.conf"))?;
    Ok(p)
}

/// Writes copies of the host's files for a `--net host` container (Docker gives such a
/// container the host's /etc/hosts and /etc/resolv.conf).
pub fn write_host(dir: &Path, hostname: &str) -> Result<EtcPaths, EngineError> {
    let p = EtcPaths::in_dir(dir);
    let hosts = host_file("/etc/hosts");
    write(
        &p.hosts,
        if hosts.is_empty() {
            LOOPBACK_HOSTS
        } else {
            &hosts
        },
    )?;
    write(&p.hostname, &format!("{hostname}\n"))?;
    write(&p.resolv_conf, &host_file("/etc/resolv.conf"))?;
    Ok(p)
}

/// Writes the files for a container on a network: its address(es) mapped to its hostname and
/// aliases; resolv.conf pointing at the embedded DNS server (the gateway) on networks that have
/// one, else a copy of the host's (Docker's default bridge has no name resolution).
pub fn write_networked(
    dir: &Path,
    hostname: &str,
    network: &berth_net::NetworkState,
    ep: &berth_net::EndpointState,
) -> Result<EtcPaths, EngineError> {
    let p = EtcPaths::in_dir(dir);
    let mut hosts = LOOPBACK_HOSTS.to_string();
    for a in &ep.addresses {
        hosts.push_str(&format!("{}\t{hostname}\n", a.addr()));
    }
    write(&p.hosts, &hosts)?;
    write(&p.hostname, &format!("{hostname}\n"))?;
    let resolv = if network.dns {
        network
            .subnets
            .iter()
            .map(|s| format!("nameserver {}\n", s.gateway))
            .collect::<String>()
    } else {
        without_loopback_nameservers(&host_file("/etc/resolv.conf"))
    };
    write(&p.resolv_conf, &resolv)?;
    Ok(p)
}

/// The host's resolv.conf minus nameservers on loopback (127.0.0.53 of systemd-resolved,
/// ::1): a container in its own namespace cannot reach them (Docker filters them the same
/// way). When none is left, a comment says what to do instead of a silently dead resolver.
pub fn without_loopback_nameservers(text: &str) -> String {
    let is_loopback = |l: &str| {
        l.split_whitespace()
            .nth(1)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    };
    let mut out = String::new();
    let mut kept = 0;
    for line in text.lines() {
        let ns = line.trim_start().starts_with("nameserver");
        if ns && is_loopback(line) {
            continue;
        }
        kept += usize::from(ns);
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        out.push_str(
            "# berth: the host's resolv.conf lists only loopback nameservers, which a container \
             cannot reach; pass --dns IP or use a user-defined network (its DNS server forwards \
             from the host)\n",
        );
    }
    out
}

/// Applies `--add-host`, `--dns`, `--dns-search` and `--dns-option` to written files.
/// On a network with embedded DNS (`embedded_dns`) the gateway stays the first nameserver, so
/// container names keep resolving; `--dns` servers come after it.
pub fn apply_overrides(
    p: &EtcPaths,
    o: &crate::config::NetOptions,
    embedded_dns: bool,
    host_gateway: Option<std::net::IpAddr>,
) -> Result<(), EngineError> {
    if !o.add_hosts.is_empty() || !o.host_gateway_names.is_empty() {
        let mut hosts = std::fs::read_to_string(&p.hosts).unwrap_or_default();
        for (name, ip) in &o.add_hosts {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        if !o.host_gateway_names.is_empty() {
            let gw = host_gateway.ok_or_else(|| {
                EngineError::from(crate::start::StartError::HostGatewayNeedsNetwork)
            })?;
            for name in &o.host_gateway_names {
                hosts.push_str(&format!("{gw}\t{name}\n"));
            }
        }
        write(&p.hosts, &hosts)?;
    }
    if o.dns.is_empty() && o.dns_search.is_empty() && o.dns_options.is_empty() {
        return Ok(());
    }
    let old = std::fs::read_to_string(&p.resolv_conf).unwrap_or_default();
    let keep = |prefix: &str, replaced: bool| -> Vec<String> {
        if replaced {
            Vec::new()
        } else {
            old.lines()
                .filter(|l| l.starts_with(prefix))
                .map(str::to_string)
                .collect()
        }
    };
    let mut out: Vec<String> = keep("nameserver", !o.dns.is_empty() && !embedded_dns);
    out.extend(o.dns.iter().map(|d| format!("nameserver {d}")));
    out.extend(keep("search", !o.dns_search.is_empty()));
    if !o.dns_search.is_empty() {
        out.push(format!("search {}", o.dns_search.join(" ")));
    }
    out.extend(keep("options", !o.dns_options.is_empty()));
    if !o.dns_options.is_empty() {
        out.push(format!("options {}", o.dns_options.join(" ")));
    }
    write(&p.resolv_conf, &(out.join("\n") + "\n"))
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn write(path: &Path, text: &str) -> Result<(), EngineError> {
    std::fs::write(path, text).map_err(|e| EngineError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped() {
        let out = without_loopback_nameservers("nameserver 127.0.0.53\nsearch lan\n");
        assert!(!out.contains("127.0.0.53"));
        assert!(out.contains("search lan"));
        assert!(out.contains("--dns"));
        let out = without_loopback_nameservers("nameserver ::1\nnameserver 10.0.0.1\n");
        assert_eq!(out, "nameserver 10.0.0.1\n");
    }

    #[test]
    fn isolated_hosts_name_the_container() {
        let d = tempfile::tempdir().unwrap();
        let p = write_isolated(d.path(), "abc123").unwrap();
        let hosts = std::fs::read_to_string(p.hosts).unwrap();
        assert!(hosts.contains("127.0.0.1\tlocalhost"));
        assert!(hosts.contains("abc123"));
        assert_eq!(std::fs::read_to_string(p.hostname).unwrap(), "abc123\n");
    }
}
