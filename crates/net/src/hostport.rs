//! The host-mode port check: before a `--network host` container starts, the
//! ports it declares are compared with the sockets already holding ports in
//! the namespace berth runs in, and every clash is reported with its owners.
//! Also: which ports a running host-mode container really listens on.
//!
//! Address semantics follow Linux `bind(2)` (`inet_csk_get_port` /
//! `inet6_rcv_saddr_equal`): a wildcard address covers its whole family, a
//! specific address only itself, and an IPv6 wildcard without `IPV6_V6ONLY`
//! also covers IPv4. TCP and UDP ports are separate spaces.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use berth_sys::procfs::{self, ProcessInfo, ProcfsError};
use berth_sys::sockdiag::{self, Listener, SockDiagError};

use crate::port::PortSpec;

/// Errors gathering the host's listening sockets.
#[derive(Debug, thiserror::Error)]
pub enum HostPortError {
    /// Listing sockets failed.
    #[error("cannot list listening sockets for the host port check: {0}")]
    Listeners(#[from] SockDiagError),
    /// Scanning /proc for owners failed.
    #[error("cannot find the owners of listening sockets: {0}")]
    Owners(#[from] ProcfsError),
}

/// A declared port that is already taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The declared port that cannot be bound.
    pub port: PortSpec,
    /// Address of the socket that holds it (`0.0.0.0`, `::`, or specific).
    pub addr: IpAddr,
    /// Inode of that socket.
    pub inode: u64,
    /// Processes holding the socket, by pid (empty if unknown or not gathered).
    pub owners: Vec<ProcessInfo>,
}

/// Where kernel facts come from; [`KernelProbe`] in production, fakes in tests.
pub trait HostProbe {
    /// Sockets holding ports in the current network namespace.
    ///
    /// Errors: [`HostPortError::Listeners`].
    fn listeners(&self) -> Result<Vec<Listener>, HostPortError>;
    /// Processes holding each socket inode.
    ///
    /// Errors: [`HostPortError::Owners`].
    fn owners(&self, inodes: &[u64]) -> Result<HashMap<u64, Vec<ProcessInfo>>, HostPortError>;
}

/// The real probe: sock_diag in the calling thread's namespace and `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelProbe;

impl HostProbe for KernelProbe {
    fn listeners(&self) -> Result<Vec<Listener>, HostPortError> {
        Ok(sockdiag::list_listeners()?)
    }
    fn owners(&self, inodes: &[u64]) -> Result<HashMap<u64, Vec<ProcessInfo>>, HostPortError> {
        Ok(procfs::owners_of_inodes(inodes)?)
    }
}

/// The set of local addresses a bind covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    AllV4,
    AllV6,
    All,
    One(IpAddr),
}

impl Cover {
    fn of_listener(l: &Listener) -> Cover {
        match normalize(l.addr) {
            IpAddr::V4(a) if a.is_unspecified() => Cover::AllV4,
            IpAddr::V6(a) if a.is_unspecified() => {
                if l.v6only == Some(true) {
                    Cover::AllV6
                } else {
                    Cover::All
                }
            }
            a => Cover::One(a),
        }
    }

    /// A wanted bind: `None` or `::` is taken as dual-stack wildcard (what a
    /// host-mode server typically binds, Linux default `bindv6only=0`).
    fn of_wanted(addr: Option<IpAddr>) -> Cover {
        match addr.map(normalize) {
            None => Cover::All,
            Some(IpAddr::V4(a)) if a.is_unspecified() => Cover::AllV4,
            Some(IpAddr::V6(a)) if a.is_unspecified() => Cover::All,
            Some(a) => Cover::One(a),
        }
    }

