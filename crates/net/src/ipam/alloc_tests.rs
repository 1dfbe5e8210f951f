//! Tests of [`super::alloc`] against a real store: order, wanted addresses, exhaustion,
//! concurrency across connections, release, and the cost with many endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_store::rusqlite::{params, Transaction};
use berth_store::Store;
use ipnet::IpNet;

use super::{allocate, release, IpamError};
use crate::model::{NetworkState, SubnetState};
use crate::netstate::{BridgeState, DriverState};

const NET_ID: &str = "n0000000000000000000000000000000000000000000000000000000000000001";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn subnet(s: &str, range: Option<&str>, aux: &[(&str, &str)]) -> SubnetState {
    let n = net(s);
    let gw = match n {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + 1)),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + 1)),
    };
    SubnetState {
        subnet: n,
        gateway: gw,
        ip_range: range.map(net),
        aux_addresses: aux
            .iter()
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect(),
    }
}

fn network(subnets: Vec<SubnetState>) -> NetworkState {
    NetworkState {
        id: NET_ID.to_string(),
        name: "frontend".parse().unwrap(),
        ipv6: subnets.iter().any(|s| s.subnet.addr().is_ipv6()),
        subnets,
        internal: false,
        dns: true,
        mtu: 1500,
        kind: DriverState::Bridge(BridgeState {
            bridge: "br-n00000000000".parse().unwrap(),
            icc: true,
        }),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created: "2024-01-01T00:00:00Z".to_string(),
    }
}

/// A store with `n`'s row in it.
fn store_with(root: &Path, n: &NetworkState) -> Store {
    let mut s = Store::open(root).unwrap();
    s.write(|tx| {
        tx.execute(
            "INSERT INTO networks(id, name, driver, config, created) VALUES (?1, ?2, 'bridge', '{}', '')",
            params![n.id, n.name.as_str()],
        )
    })
    .unwrap();
    s
}

/// Inserts container `name` and its endpoint `ep-<name>` on the network; returns the endpoint id.
fn add_endpoint(tx: &Transaction<'_>, name: &str) -> String {
    let cid = format!("c-{name}");
    let eid = format!("ep-{name}");
    tx.execute(
        "INSERT INTO containers(id, name, image_id, config, state, created) VALUES (?1, ?2, 'img', '{}', '{}', '')",
        params![cid, name],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO endpoints(id, network_id, container_id, config) VALUES (?1, ?2, ?3, '{}')",
        params![eid, NET_ID, cid],
    )
    .unwrap();
    eid
}

/// Records container `name` with an endpoint and allocates for it in one transaction.
fn join(
    s: &mut Store,
    n: &NetworkState,
    name: &str,
    want4: Option<Ipv4Addr>,
    want6: Option<Ipv6Addr>,
) -> Result<Vec<IpNet>, IpamError> {
    s.write(|tx| {
        let eid = add_endpoint(tx, name);
        allocate(tx, n, &eid, want4, want6)
    })
}

fn strs(a: &[IpNet]) -> Vec<String> {
    a.iter().map(ToString::to_string).collect()
}

#[test]
fn lowest_free_skips_gateway_and_aux_and_refills_released() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet(
        "10.1.0.0/24",
        None,
        &[("printer", "10.1.0.3")],
    )]);
    let mut s = store_with(dir.path(), &n);
    assert_eq!(
        strs(&join(&mut s, &n, "a", None, None).unwrap()),
        ["10.1.0.2/24"]
    );
    assert_eq!(
        strs(&join(&mut s, &n, "b", None, None).unwrap()),
        ["10.1.0.4/24"]
    );
    assert_eq!(
        strs(&join(&mut s, &n, "c", None, None).unwrap()),
        ["10.1.0.5/24"]
    );
    let freed = s.write(|tx| release(tx, NET_ID, "ep-a")).unwrap();
    assert_eq!(freed, 1);
    assert_eq!(
        strs(&join(&mut s, &n, "d", None, None).unwrap()),
        ["10.1.0.2/24"]
    );
    assert_eq!(
        strs(&join(&mut s, &n, "e", None, None).unwrap()),
        ["10.1.0.6/24"]
    );
    let rows: i64 = s
        .conn()
        .query_row("SELECT COUNT(*) FROM ipam_allocations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4);
}

