//! Unit tests of the network manager over the recording fakes of its seams (issue 12 item 2):
//! `network create` (bridge, macvlan with a dummy parent and a host shim), connect,
//! disconnect and `network rm`, with a failure injected at each of their kernel and firewall
//! steps in turn. A failed create/connect must undo what it made in reverse order, report an
//! undo that fails too, and leave nothing behind: no link, address, route, firewall element,
//! record or address allocation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_store::Store;
use tempfile::TempDir;

use super::{EndpointRequest, Manager, ManagerError, NetworkCreateRequest, Seams};
use crate::ipam::LocalIpam;
use crate::kernel::fake::{FakeFirewall, FakeNetlink, Journal};
use crate::model::{DriverName, EndpointState, NetworkState};

const CONTAINER: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// A store in a temporary directory, a fake kernel and firewall, and a sandbox "pin" (a file:
/// the fake only needs a path that opens).
struct Rig {
    _dir: TempDir,
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
        let journal = Journal::new();
        journal.add_host_link("eth0");
        journal.add_host_link("nic0");
        Self {
            _dir: dir,
            store,
            journal,
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

    fn count(&self, table: &str) -> i64 {
        self.store
            .conn()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn connect(&mut self, n: &NetworkState) -> Result<EndpointState, ManagerError> {
        let netns = self.netns.clone();
        let req = EndpointRequest {
            default_route: true,
            ..EndpointRequest::default()
        };
        self.manager().connect(n, CONTAINER, &netns, &req)
    }
}

fn request(driver: DriverName, options: &[(&str, &str)]) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: "n1".parse().unwrap(),
        driver,
        subnets: vec![crate::model::SubnetConfig {
            subnet: Some("10.88.0.0/24".parse().unwrap()),
            ..Default::default()
        }],
        ipv6: false,
        internal: false,
        mtu: None,
        labels: BTreeMap::new(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The requests under test: a bridge, a macvlan network on an existing parent with a host
/// shim, and an internal ipvlan network on a dummy parent berth creates.
fn requests() -> Vec<NetworkCreateRequest> {
    vec![
        request(DriverName::Bridge, &[]),
        request(
            DriverName::Macvlan,
            &[("parent", "nic0"), ("host_access", "true")],
        ),
        request(DriverName::Ipvlan, &[]),
    ]
}

/// Checks that, from event `from` on, the `-` events are the `+` events reversed.
fn assert_undone_in_reverse(journal: &Journal, from: usize, step: usize) {
    let events = journal.events().split_off(from);
    let made: Vec<&str> = events.iter().filter_map(|e| e.strip_prefix('+')).collect();
    let undone: Vec<&str> = events.iter().filter_map(|e| e.strip_prefix('-')).collect();
    let mut reversed = made.clone();
    reversed.reverse();
    assert_eq!(
        undone,
        reversed,
        "step {step}: undo must delete what was made, in reverse: {events:?} (calls {:?})",
        journal.calls()
    );
}

#[test]
fn a_create_failing_at_any_step_undoes_in_reverse_and_leaves_nothing() {
    for req in requests() {
        let mut ok = Rig::new();
        let before = ok.journal.objects();
        ok.manager().create(req.clone()).unwrap();
        let steps = ok.journal.changes();
        assert!(steps > 1, "{:?}", ok.journal.calls());
        for step in 0..steps {
            let mut rig = Rig::new();
            rig.journal.fail_at(step);
            let err = rig.manager().create(req.clone()).unwrap_err();
            assert!(err.to_string().contains("ermitted"), "step {step}: {err}");
            assert!(!matches!(err, ManagerError::Undo { .. }), "{err}");
            assert_eq!(rig.journal.objects(), before, "{} step {step}", req.driver);
            assert_undone_in_reverse(&rig.journal, 0, step);
            assert_eq!(rig.count("networks"), 0);
            assert_eq!(rig.count("ipam_allocations"), 0);
        }
    }
}

#[test]
fn a_failing_undo_is_reported_with_the_failure_it_undoes() {
    let mut rig = Rig::new();
    let req = request(DriverName::Bridge, &[]);
    // Every change from the bridge's creation on fails: the create, then deleting the bridge
    // and the rules while undoing.
    let mut ok = Rig::new();
    ok.manager().create(req.clone()).unwrap();
    let bridge_step = ok
        .journal
        .calls()
        .iter()
        .position(|c| c.starts_with("create_bridge"))
        .unwrap();
    rig.journal.fail_from(bridge_step);
    let err = rig.manager().create(req).unwrap_err();
    let ManagerError::Undo { error, undo } = &err else {
        panic!("expected an undo failure, got {err}");
    };
    assert!(error.to_string().contains("create_bridge"), "{error}");
    assert_eq!(undo.len(), 2, "{err}");
    assert!(undo[0].to_string().contains("delete_link"), "{err}");
    assert!(undo[1].to_string().contains("remove_network"), "{err}");
    assert!(err.to_string().contains("undoing it failed too"), "{err}");
    // The record goes anyway: the next command's firewall check repairs the rest.
    assert_eq!(rig.count("networks"), 0);
}

#[test]
fn a_connect_failing_at_any_step_undoes_in_reverse_and_leaves_nothing() {
    for req in requests() {
        let mut ok = Rig::new();
        let n = ok.manager().create(req.clone()).unwrap();
        let start = ok.journal.changes();
        ok.connect(&n).unwrap();
        let steps = ok.journal.changes();
        assert!(steps > start + 1, "{:?}", ok.journal.calls());
        for step in start..steps {
            let mut rig = Rig::new();
            let n = rig.manager().create(req.clone()).unwrap();
            let (made, before) = (rig.journal.events().len(), rig.journal.objects());
            rig.journal.fail_at(step);
            let err = rig.connect(&n).unwrap_err();
            assert!(err.to_string().contains("ermitted"), "step {step}: {err}");
            assert_eq!(rig.journal.objects(), before, "{} step {step}", req.driver);
            assert_undone_in_reverse(&rig.journal, made, step);
            assert_eq!(rig.count("endpoints"), 0, "step {step}");
            assert_eq!(rig.count("ipam_allocations"), 0, "step {step}");
        }
    }
}

#[test]
fn disconnect_and_rm_run_every_step_and_report_the_first_failure() {
    for req in requests() {
        let mut ok = Rig::new();
        let n = ok.manager().create(req.clone()).unwrap();
        let ep = ok.connect(&n).unwrap();
        let start = ok.journal.changes();
        let netns = ok.netns.clone();
        ok.manager().disconnect(&ep, &netns).unwrap();
        ok.manager().remove("n1").unwrap();
        let steps = ok.journal.changes();
        let clean = ok.journal.objects();
        for step in start..steps {
            let mut rig = Rig::new();
            let n = rig.manager().create(req.clone()).unwrap();
            let ep = rig.connect(&n).unwrap();
            rig.journal.fail_at(step);
            let disconnected = rig.manager().disconnect(&ep, &netns);
            let removed = rig.manager().remove("n1");
            let err = disconnected
                .err()
                .or(removed.err())
                .expect("the failure is reported");
            assert!(err.to_string().contains("ermitted"), "step {step}: {err}");
            // Every step ran: the calls are those of the clean run, one of them failed.
            assert_eq!(rig.journal.changes(), steps, "{:?}", rig.journal.calls());
            assert_eq!(rig.count("endpoints"), 0, "step {step}");
            assert_eq!(rig.count("networks"), 0, "step {step}");
            // What is left is what the failed step should have deleted (with its addresses,
            // routes and veth peer), nothing else.
            let left: Vec<String> = rig.journal.objects().difference(&clean).cloned().collect();
            let calls = rig.journal.calls();
            let failed = calls.iter().find(|c| c.ends_with(" FAILED")).unwrap();
            let words: Vec<&str> = failed.split_whitespace().collect();
            let target = words[words.len() - 2];
            let top: Vec<&String> = left
                .iter()
                .filter(|o| o.starts_with("link host") || o.starts_with("fw "))
                .collect();
            assert!(top.len() <= 1, "step {step} ({failed}): {left:?}");
            assert!(
                top.iter().all(|o| o.ends_with(target)),
                "{failed}: {left:?}"
            );
        }
    }
}

#[test]
fn the_manager_dispatches_each_driver_through_the_seams() {
    let mut rig = Rig::new();
    let n = rig
        .manager()
        .create(request(DriverName::Bridge, &[]))
        .unwrap();
    rig.connect(&n).unwrap();
    let calls = rig.journal.calls();
    let has = |p: &str| calls.iter().any(|c| c.starts_with(p));
    assert!(
        has("fw add_network n1") && has("create_bridge br-"),
        "{calls:?}"
    );
    assert!(has("create_veth vb") && has("fw add_endpoint"), "{calls:?}");
    let mut rig = Rig::new();
    let req = request(DriverName::Ipvlan, &[("parent", "nic0")]);
    let n = rig.manager().create(req).unwrap();
    assert_eq!(n.driver(), DriverName::Ipvlan);
    rig.connect(&n).unwrap();
    let calls = rig.journal.calls();
    assert!(calls.iter().all(|c| !c.starts_with("fw ")), "{calls:?}");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("create_child eth0 on nic0")),
        "{calls:?}"
    );
}

#[test]
fn published_ports_are_refused_on_internal_and_direct_networks_before_any_change() {
    for (driver, options, internal) in [
        (DriverName::Bridge, &[][..], true),
        (DriverName::Macvlan, &[("parent", "nic0")][..], false),
    ] {
        let mut rig = Rig::new();
        let mut req = request(driver, options);
        req.internal = internal;
        let n = rig.manager().create(req).unwrap();
        let (calls, objects) = (rig.journal.changes(), rig.journal.objects());
        let netns = rig.netns.clone();
        let ereq = EndpointRequest {
            ports: vec![crate::model::PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                proto: crate::port::Proto::Tcp,
            }],
            ..EndpointRequest::default()
        };
        let err = rig
            .manager()
            .connect(&n, CONTAINER, &netns, &ereq)
            .unwrap_err();
        let ManagerError::Publish(refused) = &err else {
            panic!("{driver}: {err}");
        };
        // The same refusal, word for word, as create-time validation and the firewall plan.
        assert_eq!(
            Err(refused.clone()),
            crate::policy::check_publish(&n, true),
            "{driver}"
        );
        assert_eq!(rig.journal.changes(), calls, "{driver}");
        assert_eq!(rig.journal.objects(), objects, "{driver}");
        assert_eq!(rig.count("endpoints"), 0, "{driver}");
    }
}
