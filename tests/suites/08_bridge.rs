//! Bridge networking end to end (issue 3): a published port from every origin (another host,
//! the host via loopback and via its own address, a container on another network, hairpin),
//! loopback-only publishes, `-P`; isolation between networks, `--internal`, `enable_icc=false`;
//! IPAM options, exhaustion and 30 concurrent `run`s; cleanup of rules, endpoints and bridges
//! (also after kill -9 of a monitor); bad input refused with no partial state.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::{require_root, wait_until, Background, Proto, SandboxHost};

/// `run -d` options of a web container whose httpd logs every request's peer (`-v`) to the
/// container's stderr, so `berth logs` shows the source address the container saw.
const VERBOSE_WEB: &[&str] = &[
    "web",
    "sh",
    "-c",
    "echo \"<h1>berth demo: $INSTANCE</h1>\" > /www/index.html; exec httpd -f -v -p 80 -h /www",
];

/// `berth run -d ARGS` that must succeed; returns the container id.
#[track_caller]
fn run_d(host: &SandboxHost, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    host.cli(&all).ok()
}

#[test]
fn published_port_answers_every_origin() {
    require_root!();
    let host = SandboxHost::with_web();
    let client = host.add_client();
    let own_addr = client.host_addr().to_string();
    host.cli(&["network", "create", "front"]).ok();
    host.cli(&["network", "create", "other"]).ok();
    let mut args = vec!["--net", "front", "--name", "pub", "-p", "8080:80"];
    args.extend_from_slice(&["-e", "INSTANCE=pub"]);
    args.extend_from_slice(VERBOSE_WEB);
    run_d(&host, &args);
    run_d(
        &host,
        &["--net", "other", "--name", "probe", "web", "sleep", "600"],
    );
    assert!(host.wait_published(8080, "berth demo: pub"), "never served");

    let page = client
        .http_get(8080)
        .expect("another host via the host's address");
    assert!(page.contains("berth demo: pub"), "{page}");
    let seen_client = wait_until(Duration::from_secs(5), || {
        host.cli(&["logs", "pub"]).stderr.contains(client.addr())
            || host.cli(&["logs", "pub"]).stdout.contains(client.addr())
    });
    assert!(
        seen_client,
        "the container must see the client's own address {} as source: {}",
        client.addr(),
        host.cli(&["logs", "pub"])
    );

    for origin in ["127.0.0.1", own_addr.as_str()] {
        let page = host.http_from_host(origin, 8080).unwrap();
        assert!(
            page.contains("berth demo: pub"),
            "host via {origin}: {page}"
        );
    }
    let page = host.http_from("probe", &own_addr, 8080).unwrap();
    assert!(
        page.contains("berth demo: pub"),
        "from another network: {page}"
    );
    let page = host.http_from("pub", &own_addr, 8080).unwrap();
    assert!(page.contains("berth demo: pub"), "hairpin: {page}");
}

#[test]
fn loopback_publish_is_for_the_host_only() {
    require_root!();
    let host = SandboxHost::with_web();
    let client = host.add_client();
    host.cli(&["network", "create", "lonet"]).ok();
    run_d(
        &host,
        &[
            "--net",
            "lonet",
            "--name",
            "lo1",
            "-p",
            "127.0.0.1:8081:80",
            "-e",
            "INSTANCE=lo1",
            "web",
        ],
    );
    run_d(
        &host,
        &[
            "--net",
            "lonet",
            "--name",
            "all1",
            "-p",
            "8082:80",
            "-e",
            "INSTANCE=all1",
            "web",
        ],
    );
    assert!(
        host.wait_published(8081, "berth demo: lo1"),
        "host via 127.0.0.1"
    );
    assert_eq!(host.cli(&["port", "lo1"]).ok(), "80/tcp -> 127.0.0.1:8081");
    // Control: the client reaches the host's published ports at all.
    assert!(client.http_get(8082).unwrap().contains("berth demo: all1"));
    let leak = client.sh(&format!(
        "curl -sS --max-time 2 http://{}:8081/",
        client.host_addr()
    ));
    assert!(
        !leak.success() && !leak.stdout.contains("berth demo"),
        "a 127.0.0.1 publish must not answer another host: {leak}"
    );
}