#[test]
fn dual_stack_gets_one_address_per_family() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![
        subnet("10.1.0.0/16", None, &[]),
        subnet("fd00:1::/64", None, &[]),
    ]);
    let mut s = store_with(dir.path(), &n);
    let a = join(&mut s, &n, "a", None, None).unwrap();
    assert_eq!(strs(&a), ["10.1.0.2/16", "fd00:1::2/64"]);
    let want6: Ipv6Addr = "fd00:1::abcd".parse().unwrap();
    let b = join(&mut s, &n, "b", Some(v4("10.1.7.7")), Some(want6)).unwrap();
    assert_eq!(strs(&b), ["10.1.7.7/16", "fd00:1::abcd/64"]);
    let stored: BTreeSet<String> = s
        .conn()
        .prepare("SELECT address FROM ipam_allocations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: BTreeSet<String> = ["10.1.0.2", "fd00:1::2", "10.1.7.7", "fd00:1::abcd"]
        .map(String::from)
        .into();
    assert_eq!(stored, want, "stored bare, in standard form");
}

/// A wanted address, the error kind it must give, and text its message must contain.
type Case = (&'static str, fn(&IpamError) -> bool, &'static str);

#[test]
fn wanted_address_honoured_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet(
        "10.2.0.0/24",
        Some("10.2.0.128/25"),
        &[("router", "10.2.0.200")],
    )]);
    let mut s = store_with(dir.path(), &n);
    let a = join(&mut s, &n, "web1", Some(v4("10.2.0.150")), None).unwrap();
    assert_eq!(strs(&a), ["10.2.0.150/24"]);
    // Automatic addresses start at the ip-range.
    assert_eq!(
        strs(&join(&mut s, &n, "auto", None, None).unwrap()),
        ["10.2.0.128/24"]
    );
    let cases: [Case; 7] = [
        (
            "10.3.0.5",
            |e| matches!(e, IpamError::AddressOutside { .. }),
            "not in the subnet of network frontend (10.2.0.0/24)",
        ),
        (
            "10.2.0.20",
            |e| matches!(e, IpamError::AddressOutsideRange { .. }),
            "outside the ip-range 10.2.0.128/25",
        ),
        (
            "10.2.0.1",
            |e| matches!(e, IpamError::AddressReserved { .. }),
            "reserved in network frontend as its gateway",
        ),
        (
            "10.2.0.200",
            |e| matches!(e, IpamError::AddressReserved { .. }),
            "as its aux-address router",
        ),
        (
            "10.2.0.0",
            |e| matches!(e, IpamError::AddressReserved { .. }),
            "network address",
        ),
        (
            "10.2.0.255",
            |e| matches!(e, IpamError::AddressReserved { .. }),
            "broadcast address",
        ),
        (
            "10.2.0.150",
            |e| matches!(e, IpamError::AddressInUse { .. }),
            "already in use in network frontend by container web1",
        ),
    ];
    for (i, (addr, kind, text)) in cases.into_iter().enumerate() {
        let e = join(&mut s, &n, &format!("x{i}"), Some(v4(addr)), None).unwrap_err();
        assert!(kind(&e), "{addr}: {e:?}");
        assert!(e.to_string().contains(text), "{addr}: {e}");
    }
    let e = join(&mut s, &n, "v6", None, Some("fd00::5".parse().unwrap())).unwrap_err();
    assert!(matches!(e, IpamError::NoSubnetFor { .. }), "{e:?}");
    assert!(e.to_string().contains("--ipv6"), "{e}");
    // Refusals rolled back their transactions: only web1 and auto hold addresses.
    let rows: i64 = s
        .conn()
        .query_row("SELECT COUNT(*) FROM ipam_allocations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn exhaustion_of_a_30() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet("10.9.0.0/30", None, &[])]);
    let mut s = store_with(dir.path(), &n);
    assert_eq!(
        strs(&join(&mut s, &n, "a", None, None).unwrap()),
        ["10.9.0.2/30"]
    );
    let e = join(&mut s, &n, "b", None, None).unwrap_err();
    assert!(matches!(e, IpamError::Exhausted { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains("no free address left in subnet 10.9.0.0/30 of network frontend"),
        "{m}"
    );
    assert!(m.contains("larger --subnet"), "{m}");
}

#[test]
fn exhaustion_of_a_29_with_ip_range() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet("10.9.0.0/29", Some("10.9.0.4/30"), &[])]);
    let mut s = store_with(dir.path(), &n);
    let got: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|c| strs(&join(&mut s, &n, c, None, None).unwrap()))
        .collect();
    // .7 is the subnet's broadcast address, even though it is inside the range.
    assert_eq!(got, ["10.9.0.4/29", "10.9.0.5/29", "10.9.0.6/29"]);
    let e = join(&mut s, &n, "d", None, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("subnet 10.9.0.4/30 of network frontend"),
        "{e}"
    );
}

