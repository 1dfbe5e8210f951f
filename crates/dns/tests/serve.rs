//! The server end to end, inside throwaway network namespaces: real sockets on a gateway
//! address, a fake upstream server started by the test (never public DNS), real queries over
//! UDP and TCP, and busybox nslookup as a real client when it is installed.
//!
//! Every namespace is a `berth_sys::testing::TestNetns` (deleted on drop, pass or fail); the
//! addresses live on its `lo`; nothing touches the machine's own namespace.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_dns::{control, serve_with, Controller, DnsConfig, DnsError, ForwardOptions};
use berth_net::{EndpointState, NetworkState};
use berth_store::rusqlite::{self, params};
use berth_store::Store;
use berth_sys::netns::run_in;
use berth_sys::test_netns_or_skip;
use berth_sys::testing::TestNetns;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const GW: &str = "10.123.0.1";
const GW6: &str = "fd12::1";
const UPSTREAM: &str = "10.123.0.53:53";
/// Receives queries and never answers.
const SILENT: &str = "10.123.0.54:53";
/// Nothing listens: the kernel refuses at once (ICMP port unreachable on lo).
const REFUSED: &str = "10.123.0.55:53";
/// Answers like [`UPSTREAM`], after [`SLOW_DELAY`].
const SLOW: &str = "10.123.0.56:53";
const SLOW_DELAY: Duration = Duration::from_millis(1500);

fn ip(ns: &TestNetns, args: &[&str]) {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns.name())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// lo up with the gateway and upstream addresses (inside the test namespace only).
fn addresses(ns: &TestNetns) {
    ip(ns, &["link", "set", "lo", "up"]);
    for a in [
        "10.123.0.1/24",
        "10.123.0.53/32",
        "10.123.0.54/32",
        "10.123.0.55/32",
        "10.123.0.56/32",
    ] {
        ip(ns, &["addr", "add", a, "dev", "lo"]);
    }
    ip(ns, &["addr", "add", "fd12::1/64", "dev", "lo", "nodad"]);
}

fn id_of(name: &str) -> String {
    let mut hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    hex.extend(std::iter::repeat_n('0', 64 - hex.len()));
    hex
}

fn add_network(root: &Path, name: &str, subnets: &[(&str, &str)]) {
    let subnets: Vec<serde_json::Value> = subnets
        .iter()
        .map(|(s, g)| serde_json::json!({"subnet": s, "gateway": g, "ip_range": null, "aux_addresses": {}}))
        .collect();
    let state: NetworkState = serde_json::from_value(serde_json::json!({
        "id": id_of(name), "name": name, "driver": "bridge", "subnets": subnets,
        "ipv6": true, "internal": false, "icc": true, "dns": true, "mtu": 1500,
        "bridge": "br-test", "labels": {}, "options": {}, "created": "2026-01-01T00:00:00Z",
    }))
    .unwrap();
    Store::open(root)
        .unwrap()
        .write(|tx| {
            tx.execute(
                "INSERT INTO networks(id, name, driver, config, created) VALUES (?1, ?2, 'bridge', ?3, '')",
                params![state.id, name, serde_json::to_string(&state).unwrap()],
            )
        })
        .unwrap();
}

fn add_container(root: &Path, net: &str, name: &str, addrs: &[&str], aliases: &[&str]) {
    let ep = EndpointState {
        id: id_of(&format!("ep{name}")),
        network_id: id_of(net),
        container_id: id_of(name),
        ifname: "eth0".parse().unwrap(),
        host_ifname: "vbtest".parse().unwrap(),
        mac: "02:42:ac:11:00:02".into(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ports: vec![],
    };
    Store::open(root)
        .unwrap()
        .write(|tx| -> Result<(), rusqlite::Error> {
            tx.execute(
                "INSERT INTO containers(id, name, image_id, config, state, created) VALUES (?1, ?2, 'i', '{}', '{}', '')",
                params![ep.container_id, name],
            )?;
            tx.execute(
                "INSERT INTO endpoints(id, network_id, container_id, config) VALUES (?1, ?2, ?3, ?4)",
                params![ep.id, ep.network_id, ep.container_id, serde_json::to_string(&ep).unwrap()],
            )?;
            Ok(())
        })
        .unwrap();
}

/// Network `front` (10.123.0.0/24 + fd12::/64) with `web` (alias `www`, v4 + v6) and `db`
/// (v4 only).
fn fixture(root: &Path) {
    add_network(root, "front", &[("10.123.0.0/24", GW), ("fd12::/64", GW6)]);
    add_container(
        root,
        "front",
        "web",
        &["10.123.0.2/24", "fd12::2/64"],
        &["www"],
    );
    add_container(root, "front", "db", &["10.123.0.3/24"], &[]);
}

/// A fake upstream on [`UPSTREAM`] (UDP): `example.test` A 192.0.2.7, NXDOMAIN for the rest;
/// counts the queries it gets. A second socket on [`SILENT`] only counts.
struct Upstream {
    answered: Arc<AtomicUsize>,
    silent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start(ns: &TestNetns) -> Upstream {
        let (sock, quiet) = run_in(&ns.path(), || {
            (
                UdpSocket::bind(UPSTREAM).unwrap(),
                UdpSocket::bind(SILENT).unwrap(),
            )
        })
        .unwrap();
        let up = Upstream {
            answered: Arc::new(AtomicUsize::new(0)),
            silent: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        spawn_fake(sock, up.answered.clone(), up.stop.clone(), true);
        spawn_fake(quiet, up.silent.clone(), up.stop.clone(), false);
        up
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Serves `sock` until `stop` (polling every 100 ms), counting queries and answering them
/// with [`upstream_answer`] when `answer`.
fn spawn_fake(sock: UdpSocket, count: Arc<AtomicUsize>, stop: Arc<AtomicBool>, answer: bool) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if answer {
                let _ = sock.send_to(&upstream_answer(&q).to_vec().unwrap(), peer);
            }
        }
    });
}