#[test]
fn publish_all_maps_exposed_ports_to_ephemeral_ones() {
    require_root!();
    let host = SandboxHost::with_web();
    let client = host.add_client();
    run_d(
        &host,
        &["--name", "auto", "-P", "-e", "INSTANCE=auto", "web"],
    );
    let port = host.cli(&["port", "auto"]).ok();
    let mapped: u16 = port
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("`port auto` shows 80/tcp on 0.0.0.0: {port}"));
    assert!(mapped >= 1024, "an ephemeral port: {mapped}");
    let one = host.cli(&["port", "auto", "80/tcp"]).ok();
    assert_eq!(one, format!("0.0.0.0:{mapped}"));
    assert!(host.wait_published(mapped, "berth demo: auto"));
    assert!(client
        .http_get(mapped)
        .unwrap()
        .contains("berth demo: auto"));
    // The default network: berth0 exists and holds the container.
    assert!(
        host.link_names().contains("berth0"),
        "{:?}",
        host.link_names()
    );
    assert_eq!(host.inspect("auto")["HostConfig"]["NetworkMode"], "bridge");
}

#[test]
fn networks_are_isolated_from_each_other() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "neta"]).ok();
    host.cli(&["network", "create", "netb"]).ok();
    run_d(
        &host,
        &["--net", "neta", "--name", "a1", "-e", "INSTANCE=a1", "web"],
    );
    run_d(
        &host,
        &["--net", "neta", "--name", "a2", "web", "sleep", "600"],
    );
    run_d(
        &host,
        &["--net", "netb", "--name", "b1", "web", "sleep", "600"],
    );
    let a1 = host.ip_on("a1", "neta");
    let page = wait_for_page(&host, "a2", &a1, 80);
    assert!(
        page.contains("berth demo: a1"),
        "same network connects: {page}"
    );
    let out = host.cannot_connect_from("b1", &a1, 80);
    assert_eq!(out.code, Some(1), "another network must not connect: {out}");
    // Nor via neta's gateway address routed through the host.
    let gw = host.network_inspect("neta")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let ping = host.exec_sh("b1", &format!("ping -c1 -W2 {a1}"));
    assert!(!ping.success(), "b1 pinged a1 across networks: {ping}");
    assert!(host.exec_sh("a2", &format!("ping -c1 -W2 {gw}")).success());
}

/// Fetches `http://IP:PORT/` from container `ctr`, retrying for up to 10 s (httpd startup).
fn wait_for_page(host: &SandboxHost, ctr: &str, ip: &str, port: u16) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        match host.http_from(ctr, ip, port) {
            Ok(page) => {
                last = page;
                true
            }
            Err(e) => {
                last = e;
                false
            }
        }
    });
    assert!(ok, "{ctr} -> {ip}:{port}: {last}");
    last
}

