//! Fault injection (issue 11): the real binary, built with `--features failpoints` (`make
//! test`), is killed with SIGKILL at every step of `run`, `rm`, `network create`, `network rm`
//! and `network connect` (`BERTH_FAILPOINTS=<step>`; the steps are listed in tests/README.md).
//! The next command must leave a consistent, isolated state: no leaked address (IPAM rows),
//! endpoint row, nft element or rule, veth or bridge, mount or namespace; no half-made
//! container or network (or it is completed and works); and, where the step is a firewall
//! step, networks stay isolated for real packets.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_tests::{require_root, wait_until, HostState, Outcome, SandboxHost};

/// The variable that arms failpoints (`berth_sys::failpoint::ENV`).
const FAILPOINTS: &str = "BERTH_FAILPOINTS";

/// Subnets the cases use: `a` and `b` exist in every lab, `x` is made or removed by a case.
const NET_A: &str = "10.123.1.0/24";
const NET_B: &str = "10.123.2.0/24";
const NET_X: &str = "10.123.3.0/24";

/// A sandbox host with networks `a` and `b` and container `other` serving on `b`
/// (10.123.2.2), where a case breaks one command.
fn lab() -> SandboxHost {
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", NET_A, "a"])
        .ok();
    host.cli(&["network", "create", "--subnet", NET_B, "b"])
        .ok();
    host.cli(&["run", "-d", "--net", "b", "--name", "other", "web"])
        .ok();
    assert_eq!(host.ip_on("other", "b"), "10.123.2.2");
    host
}

/// One row of `sqlite3 berth.db QUERY` (read-only), as a number.
fn db_count(host: &SandboxHost, query: &str) -> usize {
    let db = host.root().join("berth.db");
    let out = host
        .sh(&format!("sqlite3 -readonly {} \"{query}\"", db.display()))
        .ok();
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{query}: {e}: {out}"))
}

/// What a fault must not change once the next command ran: the host's networks, running
/// containers, links and ruleset, plus the store's endpoints and addresses, the mounts under
/// the host's root and runroot, and the pinned namespaces.
#[derive(Debug, PartialEq, Eq)]
struct Books {
    endpoints: usize,
    addresses: usize,
    orphan_addresses: usize,
    networks: usize,
    mounts: usize,
    netns: BTreeSet<String>,
}

