//! Privileged tests: run only as root, inside throwaway network namespaces
//! (never the root namespace); otherwise they print `SKIP: reason`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;

use berth_sys::link;
use berth_sys::netns::{run_in, NetNs, NetNsError};
use berth_sys::procfs::owners_of_inodes;
use berth_sys::sockdiag::{list_listeners, Listener, Proto};
use berth_sys::{skip_unless_root, test_netns_or_skip};

fn mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

/// Binds an IPv6 socket with IPV6_V6ONLY set (std has no builder for it).
fn tcp6_v6only(addr: Ipv6Addr) -> TcpListener {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrIn6,
    };
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::Ipv6V6Only, &true).unwrap();
    let sa = SockaddrIn6::from(std::net::SocketAddrV6::new(addr, 8443, 0, 0));
    bind(fd.as_raw_fd(), &sa).unwrap();
    listen(&fd, Backlog::new(16).unwrap()).unwrap();
    TcpListener::from(fd)
}

#[test]
fn create_brings_lo_up_and_remove_leaves_no_mount() {
    skip_unless_root!();
    let dir = tempfile::tempdir_in("/run").unwrap();
    let path = dir.path().join("netns").join("c1");
    let ns = NetNs::create(&path).expect("create netns");
    assert!(mounted(&path), "pin is a mount point");

    let links = ns.run(link::list_links).unwrap().unwrap();
    assert_eq!(links.len(), 1, "a new netns has only lo: {links:?}");
    assert_eq!(links[0].name, "lo");
    assert!(links[0].up, "lo is up");
    let addrs = run_in(&path, link::list_addrs).unwrap().unwrap();
    assert!(addrs
        .iter()
        .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix_len == 8));

    // A second create on the same path refuses instead of stacking mounts.
    assert!(matches!(
        NetNs::create(&path),
        Err(NetNsError::CreateFile { .. })
    ));
    drop(ns);
    NetNs::remove(&path).unwrap();
    assert!(!mounted(&path));
    assert!(!path.exists());
    NetNs::remove(&path).expect("remove is idempotent");
}

#[test]
fn open_refuses_a_plain_file() {
    skip_unless_root!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale");
    fs::write(&path, "").unwrap();
    assert!(matches!(
        NetNs::open(&path),
        Err(NetNsError::NotNamespace { .. })
    ));
    NetNs::remove(&path).unwrap();
    assert!(!path.exists());
}

#[test]
fn run_in_does_not_move_the_calling_thread() {
    let ns = test_netns_or_skip!();
    let before = fs::read_link("/proc/thread-self/ns/net").unwrap();
    let inside = run_in(&ns.path(), || {
        fs::read_link("/proc/thread-self/ns/net").unwrap()
    })
    .unwrap();
    assert_ne!(before, inside);
    assert_eq!(before, fs::read_link("/proc/thread-self/ns/net").unwrap());
}

#[test]
fn set_up_unknown_link_is_not_found() {
    let ns = test_netns_or_skip!();
    let err = run_in(&ns.path(), || link::set_up("nope0"))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, link::LinkError::NotFound { .. }), "{err}");
}

#[test]
fn sockdiag_sees_listeners_with_owner() {
    let ns = test_netns_or_skip!();
    let (listeners, sockets) = run_in(&ns.path(), || {
        link::set_up("lo").unwrap();
        let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080));
        let lo4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 8081));
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8082));
        let sockets = (
            TcpListener::bind(any4).unwrap(),
            TcpListener::bind(lo4).unwrap(),
            TcpListener::bind(any6).unwrap(),
            tcp6_v6only(Ipv6Addr::LOCALHOST),
            UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5353))).unwrap(),
            UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 5354))).unwrap(),
        );
        (list_listeners().unwrap(), sockets)
    })
    .unwrap();
    let find = |proto, addr: IpAddr, port| -> &Listener {
        listeners
            .iter()
            .find(|l| l.proto == proto && l.addr == addr && l.port == port)
            .unwrap_or_else(|| panic!("{proto} {addr}:{port} missing from {listeners:?}"))
    };
    assert_eq!(
        find(Proto::Tcp, Ipv4Addr::UNSPECIFIED.into(), 8080).v6only,
        None
    );
    find(Proto::Tcp, Ipv4Addr::LOCALHOST.into(), 8081);
    assert_eq!(
        find(Proto::Tcp, Ipv6Addr::UNSPECIFIED.into(), 8082).v6only,
        Some(false)
    );
    assert_eq!(
        find(Proto::Tcp, Ipv6Addr::LOCALHOST.into(), 8443).v6only,
        Some(true)
    );
    find(Proto::Udp, Ipv4Addr::UNSPECIFIED.into(), 5353);
    find(Proto::Udp, Ipv6Addr::LOCALHOST.into(), 5354);
    assert_eq!(
        listeners.len(),
        6,
        "only our sockets live in the fresh netns: {listeners:?}"
    );

    let inodes: Vec<u64> = listeners.iter().map(|l| l.inode).collect();
    let owners = owners_of_inodes(&inodes).unwrap();
    let me = std::process::id() as i32;
    for l in &listeners {
        let o = &owners[&l.inode];
        assert_eq!(o.len(), 1, "{l:?} owned by {o:?}");
        assert_eq!(o[0].pid, me);
        assert!(!o[0].comm.is_empty());
    }
    drop(sockets);
}