/// A python3 HTTP server on `ADDR:PORT` in the client namespace (serving an empty temp dir);
/// the guard kills it by pid.
fn client_http_server(client: &berth_tests::Client, port: u16) -> (Background, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = client.netns().command("python3");
    cmd.args([
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        client.addr(),
        "--directory",
    ])
    .arg(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let bg = Background::spawn(&mut cmd);
    let up = wait_until(Duration::from_secs(10), || {
        client
            .sh(&format!(
                "curl -s --max-time 1 http://{}:{port}/",
                client.addr()
            ))
            .success()
    });
    assert!(up, "client http server did not come up");
    (bg, dir)
}

#[test]
fn internal_network_has_no_egress_and_refuses_publish() {
    require_root!();
    let host = SandboxHost::with_web();
    let client = host.add_client();
    let (_server, _dir) = client_http_server(&client, 9999);
    host.cli(&["network", "create", "ext"]).ok();
    host.cli(&["network", "create", "--internal", "int"]).ok();
    assert_eq!(host.network_inspect("int")["Internal"], true);
    run_d(
        &host,
        &["--net", "ext", "--name", "e1", "web", "sleep", "600"],
    );
    run_d(
        &host,
        &["--net", "int", "--name", "i1", "web", "sleep", "600"],
    );
    let page = host.http_from("e1", client.addr(), 9999).unwrap();
    assert!(page.contains("200"), "a normal network has egress: {page}");
    let out = host.cannot_connect_from("i1", client.addr(), 9999);
    assert_eq!(out.code, Some(1), "internal must have no egress: {out}");

    let before = host.state();
    let err = host
        .cli(&[
            "run", "-d", "--net", "int", "-p", "8085:80", "--name", "i2", "web",
        ])
        .code(125);
    assert!(
        err.starts_with("berth: ") && err.contains("internal"),
        "{err}"
    );
    let diff = host.settle_to(&before);
    assert!(
        diff.is_empty(),
        "a refused run leaves nothing behind: {diff:#?}"
    );
}

#[test]
fn icc_off_blocks_peers_but_the_gateway_answers() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "noicc",
    ])
    .ok();
    assert_eq!(host.network_inspect("noicc")["berth"]["ICC"], false);
    run_d(
        &host,
        &["--net", "noicc", "--name", "c1", "-e", "INSTANCE=c1", "web"],
    );
    run_d(
        &host,
        &["--net", "noicc", "--name", "c2", "web", "sleep", "600"],
    );
    let c1 = host.ip_on("c1", "noicc");
    // The host itself still reaches c1 (proves c1 serves), c2 does not.
    let ok = wait_until(Duration::from_secs(10), || {
        host.http_from_host(&c1, 80)
            .is_ok_and(|p| p.contains("berth demo: c1"))
    });
    assert!(ok, "host -> c1 {c1}:80");
    let out = host.cannot_connect_from("c2", &c1, 80);
    assert_eq!(out.code, Some(1), "icc off must block c2 -> c1: {out}");
    let gw = host.network_inspect("noicc")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let ping = host.exec_sh("c2", &format!("ping -c1 -W2 {gw}"));
    assert!(ping.success(), "the gateway answers with icc off: {ping}");
    let dns = host.exec_sh("c2", "nslookup c1");
    assert!(
        dns.success() && dns.stdout.contains(&c1),
        "DNS via the gateway: {dns}"
    );
}

#[test]
fn ipam_options_are_honoured() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "network",
        "create",
        "--subnet",
        "10.9.0.0/24",
        "--gateway",
        "10.9.0.254",
        "--ip-range",
        "10.9.0.128/29",
        "--aux-address",
        "router=10.9.0.129",
        "ipam",
    ])
    .ok();
    let cfg = host.network_inspect("ipam")["IPAM"]["Config"][0].clone();
    assert_eq!(cfg["Subnet"], "10.9.0.0/24", "{cfg}");
    assert_eq!(cfg["Gateway"], "10.9.0.254", "{cfg}");
    assert_eq!(cfg["IPRange"], "10.9.0.128/29", "{cfg}");
    assert_eq!(cfg["AuxiliaryAddresses"]["router"], "10.9.0.129", "{cfg}");
    assert!(
        host.sh("ip -br addr").ok().contains("10.9.0.254/24"),
        "gateway on the bridge"
    );

    run_d(
        &host,
        &[
            "--net",
            "ipam",
            "--ip",
            "10.9.0.133",
            "--name",
            "fixed",
            "web",
            "sleep",
            "600",
        ],
    );
    assert_eq!(host.ip_on("fixed", "ipam"), "10.9.0.133");
    let addr = host.exec_sh("fixed", "ip -4 -o addr show eth0").ok();
    assert!(addr.contains("10.9.0.133/24"), "{addr}");
    for (ip, needle) in [
        ("10.9.0.5", "ip-range"),
        ("10.9.0.129", "aux"),
        ("10.10.0.5", "10.10.0.5"),
    ] {
        let err = host
            .cli(&[
                "run", "-d", "--net", "ipam", "--ip", ip, "--name", "bad", "web",
            ])
            .code(125);
        assert!(err.starts_with("berth: ") && err.contains(ip), "{err}");
        assert!(err.contains(needle), "--ip {ip}: {err}");
        host.cli(&["rm", "-f", "bad"]).ok_or_berth_error();
    }
    // Fill the range: every address handed out is inside it, never the aux one, the gateway or
    // the fixed one; the range holds 8 addresses, so it ends in a clear exhaustion error.
    let mut got = BTreeSet::from(["10.9.0.133".to_string()]);
    let refusal = (0..9).find_map(|i| {
        let name = format!("auto{i}");
        let out = host.cli(&[
            "run", "-d", "--net", "ipam", "--name", &name, "web", "sleep", "600",
        ]);
        if !out.success() {
            return Some(out);
        }
        let ip = host.ip_on(&name, "ipam");
        let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
        assert!((128..136).contains(&last) && last != 129, "{name} got {ip}");
        assert!(got.insert(ip.clone()), "{ip} handed out twice");
        None
    });
    let refusal = refusal.expect("an 8-address range must run out");
    let err = refusal.code(125);
    assert!(err.contains("no free address"), "{err}");
    assert!(got.len() >= 6, "most of the range was usable: {got:?}");
}

