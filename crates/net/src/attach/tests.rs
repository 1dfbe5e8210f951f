//! Unit tests of attach/detach over the recording fakes of the manager's seams.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_store::Store;
use tempfile::TempDir;

use super::*;
use crate::ipam::LocalIpam;
use crate::kernel::fake::{FakeFirewall, FakeNetlink, Journal};
use crate::kernel::Netlink;
use crate::manager::{NetworkCreateRequest, Seams};
use crate::model::{DriverName, SubnetConfig};

const CONTAINER: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

struct Rig {
    dir: TempDir,
    store: Store,
    journal: Journal,
    netns: PathBuf,
}

impl Rig {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO containers(id, name, image_id, config, state, created) \
                     VALUES (?1, 'web', 'img', '{}', '{}', '')",
                    [CONTAINER],
                )
            })
            .unwrap();
        let netns = dir.path().join("netns-web");
        std::fs::write(&netns, b"").unwrap();
        Self {
            dir,
            store,
            journal: Journal::new(),
            netns,
        }
    }

    fn manager(&mut self) -> Manager<'_> {
        let seams = Seams {
            netlink: Box::new(FakeNetlink(self.journal.clone())),
            firewall: Box::new(FakeFirewall(self.journal.clone())),
            ipam: Box::new(LocalIpam),
        };
        Manager::with_seams(&mut self.store, seams)
    }

    /// A bridge network `name` on `subnet`, and the container's endpoint on it.
    fn join(&mut self, name: &str, subnet: &str, default_route: bool) -> NetworkState {
        let req = NetworkCreateRequest {
            name: name.parse().unwrap(),
            driver: DriverName::Bridge,
            subnets: vec![SubnetConfig {
                subnet: Some(subnet.parse().unwrap()),
                ..Default::default()
            }],
            ipv6: false,
            internal: false,
            mtu: None,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
        };
        let n = self.manager().create(req).unwrap();
        let netns = self.netns.clone();
        let ereq = EndpointRequest {
            default_route,
            ..EndpointRequest::default()
        };
        self.manager()
            .connect(&n, CONTAINER, &netns, &ereq)
            .unwrap();
        n
    }
}

#[test]
fn a_disconnect_moves_the_default_route_and_the_resolver_to_the_remaining_network() {
    let mut rig = Rig::new();
    let first = rig.join("n1", "10.88.0.0/24", true);
    let second = rig.join("n2", "10.89.0.0/24", false);
    let netns = rig.netns.clone();
    let resolv = rig.dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.88.0.1\noptions ndots:0\n").unwrap();
    let ep = rig.manager().endpoints_of(CONTAINER).unwrap()[0].clone();
    assert_eq!(ep.network_id, first.id);
    assert!(interface_present(&rig.manager(), &netns, &ep));
    rig.manager().disconnect(&ep, &netns).unwrap();
    assert!(!interface_present(&rig.manager(), &netns, &ep));

    repair_after_disconnect(&rig.manager(), CONTAINER, &first, &netns, &resolv).unwrap();
    let calls = rig.journal.calls();
    assert!(
        calls
            .iter()
            .any(|c| c == "add_route 0.0.0.0/0 via Some(10.89.0.1) dev eth1"),
        "{calls:?}"
    );
    let ns = netns.display().to_string();
    assert!(
        rig.journal
            .objects()
            .iter()
            .any(|o| o.starts_with(&format!("route {ns} 0.0.0.0/0 "))),
        "{:?}",
        rig.journal.objects()
    );
    assert_eq!(
        std::fs::read_to_string(&resolv).unwrap(),
        "nameserver 10.89.0.1\noptions ndots:0\n"
    );
    assert!(second.dns);
}

