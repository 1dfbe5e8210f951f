//! Embedded DNS end to end (issue 3): busybox `nslookup` in containers gets container names
//! and `--network-alias`es answered by `berth dns` on the network's gateway; a name is gone
//! after `rm`; the default bridge has no name resolution; other names are forwarded to an
//! upstream (a fake one this test starts in the sandbox host, via `BERTH_DNS_UPSTREAMS`), and
//! names berth owns never are.

use std::process::Stdio;
use std::time::Duration;

use berth_tests::{require_root, wait_until, Background, SandboxHost};

/// A fake upstream DNS server (python3 stdlib): answers every A query with 192.0.2.55 and
/// every other type with an empty NOERROR, appending `NAME QTYPE` of each query to a log file.
/// Args: BIND_ADDR PORT LOG. RFC 1035 section 4.1 (header, question, resource record).
const FAKE_UPSTREAM: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
log = open(sys.argv[3], "a", buffering=1)
log.write("ready 0\n")
while True:
    q, peer = s.recvfrom(4096)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    qtype = int.from_bytes(q[i + 1:i + 3], "big")
    end = i + 5
    log.write(".".join(labels) + " " + str(qtype) + "\n")
    an = 1 if qtype == 1 else 0
    hdr = q[:2] + b"\x81\x80\x00\x01" + an.to_bytes(2, "big") + b"\x00\x00\x00\x00"
    rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 55])
    s.sendto(hdr + q[12:end] + (rr if an else b""), peer)
"#;

/// `berth run -d ARGS` that must succeed; returns the container id.
#[track_caller]
fn run_d(host: &SandboxHost, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    host.cli(&all).ok()
}

#[test]
fn names_and_aliases_resolve_and_vanish_after_rm() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "dnet"]).ok();
    let alias = ["--network-alias", "db.internal"];
    let mut args = vec!["--net", "dnet", "--name", "srv", "-e", "INSTANCE=srv"];
    args.extend_from_slice(&alias);
    args.push("web");
    run_d(&host, &args);
    run_d(
        &host,
        &["--net", "dnet", "--name", "cli", "web", "sleep", "600"],
    );
    let srv = host.ip_on("srv", "dnet");
    let gw = host.network_inspect("dnet")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let resolv = host.exec_sh("cli", "cat /etc/resolv.conf").ok();
    assert!(resolv.contains(&format!("nameserver {gw}")), "{resolv}");

    for name in ["srv", "db.internal"] {
        let out = host.exec_sh("cli", &format!("nslookup {name}"));
        assert!(out.success(), "{out}");
        assert!(
            out.stdout.contains(&format!("Address: {srv}")),
            "{name}: {out}"
        );
        assert!(
            out.stdout.contains(&format!("Server:\t\t{gw}")),
            "answered by the gateway: {out}"
        );
    }
    let page = wait_until(Duration::from_secs(10), || {
        host.exec_sh(
            "cli",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 srv 80",
        )
        .stdout
        .contains("berth demo: srv")
    });
    assert!(page, "connect by name");

    host.cli(&["rm", "-f", "srv"]).ok();
    for name in ["srv", "db.internal"] {
        let out = host.exec_sh("cli", &format!("nslookup {name}"));
        assert!(
            !out.success() && !out.stdout.contains(&srv),
            "{name} must be gone after rm: {out}"
        );
    }
}

#[test]
fn the_default_bridge_has_no_name_resolution() {
    require_root!();
    let host = SandboxHost::with_web();
    run_d(&host, &["--name", "d1", "web", "sleep", "600"]);
    run_d(&host, &["--name", "d2", "web", "sleep", "600"]);
    let bridge = host.network_inspect("bridge");
    let gw = bridge["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(bridge["berth"]["DNS"], false, "{bridge}");
    let resolv = host.exec_sh("d2", "cat /etc/resolv.conf").ok();
    assert!(
        !resolv.contains(&gw),
        "not pointed at berth's server: {resolv}"
    );
    let hosts = host.exec_sh("d2", "cat /etc/hosts").ok();
    assert!(
        !hosts.contains("d1"),
        "no names via /etc/hosts either: {hosts}"
    );
    // Even asked directly, berth0's gateway answers no names.
    let out = host.exec_sh("d2", &format!("nslookup d1 {gw}"));
    assert!(!out.success(), "{out}");
    assert!(!out.stdout.contains(&host.ip_on("d1", "bridge")), "{out}");
}

/// Starts [`FAKE_UPSTREAM`] on 127.0.0.1:`port` in the sandbox host; returns its guard (kills
/// it by pid) and the query log's directory.
fn fake_upstream(host: &SandboxHost, port: u16) -> (Background, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("queries.log");
    let mut cmd = host.netns().command("python3");
    cmd.args(["-c", FAKE_UPSTREAM, "127.0.0.1", &port.to_string()])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let bg = Background::spawn(&mut cmd);
    let up = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("ready"))
    });
    assert!(up, "fake upstream did not start");
    (bg, dir)
}

#[test]
fn other_names_are_forwarded_upstream_and_own_names_never_are() {
    require_root!();
    let host = SandboxHost::with_web();
    let port = 20000 + rand::random::<u16>() % 20000;
    let (_upstream, dir) = fake_upstream(&host, port);
    let upstream = format!("127.0.0.1:{port}");
    host.cli(&["network", "create", "fwd"]).ok();
    // The first container of a DNS network spawns the server: it carries the upstream.
    host.cli_env(
        &[("BERTH_DNS_UPSTREAMS", upstream.as_str())],
        &[
            "run",
            "-d",
            "--net",
            "fwd",
            "--name",
            "own",
            "--network-alias",
            "mine",
            "web",
        ],
    )
    .ok();
    run_d(
        &host,
        &["--net", "fwd", "--name", "asker", "web", "sleep", "600"],
    );

    let out = host.exec_sh("asker", "nslookup example.test");
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.contains("Address: 192.0.2.55"),
        "forwarded answer: {out}"
    );
    for name in ["own", "mine"] {
        let out = host.exec_sh("asker", &format!("nslookup {name}"));
        assert!(out.success(), "{out}");
    }
    let log = std::fs::read_to_string(dir.path().join("queries.log")).unwrap();
    assert!(
        log.contains("example.test 1"),
        "the upstream got the A query: {log}"
    );
    for line in log.lines().skip(1) {
        let name = line.split_whitespace().next().unwrap_or_default();
        assert!(
            !name.starts_with("own") && !name.starts_with("mine"),
            "a name berth owns went upstream: {log}"
        );
    }
}