#[test]
fn exhausted_subnet_is_refused_cleanly_and_released_on_rm() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.8.0.0/30", "tiny"])
        .ok();
    run_d(
        &host,
        &["--net", "tiny", "--name", "t1", "web", "sleep", "600"],
    );
    assert_eq!(host.ip_on("t1", "tiny"), "10.8.0.2");
    let before = host.state();
    let err = host
        .cli(&[
            "run", "-d", "--net", "tiny", "--name", "t2", "web", "sleep", "600",
        ])
        .code(125);
    assert!(err.starts_with("berth: "), "{err}");
    assert!(
        err.contains("no free address") && err.contains("tiny"),
        "{err}"
    );
    let diff = host.settle_to(&before);
    assert!(
        diff.is_empty(),
        "no container running, no link, no rule added: {diff:#?}"
    );
    let attached = host.network_inspect("tiny")["Containers"].clone();
    assert_eq!(attached.as_object().map(|o| o.len()), Some(1), "{attached}");
    host.cli(&["rm", "-f", "t1", "t2"]).ok_or_berth_error();
    host.cli(&["rm", "-f", "t2"]).ok_or_berth_error();
    run_d(
        &host,
        &["--net", "tiny", "--name", "t3", "web", "sleep", "600"],
    );
    assert_eq!(
        host.ip_on("t3", "tiny"),
        "10.8.0.2",
        "the address was released"
    );
}

#[test]
fn thirty_concurrent_runs_get_distinct_addresses() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.20.0.0/24", "conc"])
        .ok();
    let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let host = &host;
                s.spawn(move || {
                    host.cli(&[
                        "run", "-d", "--net", "conc", "--name", name, "web", "sleep", "600",
                    ])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|o| !o.success())
            .map(|o| o.to_string())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} runs failed: {failures:#?}",
        failures.len()
    );
    let ips: BTreeSet<String> = names.iter().map(|n| host.ip_on(n, "conc")).collect();
    assert_eq!(ips.len(), names.len(), "duplicate addresses: {ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.20.0.")), "{ips:?}");
    let attached = host.network_inspect("conc")["Containers"].clone();
    assert_eq!(
        attached.as_object().map(|o| o.len()),
        Some(30),
        "{attached}"
    );
    assert_eq!(host.running_names().len(), 30);
}

