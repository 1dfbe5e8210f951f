//! Privileged tests: run only as root, inside throwaway network namespaces
//! (never the root namespace); otherwise they print `SKIP: reason`.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_net::hostport::{listening_ports_of_pids, HostPortLabel};
use berth_net::{
    berth_container_id, check_host_ports, listening_ports_of, NetNsSpec, NetworkMode, PortSpec,
    Proto, Sandbox,
};
use berth_sys::netns::run_in;
use berth_sys::{link, skip_unless_root, test_netns_or_skip};

fn mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == path.to_str())
}

fn tcp(port: u16) -> PortSpec {
    PortSpec {
        port,
        proto: Proto::Tcp,
    }
}

#[test]
fn none_sandbox_is_a_pinned_netns_with_lo_and_is_removed() {
    skip_unless_root!();
    let runroot = tempfile::tempdir_in("/run").unwrap();
    let id = "a".repeat(64);
    let sb = Sandbox::create(runroot.path(), &id, &NetworkMode::None, None).unwrap();
    let path = Sandbox::netns_path(runroot.path(), &id);
    assert_eq!(sb.spec().netns, NetNsSpec::Path(path.clone()));
    assert!(sb.owns_namespace());
    assert!(mounted(&path));
    let links = run_in(&path, link::list_links).unwrap().unwrap();
    assert_eq!(
        links
            .iter()
            .map(|l| (l.name.as_str(), l.up))
            .collect::<Vec<_>>(),
        vec![("lo", true)]
    );

    // container:X joins the same namespace without owning it.
    let mode = NetworkMode::Container(id.clone());
    let joined = Sandbox::create(
        runroot.path(),
        "b",
        &mode,
        Some(NetNsSpec::Path(path.clone())),
    )
    .unwrap();
    assert!(!joined.owns_namespace());
    Sandbox::remove(runroot.path(), "b").unwrap();
    assert!(
        mounted(&path),
        "removing a joiner leaves the owner's namespace"
    );

    Sandbox::remove(runroot.path(), &id).unwrap();
    assert!(!mounted(&path));
    assert!(!path.exists());
    Sandbox::remove(runroot.path(), &id).expect("idempotent");
}

#[test]
fn host_port_check_names_the_owner_inside_a_netns() {
    let ns = test_netns_or_skip!();
    let me = std::process::id() as i32;
    let (conflicts, mine, sockets) = run_in(&ns.path(), || {
        link::set_up("lo").unwrap();
        let sockets = (
            TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080))).unwrap(),
            UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 5353))).unwrap(),
        );
        let wanted = [
            tcp(8080),
            tcp(8081),
            PortSpec {
                port: 5353,
                proto: Proto::Udp,
            },
        ];
        let conflicts = check_host_ports(&wanted).unwrap();
        let mine = listening_ports_of_pids(&[me]).unwrap();
        (conflicts, mine, sockets)
    })
    .unwrap();
    let got: Vec<(String, String)> = conflicts
        .iter()
        .map(|c| (c.port.to_string(), c.addr.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("8080/tcp".into(), "0.0.0.0".into()),
            ("5353/udp".into(), "::1".into())
        ]
    );
    for c in &conflicts {
        assert_eq!(c.owners.iter().map(|o| o.pid).collect::<Vec<_>>(), vec![me]);
    }
    let labels: Vec<String> = mine.iter().map(|l| HostPortLabel(l).to_string()).collect();
    assert_eq!(
        labels,
        vec![
            "0.0.0.0:8080->8080/tcp (host)",
            "[::1]:5353->5353/udp (host)"
        ]
    );
    drop(sockets);
}

/// A child process in a `/berth/<id>` pids cgroup; killed (by pid) and the
/// cgroup removed on drop.
struct CgroupChild {
    child: Child,
    dir: PathBuf,
    /// The `/berth` parent, when this test created it.
    created_parent: Option<PathBuf>,
}

impl Drop for CgroupChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir(&self.dir);
        if let Some(parent) = &self.created_parent {
            // Fails harmlessly if real containers appeared under it meanwhile.
            let _ = fs::remove_dir(parent);
        }
    }
}

#[test]
fn container_processes_are_found_by_cgroup() {
    let ns = test_netns_or_skip!();
    let id = format!("{:064x}", u128::from(std::process::id()) << 32 | 0xbe27);
    let parent = PathBuf::from("/sys/fs/cgroup/pids/berth");
    let created_parent = (!parent.exists()).then(|| parent.clone());
    let dir = parent.join(&id);
    if let Err(e) = fs::create_dir_all(&dir) {
        // The cgroup layout is the kernel's (v1 pids controller mounted): a kernel skip.
        berth_sys::testing::skip_kernel(&format!(
            "cannot create a v1 pids cgroup {}: {e}",
            dir.display()
        ));
        return;
    }
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["busybox", "nc", "-l", "-p", "9090"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let guard = CgroupChild {
        child,
        dir,
        created_parent,
    };
    fs::write(guard.dir.join("cgroup.procs"), guard.child.id().to_string()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    let ports = loop {
        let ports = run_in(&ns.path(), || listening_ports_of(&id))
            .unwrap()
            .unwrap();
        if !ports.is_empty() || Instant::now() > deadline {
            break ports;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ports.iter().map(|l| l.port).collect::<Vec<_>>(),
        vec![9090],
        "{ports:?}"
    );

    let conflicts = run_in(&ns.path(), || check_host_ports(&[tcp(9090)]))
        .unwrap()
        .unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let owner = &conflicts[0].owners[0];
    assert_eq!(owner.pid, guard.child.id() as i32);
    assert_eq!(berth_container_id(owner).as_deref(), Some(id.as_str()));
    drop(guard);
}
