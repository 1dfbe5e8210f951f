//! Self-repair (issue 11, items 7-9 and the minor ones): state that outlives a crash, a
//! killed helper or a mistaken flag is noticed and repaired by the next berth command, or the
//! mistaken command is refused before it can do harm.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{
    berth_binary, require_root, run_with_timeout, wait_until, Background, Outcome, SandboxHost,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `berth --root <host's> --runroot RUNROOT ARGS` inside the host's namespace.
fn berth_with_runroot(host: &SandboxHost, runroot: &Path, args: &[&str]) -> Outcome {
    let mut cmd: Command = host.netns().command(berth_binary().to_str().unwrap());
    cmd.arg("--root")
        .arg(host.root())
        .arg("--runroot")
        .arg(runroot)
        .args(args);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    Outcome::new(
        format!("berth --runroot {} {}", runroot.display(), args.join(" ")),
        out,
    )
}

#[test]
fn another_runroot_is_refused_while_containers_run_and_they_keep_serving() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "rnet"]).ok();
    host.cli(&[
        "run", "-d", "--net", "rnet", "--name", "srv", "-p", "8081:80", "web",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "rnet", "--name", "cli", "web", "sleep", "600",
    ])
    .ok();
    assert!(host.wait_published(8081, ""), "the published port answers");
    let before = host.nft_ruleset();
    let other = tempfile::tempdir().unwrap();
    for args in [&["ps", "-a"][..], &["rm", "-f", "srv"], &["start", "srv"]] {
        let err = berth_with_runroot(&host, other.path(), args).code(125);
        let (root, rr, other) = (
            host.root().display().to_string(),
            host.runroot().display().to_string(),
            other.path().display().to_string(),
        );
        assert!(
            err.contains(&root) && err.contains(&rr) && err.contains(&other),
            "the refusal names the root and both runroots: {err}"
        );
    }
    assert_eq!(host.status("srv"), "running");
    assert_eq!(host.status("cli"), "running");
    assert_eq!(
        host.nft_ruleset(),
        before,
        "the refused commands changed the firewall"
    );
    let ip = host.ip_on("srv", "rnet");
    host.http_from("cli", &ip, 80)
        .expect("srv still answers cli");
    assert!(
        host.wait_published(8081, ""),
        "the published port still answers"
    );
    // With nothing running the root may move to another runroot (e.g. after a reboot).
    host.cli(&["rm", "-f", "srv", "cli"]).ok();
    berth_with_runroot(&host, other.path(), &["ps", "-a"]).ok();
    host.cli(&["ps", "-a"]).ok();
}