#[test]
fn removal_restores_the_ruleset_and_the_bridge_goes_with_the_network() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=brclean",
        "clean",
    ])
    .ok();
    assert!(
        host.link_names().contains("brclean"),
        "{:?}",
        host.link_names()
    );
    run_d(
        &host,
        &["--net", "clean", "--name", "base", "web", "sleep", "600"],
    );
    let before = host.nft_ruleset();
    run_d(
        &host,
        &[
            "--net",
            "clean",
            "--name",
            "pub",
            "-p",
            "8080:80",
            "-p",
            "5000-5002:5000-5002/udp",
            "web",
        ],
    );
    let during = host.nft_ruleset();
    assert!(
        during.contains("8080") && during.contains("5002"),
        "{during}"
    );

    let err = host.cli(&["network", "rm", "clean"]).fails();
    assert!(err.starts_with("berth: "), "{err}");
    assert!(
        err.contains("pub") && err.contains("base"),
        "names the containers: {err}"
    );
    host.cli(&["rm", "-f", "pub"]).ok();
    assert_eq!(
        host.nft_ruleset(),
        before,
        "rm leaves no rule or element behind"
    );

    host.cli(&["rm", "-f", "base"]).ok();
    host.cli(&["network", "rm", "clean"]).ok();
    assert!(
        !host.link_names().contains("brclean"),
        "{:?}",
        host.link_names()
    );
    let after = host.nft_ruleset();
    assert!(
        !after.contains("net clean") && !after.contains("brclean"),
        "{after}"
    );
    assert!(!host.network_names().contains("clean"));
}

/// Pid of the monitor (`berth ... __monitor ... ID`) of container `id`, from /proc.
fn monitor_pid(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        (cmdline.contains("__monitor") && cmdline.contains(id)).then_some(pid)
    })
}

#[test]
fn killed_monitor_leaves_no_endpoint_and_no_map_element() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "kn"]).ok();
    let bridge = host.network_inspect("kn")["berth"]["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let id = run_d(
        &host,
        &[
            "--net",
            "kn",
            "--name",
            "kc",
            "-p",
            "8080:80",
            "-e",
            "INSTANCE=kc",
            "web",
        ],
    );
    assert!(host.wait_published(8080, "berth demo: kc"));
    let pid = monitor_pid(&id).expect("the monitor of kc runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || monitor_pid(&id).is_none()));

    host.cli(&["rm", "-f", "kc"]).ok();
    let rules = host.nft_ruleset();
    assert!(
        !rules.contains("8080") && !rules.contains(&id[..12]),
        "stale element: {rules}"
    );
    host.cli(&["network", "rm", "kn"]).ok();
    assert!(
        !host.link_names().contains(&bridge),
        "{:?}",
        host.link_names()
    );
    assert!(
        host.listener_pid(Proto::Tcp, 8080).is_none(),
        "the port is free again"
    );
    run_d(
        &host,
        &["--name", "k2", "-p", "8080:80", "-e", "INSTANCE=k2", "web"],
    );
    assert!(
        host.wait_published(8080, "berth demo: k2"),
        "the port works for the next one"
    );
}

/// Why `out` is not a clean berth refusal (exit 125, `berth: ...` naming `needle`), if it is not.
fn refusal_problem(out: &berth_tests::Outcome, needle: &str) -> Option<String> {
    let clean = out.code == Some(125) && out.stderr.starts_with("berth: ");
    (!clean || !out.stderr.contains(needle))
        .then(|| format!("expected exit 125 and a message naming {needle:?}: {out}"))
}