#[test]
fn a_failing_route_is_reported_and_the_resolver_is_still_repaired() {
    let mut rig = Rig::new();
    let first = rig.join("n1", "10.88.0.0/24", true);
    rig.join("n2", "10.89.0.0/24", false);
    let netns = rig.netns.clone();
    let resolv = rig.dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.88.0.1\n").unwrap();
    let ep = rig.manager().endpoints_of(CONTAINER).unwrap()[0].clone();
    rig.manager().disconnect(&ep, &netns).unwrap();
    rig.journal.fail_from(rig.journal.changes());
    let err =
        repair_after_disconnect(&rig.manager(), CONTAINER, &first, &netns, &resolv).unwrap_err();
    assert!(matches!(err, AttachError::Route(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(&resolv).unwrap(),
        "nameserver 10.89.0.1\n"
    );
}

#[test]
fn one_host_port_published_twice_is_refused_before_any_socket() {
    let req = |ip: Option<&str>, port| PublishRequest {
        host_ip: ip.map(|i| i.parse().unwrap()),
        host_port: port,
        container_port: 80,
        proto: Proto::Tcp,
    };
    let err = reserve_host_ports(&[req(None, 1), req(Some("127.0.0.1"), 1)], |_, _| {
        unreachable!("no socket is tried")
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("host port 1/tcp is published twice"),
        "{err}"
    );
    assert!(check_duplicate_host_ports(&[req(Some("127.0.0.1"), 1), req(Some("::1"), 1)]).is_ok());
}

#[test]
fn join_under_the_lock_undoes_a_failing_primary_and_detach_all_leaves_nothing() {
    let mut rig = Rig::new();
    let a = rig.join("n1", "10.88.0.0/24", true);
    let b = rig.join("n2", "10.89.0.0/24", false);
    let netns = rig.netns.clone();
    let runroot = rig.dir.path().join("run");
    for ep in rig.manager().endpoints_of(CONTAINER).unwrap() {
        rig.manager().disconnect(&ep, &netns).unwrap();
    }
    let clean = rig.journal.objects();
    let primary = EndpointRequest {
        default_route: true,
        ..EndpointRequest::default()
    };
    let journal = rig.journal.clone();
    let mut at = Attacher::begin(rig.manager(), &runroot).unwrap();
    // The lock is held: another taker would wait (flock LOCK_NB says so).
    let other = std::fs::File::open(runroot.join("locks/networks")).unwrap();
    assert!(held_elsewhere(&other));
    let joined = at.join(CONTAINER, &netns, (&a, &primary), &[]).unwrap();
    assert_eq!(joined.networks, vec![a.clone()]);
    // A primary whose kernel steps fail is an error, and undone.
    journal.fail_from(journal.changes());
    let failed = at.join(CONTAINER, &netns, (&b, &primary), &[]);
    assert!(failed.is_err(), "a failing primary is an error");
    journal.heal();
    assert_eq!(at.manager().endpoints_of(CONTAINER).unwrap().len(), 1);
    let all = at.detach_all(CONTAINER, &netns, true);
    assert!(all.is_empty(), "{all:?}");
    drop(at);
    assert_eq!(rig.journal.objects(), clean);
    assert_eq!(rig.manager().endpoints_of(CONTAINER).unwrap(), Vec::new());
    assert!(!held_elsewhere(&other));
}

#[test]
fn join_skips_an_other_network_that_fails_and_keeps_the_primary() {
    let mut rig = Rig::new();
    let a = rig.join("n1", "10.88.0.0/24", true);
    let b = rig.join("n2", "10.89.0.0/24", false);
    let netns = rig.netns.clone();
    let runroot = rig.dir.path().join("run");
    for ep in rig.manager().endpoints_of(CONTAINER).unwrap() {
        rig.manager().disconnect(&ep, &netns).unwrap();
    }
    let journal = rig.journal.clone();
    let mut at = Attacher::begin(rig.manager(), &runroot).unwrap();
    let primary = EndpointRequest {
        default_route: true,
        ..EndpointRequest::default()
    };
    // The primary's connect makes a fixed number of changes; fail everything after them.
    let start = journal.changes();
    let probe = at.join(CONTAINER, &netns, (&a, &primary), &[]).unwrap();
    let per_connect = journal.changes() - start;
    at.detach_all(CONTAINER, &netns, true);
    journal.fail_from(journal.changes() + per_connect);
    let others = [(b.clone(), EndpointRequest::default())];
    let joined = at.join(CONTAINER, &netns, (&a, &primary), &others).unwrap();
    assert_eq!(joined.networks, vec![a.clone()]);
    assert_eq!(joined.skipped.len(), 1);
    assert_eq!(joined.skipped[0].0.id, b.id);
    assert_ne!(joined.endpoint.id, probe.endpoint.id);
    let eps = at.manager().endpoints_of(CONTAINER).unwrap();
    assert_eq!(
        eps.len(),
        1,
        "the skipped network left no endpoint: {eps:?}"
    );
}

/// Whether `file`'s lock is held by another open file description.
fn held_elsewhere(file: &std::fs::File) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    match Flock::lock(file.try_clone().unwrap(), FlockArg::LockExclusiveNonblock) {
        Ok(l) => {
            drop(l);
            false
        }
        Err(_) => true,
    }
}

#[test]
fn connect_refuses_a_second_endpoint_and_replaces_one_without_its_interface() {
    let mut rig = Rig::new();
    let a = rig.join("n1", "10.88.0.0/24", true);
    let netns = rig.netns.clone();
    let runroot = rig.dir.path().join("run");
    let resolv = rig.dir.path().join("resolv.conf");
    let journal = rig.journal.clone();
    let mut at = Attacher::begin(rig.manager(), &runroot).unwrap();
    let req = EndpointRequest::default();
    assert!(matches!(
        at.connect(CONTAINER, &netns, &a, req.clone()).unwrap(),
        Connected::Already
    ));
    // The interface vanishes behind the record (a connect killed midway): the record is
    // dropped and the endpoint made afresh.
    let old = at.manager().endpoints_of(CONTAINER).unwrap().remove(0);
    let nl = FakeNetlink(journal.clone());
    let ifname = old.ifname.to_string();
    crate::kernel::in_netns(&nl, &netns, || nl.delete_link(&ifname))
        .unwrap()
        .unwrap();
    assert!(!interface_present(at.manager(), &netns, &old));
    let made = at.connect(CONTAINER, &netns, &a, req).unwrap();
    let Connected::New(new) = made else {
        panic!("{made:?}");
    };
    let NewEndpoint { endpoint, stale } = *new;
    assert!(stale.is_some(), "the stale endpoint was dropped");
    assert_ne!(endpoint.id, old.id);
    assert!(interface_present(at.manager(), &netns, &endpoint));
    assert_eq!(
        at.manager().endpoints_of(CONTAINER).unwrap(),
        vec![endpoint]
    );
    match at.disconnect(CONTAINER, &netns, &a, &resolv).unwrap() {
        Disconnected::Done { repair } => assert!(repair.is_ok()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        at.disconnect(CONTAINER, &netns, &a, &resolv).unwrap(),
        Disconnected::NotConnected
    ));
    assert!(at.manager().endpoints_of(CONTAINER).unwrap().is_empty());
}