fn upstream_answer(q: &Message) -> Message {
    let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    r.add_queries(q.queries.iter().cloned());
    let name = q.queries[0].name().clone();
    if name.to_ascii().eq_ignore_ascii_case("example.test.") {
        r.add_answer(Record::from_rdata(
            name,
            60,
            RData::A(A([192, 0, 2, 7].into())),
        ));
    } else {
        r.metadata.response_code = ResponseCode::NXDomain;
    }
    r
}

/// The server running on a thread inside the namespace; stopped and joined on drop.
struct Server {
    ctl: Controller,
    thread: Option<JoinHandle<Result<(), DnsError>>>,
}

impl Server {
    fn start(ns: &TestNetns, cfg: DnsConfig) -> Server {
        let (ctl, control) = control();
        let path = ns.path();
        let thread =
            std::thread::spawn(move || run_in(&path, move || serve_with(cfg, control)).unwrap());
        Server {
            ctl,
            thread: Some(thread),
        }
    }

    /// Waits for the server to end by itself and returns its result.
    fn wait_exit(mut self, within: Duration) -> Result<(), DnsError> {
        let t = self.thread.take().unwrap();
        let deadline = Instant::now() + within;
        while !t.is_finished() {
            assert!(
                Instant::now() < deadline,
                "server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctl.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Reply {
    msg: Message,
    took: Duration,
}

/// One query from inside the namespace, over UDP or TCP.
fn ask(ns: &TestNetns, server: &str, name: &str, qtype: RecordType, tcp: bool) -> Reply {
    let server: IpAddr = server.parse().unwrap();
    let server = SocketAddr::new(server, 53);
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let bytes = q.to_vec().unwrap();
    let t0 = Instant::now();
    let resp = run_in(&ns.path(), || {
        if tcp {
            ask_tcp(server, &bytes)
        } else {
            ask_udp(server, &bytes)
        }
    })
    .unwrap()
    .unwrap_or_else(|e| panic!("query {name} {qtype} to {server}: {e}"));
    let msg = Message::from_vec(&resp).unwrap();
    assert_eq!(msg.metadata.id, q.metadata.id);
    Reply {
        msg,
        took: t0.elapsed(),
    }
}

fn ask_udp(server: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(local)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.send_to(q, server)?;
    let mut buf = vec![0u8; 4096];
    let (n, from) = s.recv_from(&mut buf)?;
    assert_eq!(from, server, "the reply comes from the gateway address");
    buf.truncate(n);
    Ok(buf)
}

fn ask_tcp(server: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Sorted answer data and the response code.
fn data(r: &Reply) -> (ResponseCode, Vec<String>) {
    let mut d: Vec<String> = r.msg.answers.iter().map(|a| a.data.to_string()).collect();
    d.sort();
    (r.msg.metadata.response_code, d)
}

fn ok(v: &[&str]) -> (ResponseCode, Vec<String>) {
    (
        ResponseCode::NoError,
        v.iter().map(|s| s.to_string()).collect(),
    )
}

/// Polls until the server answers `web` on `gw` (it binds asynchronously to the test).
fn wait_ready(ns: &TestNetns, gw: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let probe = run_in(&ns.path(), || {
            let mut q = Message::query();
            q.add_query(Query::query(
                Name::from_ascii("web.").unwrap(),
                RecordType::A,
            ));
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s.send_to(&q.to_vec().unwrap(), (gw.parse::<IpAddr>().unwrap(), 53))
                .unwrap();
            s.recv_from(&mut [0u8; 512]).is_ok()
        })
        .unwrap();
        if probe {
            return;
        }
        assert!(Instant::now() < deadline, "server never answered on {gw}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    runroot: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let runroot = tmp.path().join("run");
    Dirs {
        root,
        runroot,
        _tmp: tmp,
    }
}

fn config(d: &Dirs, upstreams: &[&str]) -> DnsConfig {
    DnsConfig {
        root: d.root.clone(),
        runroot: d.runroot.clone(),
        upstreams: Some(upstreams.iter().map(|u| u.parse().unwrap()).collect()),
        // One second per server keeps the dead-upstream tests short; the defaults (Docker's
        // 4 s) have their own test.
        forward: Some(ForwardOptions {
            timeout: Duration::from_secs(1),
            attempts: 1,
        }),
    }
}

#[test]
fn answers_berth_names_and_forwards_the_rest() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let up = Upstream::start(&ns);
    let _server = Server::start(&ns, config(&d, &[UPSTREAM]));
    wait_ready(&ns, GW);
    let pid = std::fs::read_to_string(d.runroot.join("dns.pid")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());

    let q = |name: &str, t: RecordType| data(&ask(&ns, GW, name, t, false));
    assert_eq!(q("web.", RecordType::A), ok(&["10.123.0.2"]));
    assert_eq!(q("WWW.", RecordType::A), ok(&["10.123.0.2"]));
    assert_eq!(q("www.", RecordType::AAAA), ok(&["fd12::2"]));
    assert_eq!(q("web.front.", RecordType::A), ok(&["10.123.0.2"]));
    assert_eq!(
        q(&format!("{}.", &id_of("db")[..12]), RecordType::A),
        ok(&["10.123.0.3"])
    );
    assert_eq!(
        q("2.0.123.10.in-addr.arpa.", RecordType::PTR),
        ok(&["web.front."])
    );
    // Over TCP and on the IPv6 gateway too.
    assert_eq!(
        data(&ask(&ns, GW, "db.", RecordType::A, true)),
        ok(&["10.123.0.3"])
    );
    assert_eq!(
        data(&ask(&ns, GW6, "web.", RecordType::AAAA, false)),
        ok(&["fd12::2"])
    );
    // Owned names are never forwarded, whatever the type.
    let aaaa = ask(&ns, GW, "db.", RecordType::AAAA, false);
    assert_eq!(data(&aaaa), ok(&[]));
    assert!(aaaa.msg.metadata.authoritative);
    assert_eq!(q("db.", RecordType::MX), ok(&[]));
    assert_eq!(
        up.answered.load(Ordering::SeqCst),
        0,
        "owned names reached the upstream"
    );

    // The rest goes upstream, over UDP and TCP (the fake upstream has no TCP: SERVFAIL).
    assert_eq!(q("example.test.", RecordType::A), ok(&["192.0.2.7"]));
    assert_eq!(q("nothere.test.", RecordType::A).0, ResponseCode::NXDomain);
    assert_eq!(up.answered.load(Ordering::SeqCst), 2);
    let tcp = ask(&ns, GW, "example.test.", RecordType::A, true);
    assert_eq!(tcp.msg.metadata.response_code, ResponseCode::ServFail);

    // A container added now resolves on the next query; one removed is gone.
    add_container(&d.root, "front", "late", &["10.123.0.9/24"], &[]);
    assert_eq!(q("late.", RecordType::A), ok(&["10.123.0.9"]));
    Store::open(&d.root)
        .unwrap()
        .write(|tx| tx.execute("DELETE FROM containers WHERE name = 'late'", []))
        .unwrap();
    assert_eq!(
        q("late.", RecordType::A).0,
        ResponseCode::NXDomain,
        "forwarded once gone"
    );

    busybox_nslookup(&ns);
}

/// busybox nslookup as a real resolver client, when installed.
fn busybox_nslookup(ns: &TestNetns) {
    if Command::new("busybox").arg("true").output().is_err() {
        berth_sys::testing::skip_or_fail("busybox part: busybox is not installed");
        return;
    }
    let run = |name: &str| {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .args(["busybox", "nslookup", name, GW])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let web = run("web");
    assert!(web.contains("10.123.0.2"), "busybox nslookup web: {web}");
    let www = run("www");
    assert!(www.contains("10.123.0.2"), "busybox nslookup www: {www}");
}

#[test]
fn dead_upstreams_are_skipped_quickly() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let up = Upstream::start(&ns);
    let _server = Server::start(&ns, config(&d, &[SILENT, REFUSED, UPSTREAM]));
    wait_ready(&ns, GW);
    let r = ask(&ns, GW, "example.test.", RecordType::A, false);
    assert_eq!(data(&r), ok(&["192.0.2.7"]));
    assert_eq!(
        up.silent.load(Ordering::SeqCst),
        1,
        "the silent server was asked first"
    );
    assert!(
        r.took >= Duration::from_millis(900),
        "waited for the silent server: {:?}",
        r.took
    );
    assert!(
        r.took < Duration::from_millis(1500),
        "answered within 1.5 s: {:?}",
        r.took
    );
    // Owned names do not wait for any upstream.
    let fast = ask(&ns, GW, "web.", RecordType::A, false);
    assert!(fast.took < Duration::from_millis(200), "{:?}", fast.took);
}

#[test]
fn no_working_upstream_is_servfail() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let _server = Server::start(&ns, config(&d, &[REFUSED]));
    wait_ready(&ns, GW);
    let r = ask(&ns, GW, "example.test.", RecordType::A, false);
    assert_eq!(r.msg.metadata.response_code, ResponseCode::ServFail);
    assert!(
        r.took < Duration::from_millis(500),
        "a refusal fails fast: {:?}",
        r.took
    );
    assert_eq!(
        data(&ask(&ns, GW, "web.", RecordType::A, false)),
        ok(&["10.123.0.2"])
    );
}

#[test]
fn reload_follows_networks_and_exits_when_none_is_left() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let server = Server::start(&ns, config(&d, &[]));
    wait_ready(&ns, GW);

    // A new network is served after a reload, with its own names only.
    add_network(&d.root, "back", &[("10.124.0.0/24", "10.124.0.1")]);
    add_container(&d.root, "back", "api", &["10.124.0.2/24"], &[]);
    server.ctl.reload();
    // The gateway address appears only after the server (re)bound: IP_FREEBIND let it bind
    // anyway (without it the bind fails and is retried only at the next resync, 30 s later).
    std::thread::sleep(Duration::from_millis(300));
    ip(&ns, &["addr", "add", "10.124.0.1/24", "dev", "lo"]);
    wait_ready(&ns, "10.124.0.1");
    assert_eq!(
        data(&ask(&ns, "10.124.0.1", "api.", RecordType::A, false)),
        ok(&["10.124.0.2"])
    );
    // `web` is front's: on back's gateway it is not berth's (no upstream: SERVFAIL).
    assert_eq!(
        data(&ask(&ns, "10.124.0.1", "web.", RecordType::A, false)).0,
        ResponseCode::ServFail
    );

    // Removing every network makes the server exit and remove its pid file.
    Store::open(&d.root)
        .unwrap()
        .write(|tx| tx.execute_batch("DELETE FROM endpoints; DELETE FROM networks;"))
        .unwrap();
    server.ctl.reload();
    let runroot = d.runroot.clone();
    server.wait_exit(Duration::from_secs(5)).unwrap();
    assert!(!runroot.join("dns.pid").exists());
}

/// Not privileged: a second server returns at once, before touching the store or any socket.
#[test]
fn second_server_returns_at_once() {
    let d = dirs();
    let _first = berth_dns::Instance::acquire(&d.runroot).unwrap().unwrap();
    let t0 = Instant::now();
    // No store exists: had it tried to serve, it would fail to open it.
    serve_with(config(&d, &[]), control().1).unwrap();
    assert!(t0.elapsed() < Duration::from_millis(500));
}

/// Env var that makes [`child_serve`] run the real, signal-driven `serve` (see
/// [`signals_reload_and_stop_the_server`]).
const CHILD_ENV: &str = "BERTH_DNS_TEST_CHILD";

/// Not a test by itself: the body of the child process that
/// [`signals_reload_and_stop_the_server`] starts (this test binary, re-executed inside the
/// namespace with nsenter), so that SIGHUP and SIGTERM reach a process of their own.
#[test]
#[ignore = "helper: run by signals_reload_and_stop_the_server in a child process"]
fn child_serve() {
    let Ok(base) = std::env::var(CHILD_ENV) else {
        eprintln!("SKIP: only runs as the child of signals_reload_and_stop_the_server");
        return;
    };
    let base = PathBuf::from(base);
    berth_dns::serve(DnsConfig {
        root: base.join("root"),
        runroot: base.join("run"),
        upstreams: Some(vec![]),
        forward: None,
    })
    .unwrap();
}

/// A child process killed (by its pid) and reaped on drop unless it already exited.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[test]
fn signals_reload_and_stop_the_server() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let base = d.root.parent().unwrap();
    let mut child = Child(
        Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_serve",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, base)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&ns, GW);
    // nsenter execs the program after setns (no fork for --net), so the pid is the child's.
    let pid = std::fs::read_to_string(d.runroot.join("dns.pid")).unwrap();
    assert_eq!(pid.trim(), child.0.id().to_string());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap());

    add_network(&d.root, "back", &[("10.124.0.0/24", "10.124.0.1")]);
    add_container(&d.root, "back", "api", &["10.124.0.2/24"], &[]);
    ip(&ns, &["addr", "add", "10.124.0.1/24", "dev", "lo"]);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_ready(&ns, "10.124.0.1");
    assert_eq!(
        data(&ask(&ns, "10.124.0.1", "api.", RecordType::A, false)),
        ok(&["10.124.0.2"])
    );

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "serve returned an error: {status}");
    assert!(!d.runroot.join("dns.pid").exists());
}