#[test]
fn allocation_without_endpoint_row_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet("10.1.0.0/24", None, &[])]);
    let mut s = store_with(dir.path(), &n);
    let e = s
        .write(|tx| allocate(tx, &n, "ep-ghost", None, None))
        .unwrap_err();
    assert!(matches!(e, IpamError::NotRecorded { .. }), "{e:?}");
    assert!(e.to_string().contains("inserted first"), "{e}");
}

#[test]
fn removing_the_endpoint_row_frees_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet("10.1.0.0/24", None, &[])]);
    let mut s = store_with(dir.path(), &n);
    join(&mut s, &n, "a", None, None).unwrap();
    s.write(|tx| tx.execute("DELETE FROM containers WHERE name = 'a'", []))
        .unwrap();
    assert_eq!(
        strs(&join(&mut s, &n, "b", None, None).unwrap()),
        ["10.1.0.2/24"]
    );
}

#[test]
fn fifty_concurrent_writers_get_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let n = network(vec![subnet("172.18.0.0/16", None, &[])]);
    drop(store_with(&root, &n));
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let (root, n) = (root.clone(), n.clone());
            std::thread::spawn(move || {
                let mut s = Store::open(&root).unwrap();
                join(&mut s, &n, &format!("c{i}"), None, None)
            })
        })
        .collect();
    let got: BTreeSet<IpNet> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap().expect("no allocation may fail"))
        .collect();
    assert_eq!(got.len(), 50, "50 distinct addresses");
    let want: BTreeSet<IpNet> = (2..52).map(|h| net(&format!("172.18.0.{h}/16"))).collect();
    assert_eq!(got, want, "the 50 lowest host addresses after the gateway");
    let mut s = Store::open(&root).unwrap();
    let held: String = s
        .conn()
        .query_row(
            "SELECT address FROM ipam_allocations WHERE endpoint_id = 'ep-c7'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(s.write(|tx| release(tx, NET_ID, "ep-c7")).unwrap(), 1);
    let again = join(&mut s, &n, "late", None, None).unwrap();
    assert_eq!(
        again[0].addr().to_string(),
        held,
        "a released address is handed out again"
    );
}

#[test]
fn allocation_cost_with_1000_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let n = network(vec![subnet("172.18.0.0/16", None, &[])]);
    let mut s = store_with(dir.path(), &n);
    s.write(|tx| -> Result<(), IpamError> {
        for i in 0..1000 {
            let eid = add_endpoint(tx, &format!("bulk{i}"));
            allocate(tx, &n, &eid, None, None)?;
        }
        Ok(())
    })
    .unwrap();
    let mut spent = Duration::ZERO;
    let rounds = 50;
    for i in 0..rounds {
        s.write(|tx| -> Result<(), IpamError> {
            let eid = add_endpoint(tx, &format!("timed{i}"));
            let t = Instant::now();
            allocate(tx, &n, &eid, None, None)?;
            spent += t.elapsed();
            Ok(())
        })
        .unwrap();
    }
    println!(
        "allocate with 1000+ endpoints on a /16: {:.1} us per allocation (mean of {rounds})",
        spent.as_secs_f64() * 1e6 / f64::from(rounds)
    );
}