/// The pid in `<runroot>/dns.pid`, if the file holds one.
fn dns_pid(host: &SandboxHost) -> Option<i32> {
    std::fs::read_to_string(host.runroot().join("dns.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_killed_dns_server_is_restarted_by_the_next_command_and_answers_at_once() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "dnet"]).ok();
    host.cli(&["run", "-d", "--net", "dnet", "--name", "srv", "web"])
        .ok();
    host.cli(&[
        "run", "-d", "--net", "dnet", "--name", "cli", "web", "sleep", "600",
    ])
    .ok();
    let srv = host.ip_on("srv", "dnet");
    let out = host.exec_sh("cli", "nslookup srv").ok();
    assert!(out.contains(&srv), "resolves before the kill: {out}");
    let pid = dns_pid(&host).expect("dns.pid names the server");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9 the DNS server");
    assert!(
        wait_until(Duration::from_secs(5), || kill(Pid::from_raw(pid), None)
            .is_err()
            || zombie(pid)),
        "the DNS server {pid} did not die"
    );
    // (Not `exec nslookup` here to show the outage: exec is a berth command and repairs.)
    host.cli(&["ps"]).ok();
    let new_pid = dns_pid(&host).expect("the next command restarted the server");
    assert_ne!(new_pid, pid);
    // The first query after `ps` returned is answered (busybox retries a refused query only
    // after its timeout, seconds, so a quick answer means the server was already listening).
    let t0 = Instant::now();
    let out = host.exec_sh("cli", "nslookup srv").ok();
    let took = t0.elapsed();
    assert!(out.contains(&srv), "resolves after the restart: {out}");
    assert!(
        took < Duration::from_millis(1500),
        "first query took {took:?}"
    );
}

/// Whether `pid` is a zombie (killed, not yet reaped by its parent).
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// `ip ARGS` inside the network namespace of host pid `pid` (a container's init).
fn ip_in_ns_of(host: &SandboxHost, pid: u64, args: &str) -> String {
    host.sh(&format!("nsenter --net=/proc/{pid}/ns/net ip {args}"))
        .ok()
}

/// `State.Pid` of a running container.
fn init_pid(host: &SandboxHost, name: &str) -> u64 {
    let pid = host.inspect(name)["State"]["Pid"].as_u64().unwrap_or(0);
    assert!(pid > 0, "{name} has no pid");
    pid
}

/// The bridge interface of network `net` (the link holding its gateway address).
fn bridge_of(host: &SandboxHost, net: &str) -> String {
    let gw = host.network_inspect(net)["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let addrs = host.sh("ip -o -4 addr").ok();
    addrs
        .lines()
        .find(|l| l.contains(&format!("inet {gw}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no link holds {gw}: {addrs}"))
        .to_string()
}

#[test]
fn restarting_a_joined_target_leaves_one_interface_with_its_address() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "jnet"]).ok();
    host.cli(&["run", "-d", "--net", "jnet", "--name", "tgt", "web"])
        .ok();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "container:tgt",
        "--name",
        "side",
        "web",
        "sleep",
        "600",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "jnet", "--name", "peer", "web", "sleep", "600",
    ])
    .ok();
    let bridge = bridge_of(&host, "jnet");
    let ports = |host: &SandboxHost| {
        host.sh(&format!("ip -o link show master {bridge}"))
            .ok()
            .lines()
            .count()
    };
    assert_eq!(ports(&host), 2, "tgt and peer on the bridge");
    let side_pid = init_pid(&host, "side");
    let tgt_ip = host.ip_on("tgt", "jnet");
    assert!(ip_in_ns_of(&host, side_pid, "-o addr").contains(&format!("inet {tgt_ip}/")));

    let out = host.cli(&["restart", "-t", "1", "tgt"]);
    out.ok();
    assert!(
        out.stderr.contains("side") && out.stderr.contains("berth restart side"),
        "restart warns about the joined container: {}",
        out.stderr
    );
    let new_ip = host.ip_on("tgt", "jnet");
    for _ in 0..3 {
        host.http_from("peer", &new_ip, 80)
            .expect("the restarted target answers its peer");
    }
    assert_eq!(
        ports(&host),
        2,
        "one bridge port each for tgt and peer, no stale veth"
    );
    let tgt_addrs = ip_in_ns_of(&host, init_pid(&host, "tgt"), "-o addr");
    assert!(
        tgt_addrs.contains(&format!("inet {new_ip}/")),
        "{tgt_addrs}"
    );
    // Docker's behaviour: the joined container keeps running in the old namespace, which
    // keeps only lo.
    assert_eq!(host.status("side"), "running");
    assert_eq!(init_pid(&host, "side"), side_pid, "side was not restarted");
    let side_links = ip_in_ns_of(&host, side_pid, "-o link");
    assert_eq!(
        side_links.lines().count(),
        1,
        "only lo stays in the old namespace: {side_links}"
    );
    assert!(!ip_in_ns_of(&host, side_pid, "-o addr").contains(&new_ip));
    // Restarting the joined container puts it into the target's new namespace.
    host.cli(&["restart", "-t", "1", "side"]).ok();
    let side_addrs = ip_in_ns_of(&host, init_pid(&host, "side"), "-o addr");
    assert!(
        side_addrs.contains(&format!("inet {new_ip}/")),
        "{side_addrs}"
    );
    assert_eq!(ports(&host), 2);
}

#[test]
fn start_restart_policy_brings_back_what_the_policies_ask_after_a_simulated_reboot() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "bnet"]).ok();
    let sleeper = ["web", "sleep", "600"];
    let run = |name: &str, extra: &[&str], cmd: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(cmd);
        host.cli(&args).ok();
    };
    run(
        "alw",
        &["--restart", "always", "--net", "bnet", "-p", "8088:80"],
        &["web"],
    );
    run("alw-stopped", &["--restart", "always"], &sleeper);
    run("uns", &["--restart", "unless-stopped"], &sleeper);
    run("uns-stopped", &["--restart", "unless-stopped"], &sleeper);
    run("onf", &["--restart", "on-failure"], &sleeper);
    run("onf-ok", &["--restart", "on-failure"], &["web", "true"]);
    run("plain", &[], &sleeper);
    host.cli(&["create", "--name", "never", "--restart", "always", "web"])
        .ok();
    host.cli(&["stop", "-t", "0", "alw-stopped", "uns-stopped"])
        .ok();
    assert!(wait_until(Duration::from_secs(10), || host
        .status("onf-ok")
        == "exited"));
    // The reboot: every monitor and the DNS server (processes naming the root), then every
    // container's init (the pid namespace dies with it), all with SIGKILL.
    let pids: Vec<u64> = ["alw", "uns", "onf", "plain"]
        .iter()
        .map(|n| init_pid(&host, n))
        .collect();
    for (pid, _) in host.berth_processes() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    for pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let out = host.cli(&["start", "--restart-policy"]).ok();
    let mut started: Vec<&str> = out.lines().collect();
    started.sort_unstable();
    assert_eq!(started, ["alw", "alw-stopped", "onf", "uns"], "{out}");
    for (name, want) in [
        ("alw", "running"),
        ("alw-stopped", "running"),
        ("uns", "running"),
        ("onf", "running"),
        ("uns-stopped", "exited"),
        ("onf-ok", "exited"),
        ("plain", "exited"),
        ("never", "created"),
    ] {
        assert_eq!(host.status(name), want, "{name}");
    }
    assert!(
        host.wait_published(8088, ""),
        "alw serves its published port again"
    );
    // Nothing left to do: a second run starts nothing.
    assert_eq!(host.cli(&["start", "--restart-policy"]).ok().trim(), "");
}