    fn intersects(self, other: Cover) -> bool {
        use Cover::*;
        match (self, other) {
            (All, _) | (_, All) => true,
            (AllV4, AllV4) | (AllV6, AllV6) => true,
            (AllV4, AllV6) | (AllV6, AllV4) => false,
            (AllV4, One(a)) | (One(a), AllV4) => a.is_ipv4(),
            (AllV6, One(a)) | (One(a), AllV6) => a.is_ipv6(),
            (One(a), One(b)) => a == b,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address.
fn normalize(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
        v4 => v4,
    }
}

/// Pure conflict check: every (wanted port, listener) pair with the same
/// protocol and port whose addresses overlap (see the module doc), in the
/// order of `wanted` then `listeners`. `bind_addr` `None` means the container
/// may bind any address. Owners are left empty.
pub fn find_conflicts(
    wanted: &[PortSpec],
    bind_addr: Option<IpAddr>,
    listeners: &[Listener],
) -> Vec<Conflict> {
    let want = Cover::of_wanted(bind_addr);
    let mut out = Vec::new();
    for spec in wanted {
        for l in listeners {
            if l.proto == spec.proto
                && l.port == spec.port
                && want.intersects(Cover::of_listener(l))
            {
                out.push(Conflict {
                    port: *spec,
                    addr: l.addr,
                    inode: l.inode,
                    owners: Vec::new(),
                });
            }
        }
    }
    out
}

/// Checks `wanted` (any address) against the sockets of the calling thread's
/// network namespace and names the owning processes.
///
/// Errors: [`crate::NetError::HostPort`] if sockets or owners cannot be listed.
pub fn check_host_ports(wanted: &[PortSpec]) -> Result<Vec<Conflict>, crate::NetError> {
    Ok(check_host_ports_with(&KernelProbe, wanted, None)?)
}

/// [`check_host_ports`] with an explicit probe and bind address.
///
/// Errors: whatever the probe returns.
pub fn check_host_ports_with(
    probe: &dyn HostProbe,
    wanted: &[PortSpec],
    bind_addr: Option<IpAddr>,
) -> Result<Vec<Conflict>, HostPortError> {
    let mut conflicts = find_conflicts(wanted, bind_addr, &probe.listeners()?);
    if conflicts.is_empty() {
        return Ok(conflicts);
    }
    let inodes: Vec<u64> = conflicts.iter().map(|c| c.inode).collect();
    let owners = probe.owners(&inodes)?;
    for c in &mut conflicts {
        c.owners = owners.get(&c.inode).cloned().unwrap_or_default();
    }
    Ok(conflicts)
}

/// The berth container id of a process, from its `/proc/PID/cgroup` content:
/// berth sets the OCI `cgroupsPath` to `/berth/<id>` (64 lowercase hex), so any
/// hierarchy path with components `berth/<id>` (possibly nested under a parent
/// cgroup) names the container. `None` for processes outside berth.
pub fn berth_container_id(process: &ProcessInfo) -> Option<String> {
    container_id_in_cgroup(&process.cgroup)
}

/// [`berth_container_id`] on raw `/proc/PID/cgroup` text.
pub fn container_id_in_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        let parts: Vec<&str> = path.split('/').collect();
        parts
            .windows(2)
            .find(|w| w[0] == "berth" && is_container_id(w[1]))
            .map(|w| w[1].to_string())
    })
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sockets holding ports in the current namespace that belong to processes of
/// berth container `container_id` (for `ps`/`port` of host-mode containers).
///
/// Errors: [`HostPortError`] if sockets or owners cannot be listed.
pub fn listening_ports_of(container_id: &str) -> Result<Vec<Listener>, HostPortError> {
    listening_ports_where(&KernelProbe, |p| {
        berth_container_id(p).as_deref() == Some(container_id)
    })
}

/// Sockets holding ports that belong to any of `pids`.
///
/// Errors: [`HostPortError`] if sockets or owners cannot be listed.
pub fn listening_ports_of_pids(pids: &[i32]) -> Result<Vec<Listener>, HostPortError> {
    listening_ports_where(&KernelProbe, |p| pids.contains(&p.pid))
}

/// Sockets holding ports with at least one owner satisfying `pred`, sorted by
/// protocol, port, address.
///
/// Errors: whatever the probe returns.
pub fn listening_ports_where(
    probe: &dyn HostProbe,
    pred: impl Fn(&ProcessInfo) -> bool,
) -> Result<Vec<Listener>, HostPortError> {
    let listeners = probe.listeners()?;
    let inodes: Vec<u64> = listeners.iter().map(|l| l.inode).collect();
    let owners = probe.owners(&inodes)?;
    let mut out: Vec<Listener> = listeners
        .into_iter()
        .filter(|l| owners.get(&l.inode).is_some_and(|o| o.iter().any(&pred)))
        .collect();
    out.sort_by_key(|l| (l.proto, l.port, l.addr));
    Ok(out)
}

/// Docker-style port column for a host-mode listener:
/// `0.0.0.0:80->80/tcp (host)`, `[::]:53->53/udp (host)`.
#[derive(Debug, Clone, Copy)]
pub struct HostPortLabel<'a>(pub &'a Listener);