fn books(host: &SandboxHost) -> Books {
    let (root, runroot) = (
        host.root().display().to_string(),
        host.runroot().display().to_string(),
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let netns = std::fs::read_dir(host.runroot().join("netns"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Books {
        endpoints: db_count(host, "select count(*) from endpoints"),
        addresses: db_count(
            host,
            "select count(*) from ipam_allocations where endpoint_id is not null",
        ),
        orphan_addresses: db_count(
            host,
            "select count(*) from ipam_allocations where network_id not in \
             (select id from networks) or (endpoint_id is not null and endpoint_id not in \
             (select id from endpoints))",
        ),
        networks: db_count(host, "select count(*) from networks"),
        mounts: mountinfo
            .lines()
            .filter(|l| l.contains(&root) || l.contains(&runroot))
            .count(),
        netns,
    }
}

/// Host state and books together.
fn snapshot(host: &SandboxHost) -> (HostState, Books) {
    (host.state(), books(host))
}

/// Panics unless the host is back at `before` (waiting for the kernel's asynchronous veth
/// removal), naming every difference.
#[track_caller]
fn assert_back_to(host: &SandboxHost, before: &(HostState, Books), when: &str) {
    let diff = host.settle_to(&before.0);
    assert!(diff.is_empty(), "{when}: host state differs: {diff:#?}");
    let now = books(host);
    assert_eq!(now, before.1, "{when}: the books differ (left: now)");
    assert_eq!(now.orphan_addresses, 0, "{when}: orphan IPAM rows");
}

/// `berth ARGS` with `BERTH_FAILPOINTS=point`.
fn armed(host: &SandboxHost, point: &str, args: &[&str]) -> Outcome {
    host.cli_env(&[(FAILPOINTS, point)], args)
}

/// Whether `point` fired: in the command itself (its stderr, and it died by a signal) or in
/// a monitor it started (the monitor's log), waiting up to 10 s for the latter.
#[track_caller]
fn assert_fired(host: &SandboxHost, out: &Outcome, point: &str) {
    let needle = format!("berth: failpoint {point}:");
    if out.stderr.contains(&needle) {
        assert_eq!(out.code, None, "killed by its own SIGKILL: {out}");
        return;
    }
    let containers = host.root().join("containers");
    let in_logs = || {
        std::fs::read_dir(&containers).is_ok_and(|d| {
            d.filter_map(Result::ok).any(|e| {
                std::fs::read_to_string(e.path().join("monitor.log"))
                    .is_ok_and(|t| t.contains(&needle))
            })
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), in_logs),
        "failpoint {point} never fired (is target/debug/berth built with `--features \
         failpoints`, as `make test` does?): {out}"
    );
}

/// Real packets: `from` cannot open a TCP connection to `ip:80`.
#[track_caller]
fn assert_isolated(host: &SandboxHost, from: &str, ip: &str) {
    let out = host.cannot_connect_from(from, ip, 80);
    assert!(
        !out.success(),
        "{from} reached {ip}:80 across networks: {out}"
    );
}

/// After the repair: a new container on `a` gets the first address again (nothing leaked),
/// answers on its published port, and `a` and `b` are isolated both ways.
fn a_works_and_is_isolated(host: &SandboxHost, packets: bool) {
    host.cli(&[
        "run", "-d", "--net", "a", "--name", "again", "-p", "8080:80", "web",
    ])
    .ok();
    assert_eq!(
        host.ip_on("again", "a"),
        "10.123.1.2",
        "the first address is free"
    );
    if packets {
        assert!(host.wait_published(8080, ""), "the published port answers");
        assert_isolated(host, "again", "10.123.2.2");
        assert_isolated(host, "other", "10.123.1.2");
    }
    host.cli(&["rm", "-f", "again"]).ok();
}

/// `run` killed at `point` (in the CLI or in the monitor it spawned): `ps -a` releases what
/// the dead start held, `rm -f` removes the record, and the network works as before.
fn run_killed_at(point: &str, packets: bool) {
    let host = lab();
    let before = snapshot(&host);
    let out = armed(
        &host,
        point,
        &[
            "run", "-d", "--net", "a", "--name", "victim", "-p", "8080:80", "web",
        ],
    );
    assert_fired(&host, &out, point);
    // Killed before `started` the CLI fails; after it (`run::after-started`) it succeeded.
    assert!(!out.success() || point == "run::after-started", "{out}");
    host.cli(&["ps", "-a"]).ok();
    let status = host.status("victim");
    assert!(
        status == "created" || status == "exited",
        "victim after the kill and ps -a: {status}"
    );
    assert_back_to(&host, &before, "after ps -a");
    host.cli(&["rm", "-f", "victim"]).ok();
    assert_back_to(&host, &before, "after rm -f");
    a_works_and_is_isolated(&host, packets);
    assert_back_to(&host, &before, "at the end");
}

/// A running container's teardown (its monitor, after `kill`) killed at `point`: `ps -a`
/// finishes the release, `start` works again, `rm -f` leaves the host as it was.
fn teardown_killed_at(point: &str, packets: bool) {
    let host = lab();
    let before = snapshot(&host);
    armed(
        &host,
        point,
        &[
            "run", "-d", "--net", "a", "--name", "victim", "-p", "8080:80", "web",
        ],
    )
    .ok();
    let fired = host.cli(&["kill", "victim"]);
    fired.ok();
    assert_fired(&host, &fired, point);
    host.cli(&["ps", "-a"]).ok();
    assert_eq!(host.status("victim"), "exited");
    assert_back_to(&host, &before, "after ps -a");
    // The stopped container starts again (unarmed now) with its address and port.
    host.cli(&["start", "victim"]).ok();
    assert_eq!(host.ip_on("victim", "a"), "10.123.1.2");
    if packets {
        assert!(host.wait_published(8080, ""), "the published port answers");
        assert_isolated(&host, "victim", "10.123.2.2");
        assert_isolated(&host, "other", "10.123.1.2");
    }
    host.cli(&["rm", "-f", "victim"]).ok();
    assert_back_to(&host, &before, "after rm -f");
}

/// `rm -f` of a running container killed at `point` (in the CLI): the next `ps -a` and
/// `rm -f` finish the removal.
fn rm_killed_at(point: &str) {
    let host = lab();
    let before = snapshot(&host);
    host.cli(&[
        "run", "-d", "--net", "a", "--name", "victim", "-p", "8080:80", "web",
    ])
    .ok();
    let out = armed(&host, point, &["rm", "-f", "victim"]);
    assert_fired(&host, &out, point);
    host.cli(&["ps", "-a"]).ok();
    host.cli(&["rm", "-f", "victim"]).ok_or_berth_error();
    assert!(
        !host.cli(&["ps", "-a"]).ok().contains("victim"),
        "the record is gone"
    );
    assert_back_to(&host, &before, "after rm -f");
    a_works_and_is_isolated(&host, false);
}

/// After a killed `network create x` or `network rm x`: `network ls` lists `x` or not; when
/// listed it must work (its bridge back, a container on it isolated from `b` both ways, its
/// first address free) and be removable. Either way the host ends as `base` (without x).
fn x_completed_or_gone(host: &SandboxHost, base: &(HostState, Books)) {
    if host.network_names().contains("x") {
        host.cli(&["run", "-d", "--net", "x", "--name", "intruder", "web"])
            .ok();
        assert_eq!(host.ip_on("intruder", "x"), "10.123.3.2");
        assert_isolated(host, "intruder", "10.123.2.2");
        assert_isolated(host, "other", "10.123.3.2");
        host.cli(&["rm", "-f", "intruder"]).ok();
        host.cli(&["network", "rm", "x"]).ok();
    }
    assert_back_to(host, base, "x removed");
    a_works_and_is_isolated(host, false);
}

fn network_create_killed_at(point: &str) {
    let host = lab();
    let base = snapshot(&host);
    let out = armed(&host, point, &["network", "create", "--subnet", NET_X, "x"]);
    assert_fired(&host, &out, point);
    x_completed_or_gone(&host, &base);
}

fn network_rm_killed_at(point: &str) {
    let host = lab();
    let base = snapshot(&host);
    host.cli(&["network", "create", "--subnet", NET_X, "x"])
        .ok();
    let out = armed(&host, point, &["network", "rm", "x"]);
    assert_fired(&host, &out, point);
    x_completed_or_gone(&host, &base);
}

/// `network connect b srv` killed at `point`: the next `network connect` completes it (or
/// finds it complete), `srv` and `other` talk over `b` with `srv` on the next free address,
/// and `network disconnect` leaves the host as before.
fn connect_killed_at(point: &str) {
    let host = lab();
    host.cli(&["run", "-d", "--net", "a", "--name", "srv", "web"])
        .ok();
    let before = snapshot(&host);
    let out = armed(&host, point, &["network", "connect", "b", "srv"]);
    assert_fired(&host, &out, point);
    let again = host.cli(&["network", "connect", "b", "srv"]);
    assert!(
        again.success() || again.stderr.contains("already connected"),
        "{again}"
    );
    let ip = host.ip_on("srv", "b");
    assert_eq!(ip, "10.123.2.3", "one address for srv on b");
    host.http_from("other", &ip, 80)
        .expect("other reaches srv over b");
    host.http_from("srv", "10.123.2.2", 80)
        .expect("srv reaches other over b");
    assert_eq!(
        db_count(&host, "select count(*) from endpoints"),
        before.1.endpoints + 1,
        "one endpoint more, not two"
    );
    host.cli(&["network", "disconnect", "b", "srv"]).ok();
    assert_back_to(&host, &before, "after disconnect");
}

/// `network disconnect b srv` killed at `point`: the next `network disconnect` finishes it
/// and the host is as before the connect.
fn disconnect_killed_at(point: &str) {
    let host = lab();
    host.cli(&["run", "-d", "--net", "a", "--name", "srv", "web"])
        .ok();
    let before = snapshot(&host);
    host.cli(&["network", "connect", "b", "srv"]).ok();
    let out = armed(&host, point, &["network", "disconnect", "b", "srv"]);
    assert_fired(&host, &out, point);
    host.cli(&["network", "disconnect", "b", "srv"]).ok();
    assert_back_to(&host, &before, "after disconnect");
    assert_isolated(&host, "srv", "10.123.2.2");
}

/// One `#[test]` per step, so each has its own sandbox host and they run in parallel.
macro_rules! cases {
    ($($name:ident => $body:expr;)+) => {$(
        #[test]
        fn $name() {
            require_root!();
            $body;
        }
    )+};
}

cases! {
    run_after_record => run_killed_at("run::after-record", false);
    run_after_rootfs => run_killed_at("run::after-rootfs", false);
    run_after_sandbox => run_killed_at("run::after-sandbox", false);
    run_attach_after_ipam => run_killed_at("attach::after-ipam", false);
    run_attach_after_veth => run_killed_at("attach::after-veth", true);
    run_attach_after_firewall => run_killed_at("attach::after-firewall", true);
    run_after_bundle => run_killed_at("run::after-bundle", false);
    run_after_runtime_create => run_killed_at("run::after-runtime-create", false);
    run_after_started => run_killed_at("run::after-started", true);
    teardown_after_runtime_delete => teardown_killed_at("release::after-runtime-delete", false);
    teardown_detach_after_firewall => teardown_killed_at("detach::after-firewall", true);
    teardown_after_detach => teardown_killed_at("release::after-detach", false);
    teardown_after_sandbox => teardown_killed_at("release::after-sandbox", false);
    rm_after_runtime_delete => rm_killed_at("release::after-runtime-delete");
    rm_after_release => rm_killed_at("rm::after-release");
    network_create_after_record => network_create_killed_at("network-create::after-record");
    network_create_after_firewall => network_create_killed_at("network-create::after-firewall");
    network_create_after_bridge => network_create_killed_at("network-create::after-bridge");
    network_rm_after_firewall => network_rm_killed_at("network-rm::after-firewall");
    network_rm_after_bridge => network_rm_killed_at("network-rm::after-bridge");
    connect_after_ipam => connect_killed_at("attach::after-ipam");
    connect_after_veth => connect_killed_at("attach::after-veth");
    connect_after_firewall => connect_killed_at("attach::after-firewall");
    disconnect_after_firewall => disconnect_killed_at("detach::after-firewall");
}

/// Failpoints never fire without the variable: a plain `run` and `rm` pass every step.
#[test]
fn unarmed_commands_pass_every_step() {
    require_root!();
    let host = lab();
    let before = snapshot(&host);
    host.cli(&["run", "-d", "--net", "a", "--name", "plain", "web"])
        .ok();
    host.cli(&["rm", "-f", "plain"]).ok();
    assert_back_to(&host, &before, "after run + rm");
    // A malformed entry is refused before the command does anything.
    let err = host
        .cli_env(&[(FAILPOINTS, "run::after-record=bogus(")], &["ps"])
        .code(125);
    assert!(err.contains(FAILPOINTS) && err.contains("bogus"), "{err}");
}