/// The one-letter state of `pid` from /proc/PID/stat (`T` when stopped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_connect_killed_after_recording_its_endpoint_is_redone_by_the_next_connect() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "cn1"]).ok();
    host.cli(&["network", "create", "cn2"]).ok();
    host.cli(&["run", "-d", "--net", "cn1", "--name", "srv", "web"])
        .ok();
    host.cli(&[
        "run", "-d", "--net", "cn2", "--name", "peer", "web", "sleep", "600",
    ])
    .ok();
    let mut cmd = host.berth_command(&["network", "connect", "cn2", "srv"]);
    cmd.env("BERTH_FAILPOINTS", "attach::after-ipam=return(stop)")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut connect = Background::spawn(&mut cmd);
    assert!(
        wait_until(Duration::from_secs(20), || proc_state(connect.pid())
            == Some('T')),
        "connect never reached its pause point"
    );
    connect.signal(Signal::SIGKILL);
    assert!(connect.wait_timeout(Duration::from_secs(5)).is_some());
    // The kill left the endpoint recorded without its interface.
    let stale = host.network_inspect("cn2");
    assert!(
        stale["Containers"].to_string().contains("srv"),
        "the endpoint was recorded before the kill: {stale}"
    );
    let srv_pid = init_pid(&host, "srv");
    assert!(!ip_in_ns_of(&host, srv_pid, "-o link").contains("eth1"));
    host.cli(&["network", "connect", "cn2", "srv"]).ok();
    let ip = host.ip_on("srv", "cn2");
    let links = ip_in_ns_of(&host, srv_pid, "-o addr");
    assert!(links.contains(&format!("inet {ip}/")), "{links}");
    host.http_from("peer", &ip, 80)
        .expect("peer reaches srv over the redone endpoint");
    // Connecting again is refused now: the endpoint is real.
    let again = host.cli(&["network", "connect", "cn2", "srv"]).code(125);
    assert!(again.contains("already connected"), "{again}");
}

#[test]
fn bad_input_gets_clear_refusals_and_leaves_nothing() {
    require_root!();
    let host = SandboxHost::new();
    let before = host.network_names();
    // Random bytes are no archive: a clear message, no raw bytes on the terminal.
    let mut cmd = host.berth_command(&["load", "-i", "/dev/urandom"]);
    let out = Outcome::new(
        "berth load -i /dev/urandom".into(),
        run_with_timeout(&mut cmd, Duration::from_secs(30)),
    );
    let err = out.code(125);
    assert!(err.contains("not a docker-archive or OCI archive"), "{err}");
    assert!(
        out.stderr
            .chars()
            .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace()),
        "raw bytes printed: {:?}",
        out.stderr
    );
    let refusals: [(&[&str], &str); 3] = [
        (
            &[
                "network",
                "create",
                "--subnet",
                "10.99.0.0/24",
                "--aux-address",
                "r=10.99.0.1",
                "n1",
            ],
            "is the gateway",
        ),
        (
            &[
                "network",
                "create",
                "--subnet",
                "10.99.0.0/24",
                "--aux-address",
                "p=10.99.0.5",
                "--aux-address",
                "p=10.99.0.6",
                "n2",
            ],
            "given twice",
        ),
        (
            &[
                "network",
                "create",
                "-d",
                "macvlan",
                "-o",
                "parent=lo",
                "n3",
            ],
            "loopback",
        ),
    ];
    for (args, needle) in refusals {
        let err = host.cli(args).code(125);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("os error"), "no raw errno: {err}");
    }
    assert_eq!(host.network_names(), before, "no network was left behind");
    assert!(!host.sh("ip -o link").ok().contains("n3"));
    // A database from a newer berth is refused naming both versions, and left untouched.
    let db = host.root().join("berth.db");
    let py = format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute('PRAGMA user_version = 99'); c.commit()",
        db.display()
    );
    host.sh(&format!("python3 -c \"{py}\"")).ok();
    let err = host.cli(&["ps"]).code(125);
    assert!(
        err.contains("schema version 99") && err.contains("this berth's"),
        "{err}"
    );
    let py = format!(
        "import sqlite3; print(sqlite3.connect('{}').execute('PRAGMA user_version').fetchone()[0])",
        db.display()
    );
    assert_eq!(host.sh(&format!("python3 -c \"{py}\"")).ok().trim(), "99");
    // Back to this berth's version so the harness's teardown can use the root.
    let py = format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute('PRAGMA user_version = 3'); c.commit()",
        db.display()
    );
    host.sh(&format!("python3 -c \"{py}\"")).ok();
}