/// A fake upstream on [`SLOW`] that answers every query after [`SLOW_DELAY`]; stops on drop.
struct SlowUpstream(Arc<AtomicBool>);

impl SlowUpstream {
    fn start(ns: &TestNetns) -> SlowUpstream {
        let sock = run_in(&ns.path(), || UdpSocket::bind(SLOW).unwrap()).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let reply = upstream_answer(&q).to_vec().unwrap();
                let sock = sock.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::thread::sleep(SLOW_DELAY);
                    let _ = sock.send_to(&reply, peer);
                });
            }
        });
        SlowUpstream(stop)
    }
}

impl Drop for SlowUpstream {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_slow_upstream_is_waited_for_by_default_and_timeout_is_honoured() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let _slow = SlowUpstream::start(&ns);
    let mut cfg = config(&d, &[SLOW]);
    cfg.forward = Some(ForwardOptions::default());
    let server = Server::start(&ns, cfg);
    wait_ready(&ns, GW);
    let r = ask(&ns, GW, "example.test.", RecordType::A, false);
    assert_eq!(data(&r), ok(&["192.0.2.7"]), "a 1.5 s upstream is answered");
    assert!(r.took >= Duration::from_millis(1400), "{:?}", r.took);
    drop(server);
    // `options timeout:1` (here given directly) gives up on it: SERVFAIL after ~1 s.
    let _server = Server::start(&ns, config(&d, &[SLOW]));
    wait_ready(&ns, GW);
    let r = ask(&ns, GW, "example.test.", RecordType::A, false);
    assert_eq!(r.msg.metadata.response_code, ResponseCode::ServFail);
    assert!(r.took < Duration::from_millis(1450), "{:?}", r.took);
}