#[test]
fn bad_network_create_input_is_refused_with_no_partial_state() {
    require_root!();
    let host = SandboxHost::new();
    host.cli(&["network", "create", "--subnet", "10.1.0.0/16", "ok1"])
        .ok();
    let cases: &[(&[&str], &str)] = &[
        (&["--subnet", "10.1.0.0/33", "bad1"], "10.1.0.0/33"),
        (&["--subnet", "10.1.0/24", "bad2"], "10.1.0/24"),
        (&["--subnet", "10.1.5.0/24", "bad3"], "ok1"),
        (
            &["--subnet", "10.2.0.0/24", "--gateway", "10.3.0.1", "bad4"],
            "10.3.0.1",
        ),
        (
            &[
                "--subnet",
                "10.2.0.0/24",
                "--ip-range",
                "10.4.0.0/28",
                "bad5",
            ],
            "10.4.0.0/28",
        ),
        (&["-o", "com.example.nope=1", "bad6"], "com.example.nope"),
        (&["--subnet", "10.5.0.0/24", "ok1"], "already exists"),
    ];
    let mut problems = Vec::new();
    for (args, needle) in cases {
        let before = host.state();
        let mut all = vec!["network", "create"];
        all.extend_from_slice(args);
        problems.extend(refusal_problem(&host.cli(&all), needle));
        let diff = host.settle_to(&before);
        if !diff.is_empty() {
            problems.push(format!("{args:?} left state behind: {diff:?}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(host.network_names(), BTreeSet::from(["ok1".to_string()]));
}

#[test]
fn bad_run_input_is_refused_with_no_partial_state() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "network",
        "create",
        "--subnet",
        "10.30.0.0/24",
        "--ip-range",
        "10.30.0.0/28",
        "rn",
    ])
    .ok();
    run_d(
        &host,
        &["--net", "rn", "--name", "holder", "-p", "8087:80", "web"],
    );
    let (_listener, pid) = host.listen(Proto::Tcp, "0.0.0.0", 8090);
    let pid_text = format!("pid {pid}");
    let cases: &[(&[&str], &str)] = &[
        (&["--ip", "10.30.0.100"], "10.30.0.100"),
        (&["--ip", "10.31.0.5"], "10.31.0.5"),
        (&["-p", "8087:80"], "container holder"),
        (&["-p", "8090:80"], &pid_text),
        (&["-p", "70000:80"], "out of range"),
        (&["-p", "8091:80/icmp"], "protocol"),
    ];
    let mut problems = Vec::new();
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let before = host.state();
        let name = format!("bad{i}");
        let mut all = vec!["run", "-d", "--net", "rn", "--name", &name];
        all.extend_from_slice(extra);
        all.push("web");
        problems.extend(refusal_problem(&host.cli(&all), needle));
        let diff = host.settle_to(&before);
        if !diff.is_empty() {
            problems.push(format!("{extra:?} left state behind: {diff:?}"));
        }
        let attached = host.network_inspect("rn")["Containers"].clone();
        if attached.as_object().map(|o| o.len()) != Some(1) {
            problems.push(format!("{extra:?} left an endpoint: {attached}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        host.http_from_host("127.0.0.1", 8087).is_ok(),
        "the holder still serves"
    );
}

#[test]
fn kill_9_mid_run_leaves_nothing_allocated() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.40.0.0/29", "mid"])
        .ok();
    let before = host.state();
    for (i, delay_ms) in [15u64, 40, 80, 150, 300].into_iter().enumerate() {
        let name = format!("m{i}");
        let mut cmd = host.berth_command(&[
            "run", "-d", "--net", "mid", "--name", &name, "-p", "8080:80", "web",
        ]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut run = Background::spawn(&mut cmd);
        std::thread::sleep(Duration::from_millis(delay_ms));
        run.signal(nix::sys::signal::Signal::SIGKILL);
        run.wait_timeout(Duration::from_secs(5));
        host.cli(&["rm", "-f", &name]).ok_or_berth_error();
        let diff = host.settle_to(&before);
        assert!(
            diff.is_empty(),
            "run killed after {delay_ms} ms, then rm -f; left behind: {diff:#?}"
        );
    }
    // Nothing leaked in IPAM: a /29 has 5 container addresses and the first is free again.
    run_d(
        &host,
        &[
            "--net",
            "mid",
            "--name",
            "after",
            "-p",
            "8080:80",
            "-e",
            "INSTANCE=after",
            "web",
        ],
    );
    assert_eq!(host.ip_on("after", "mid"), "10.40.0.2");
    assert!(host.wait_published(8080, "berth demo: after"));
    host.cli(&["rm", "-f", "after"]).ok();
    host.cli(&["network", "rm", "mid"]).ok();
}