impl fmt::Display for HostPortLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        match l.addr {
            IpAddr::V4(a) => write!(f, "{a}:")?,
            IpAddr::V6(a) => write!(f, "[{a}]:")?,
        }
        write!(f, "{}->{}/{} (host)", l.port, l.port, l.proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Proto;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn l(proto: Proto, addr: &str, port: u16, inode: u64, v6only: Option<bool>) -> Listener {
        Listener {
            proto,
            addr: addr.parse().unwrap(),
            port,
            inode,
            v6only,
        }
    }
    fn tcp(port: u16) -> PortSpec {
        PortSpec {
            port,
            proto: Proto::Tcp,
        }
    }
    fn hits(wanted: &[PortSpec], bind: Option<&str>, ls: &[Listener]) -> Vec<u64> {
        let bind = bind.map(|b| b.parse().unwrap());
        find_conflicts(wanted, bind, ls)
            .iter()
            .map(|c| c.inode)
            .collect()
    }

    #[test]
    fn wildcard_listeners_cover_their_family() {
        let ls = [
            l(Proto::Tcp, "0.0.0.0", 80, 1, None),
            l(Proto::Tcp, "::", 81, 2, Some(true)),
            l(Proto::Tcp, "::", 82, 3, Some(false)),
        ];
        // Any-address request clashes with every wildcard.
        assert_eq!(hits(&[tcp(80), tcp(81), tcp(82)], None, &ls), vec![1, 2, 3]);
        // 0.0.0.0 covers IPv4 addresses but not IPv6 ones.
        assert_eq!(hits(&[tcp(80)], Some("10.1.2.3"), &ls), vec![1]);
        assert_eq!(hits(&[tcp(80)], Some("::1"), &ls), Vec::<u64>::new());
        // :: v6only covers IPv6 only; :: dual-stack covers both.
        assert_eq!(hits(&[tcp(81)], Some("::1"), &ls), vec![2]);
        assert_eq!(hits(&[tcp(81)], Some("127.0.0.1"), &ls), Vec::<u64>::new());
        assert_eq!(hits(&[tcp(81)], Some("0.0.0.0"), &ls), Vec::<u64>::new());
        assert_eq!(hits(&[tcp(82)], Some("127.0.0.1"), &ls), vec![3]);
        assert_eq!(hits(&[tcp(82)], Some("0.0.0.0"), &ls), vec![3]);
        assert_eq!(hits(&[tcp(82)], Some("fe80::1"), &ls), vec![3]);
    }

    #[test]
    fn specific_listeners_clash_only_with_themselves_and_wildcards() {
        let ls = [
            l(Proto::Tcp, "127.0.0.1", 80, 1, None),
            l(Proto::Tcp, "::1", 80, 2, Some(true)),
            l(Proto::Tcp, "::ffff:10.0.0.5", 80, 3, Some(false)),
        ];
        assert_eq!(hits(&[tcp(80)], Some("127.0.0.1"), &ls), vec![1]);
        assert_eq!(hits(&[tcp(80)], Some("127.0.0.2"), &ls), Vec::<u64>::new());
        assert_eq!(hits(&[tcp(80)], Some("::1"), &ls), vec![2]);
        // Wanted wildcards reach the specific ones of their family.
        assert_eq!(hits(&[tcp(80)], Some("0.0.0.0"), &ls), vec![1, 3]);
        assert_eq!(hits(&[tcp(80)], Some("::"), &ls), vec![1, 2, 3]);
        assert_eq!(hits(&[tcp(80)], None, &ls), vec![1, 2, 3]);
        // A v4-mapped listener is its IPv4 address.
        assert_eq!(hits(&[tcp(80)], Some("10.0.0.5"), &ls), vec![3]);
    }

    #[test]
    fn protocols_and_ports_are_separate() {
        let ls = [
            l(Proto::Udp, "0.0.0.0", 53, 1, None),
            l(Proto::Tcp, "0.0.0.0", 8080, 2, None),
        ];
        let udp53 = PortSpec {
            port: 53,
            proto: Proto::Udp,
        };
        let sctp53 = PortSpec {
            port: 53,
            proto: Proto::Sctp,
        };
        assert_eq!(hits(&[tcp(53)], None, &ls), Vec::<u64>::new());
        assert_eq!(hits(&[udp53, sctp53], None, &ls), vec![1]);
        assert_eq!(hits(&[tcp(8081)], None, &ls), Vec::<u64>::new());
        let c = &find_conflicts(&[udp53], None, &ls)[0];
        assert_eq!((c.port, c.addr), (udp53, IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(c.owners.is_empty());
    }

    struct FakeProbe {
        listeners: Vec<Listener>,
        owners: HashMap<u64, Vec<ProcessInfo>>,
    }
    impl HostProbe for FakeProbe {
        fn listeners(&self) -> Result<Vec<Listener>, HostPortError> {
            Ok(self.listeners.clone())
        }
        fn owners(&self, inodes: &[u64]) -> Result<HashMap<u64, Vec<ProcessInfo>>, HostPortError> {
            Ok(self
                .owners
                .iter()
                .filter(|(i, _)| inodes.contains(i))
                .map(|(i, o)| (*i, o.clone()))
                .collect())
        }
    }
    fn proc_info(pid: i32, comm: &str, cgroup: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            comm: comm.into(),
            cgroup: cgroup.into(),
        }
    }

    fn fake() -> FakeProbe {
        let nginx = proc_info(
            42,
            "nginx",
            &format!("12:pids:/berth/{ID}\n0::/berth/{ID}\n"),
        );
        let sshd = proc_info(7, "sshd", "0::/system.slice/ssh.service\n");
        FakeProbe {
            listeners: vec![
                l(Proto::Tcp, "0.0.0.0", 80, 100, None),
                l(Proto::Tcp, "::", 80, 101, Some(true)),
                l(Proto::Tcp, "0.0.0.0", 22, 200, None),
                l(Proto::Udp, "127.0.0.1", 5353, 300, None),
            ],
            owners: HashMap::from([
                (100, vec![nginx.clone()]),
                (101, vec![nginx]),
                (200, vec![sshd]),
            ]),
        }
    }

    #[test]
    fn check_fills_owners() {
        let conflicts =
            check_host_ports_with(&fake(), &[tcp(22), tcp(80), tcp(443)], None).unwrap();
        let summary: Vec<_> = conflicts
            .iter()
            .map(|c| {
                (
                    c.port.port,
                    c.addr,
                    c.owners.iter().map(|o| o.comm.as_str()).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (22, IpAddr::V4(Ipv4Addr::UNSPECIFIED), vec!["sshd"]),
                (80, IpAddr::V4(Ipv4Addr::UNSPECIFIED), vec!["nginx"]),
                (80, IpAddr::V6(Ipv6Addr::UNSPECIFIED), vec!["nginx"]),
            ]
        );
        // A socket nobody visible owns still conflicts, with no owners.
        let c = check_host_ports_with(
            &fake(),
            &[PortSpec {
                port: 5353,
                proto: Proto::Udp,
            }],
            None,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].owners.is_empty());
    }

    #[test]
    fn ports_of_a_container_by_cgroup() {
        let probe = fake();
        let ports = listening_ports_where(&probe, |p| berth_container_id(p).as_deref() == Some(ID))
            .unwrap();
        let labels: Vec<String> = ports.iter().map(|l| HostPortLabel(l).to_string()).collect();
        assert_eq!(
            labels,
            vec!["0.0.0.0:80->80/tcp (host)", "[::]:80->80/tcp (host)"]
        );
        let by_pid = listening_ports_where(&probe, |p| p.pid == 7).unwrap();
        assert_eq!(by_pid.iter().map(|l| l.port).collect::<Vec<_>>(), vec![22]);
    }

    #[test]
    fn container_id_from_cgroup_text() {
        let v1 = format!("12:pids:/berth/{ID}\n11:memory:/berth/{ID}\n0::/\n");
        assert_eq!(container_id_in_cgroup(&v1).as_deref(), Some(ID));
        let nested = format!("0::/machine.slice/berth/{ID}\n");
        assert_eq!(container_id_in_cgroup(&nested).as_deref(), Some(ID));
        assert_eq!(
            container_id_in_cgroup("0::/user.slice/session-1.scope\n"),
            None
        );
        assert_eq!(container_id_in_cgroup("0::/berth/abc\n"), None);
        let upper = format!("0::/berth/{}\n", ID.to_uppercase());
        assert_eq!(container_id_in_cgroup(&upper), None);
        assert_eq!(container_id_in_cgroup(""), None);
    }
}