#[test]
fn attempts_go_round_the_server_list() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let up = Upstream::start(&ns);
    let mut cfg = config(&d, &[SILENT]);
    cfg.forward = Some(ForwardOptions {
        timeout: Duration::from_secs(1),
        attempts: 2,
    });
    let _server = Server::start(&ns, cfg);
    wait_ready(&ns, GW);
    let r = ask(&ns, GW, "example.test.", RecordType::A, false);
    assert_eq!(r.msg.metadata.response_code, ResponseCode::ServFail);
    assert!(r.took >= Duration::from_millis(1900), "{:?}", r.took);
    assert_eq!(up.silent.load(Ordering::SeqCst), 2, "asked once per round");
}

#[test]
fn responses_sent_to_the_server_get_no_answer() {
    let ns = test_netns_or_skip!();
    addresses(&ns);
    let d = dirs();
    fixture(&d.root);
    let _server = Server::start(&ns, config(&d, &[REFUSED]));
    wait_ready(&ns, GW);
    let gw: IpAddr = GW.parse().unwrap();
    let silent = run_in(&ns.path(), move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // A well-formed response (QR=1) for an owned name, and a header-only one with QR=1.
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        let resp = Message::new(7, MessageType::Response, q.metadata.op_code);
        let mut resp = resp;
        resp.add_queries(q.queries.iter().cloned());
        let short = [0u8, 9, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff];
        let mut replies = 0;
        for pkt in [resp.to_vec().unwrap(), short.to_vec()] {
            s.send_to(&pkt, (gw, 53)).unwrap();
            if s.recv_from(&mut [0u8; 512]).is_ok() {
                replies += 1;
            }
        }
        replies
    })
    .unwrap();
    assert_eq!(silent, 0, "no reply to a response");
    // Still serving queries.
    let r = ask(&ns, GW, "web.", RecordType::A, false);
    assert_eq!(data(&r), ok(&["10.123.0.2"]));
}
