//! Network modes: none (only lo), host (the sandbox host's interfaces and addresses,
//! NET_ADMIN denied unless granted, the host's /etc/hosts and resolv.conf), container:X
//! (X's namespace; refused when X is not running), unknown modes refused.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_tests::{parse_addrs, require_root, wait_until, SandboxHost};

fn links(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| {
            n.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn none_mode_has_only_lo_up_and_the_default_is_the_bridge() {
    require_root!();
    let host = SandboxHost::with_web();
    let _client = host.add_client();
    let out = host
        .cli(&["run", "--rm", "--net", "none", "web", "ip", "-o", "link"])
        .ok();
    assert_eq!(links(&out), BTreeSet::from(["lo".to_string()]), "{out}");
    assert!(out.contains("UP"), "lo is up: {out}");
    // Without --net, a container joins the default `bridge` network: lo and eth0.
    let out = host.cli(&["run", "--rm", "web", "ip", "-o", "link"]).ok();
    assert_eq!(
        links(&out),
        BTreeSet::from(["lo".to_string(), "eth0".to_string()]),
        "{out}"
    );
    let addrs = parse_addrs(
        &host
            .cli(&["run", "--rm", "--net", "none", "web", "ip", "-o", "addr"])
            .ok(),
    );
    assert!(addrs.contains("lo inet 127.0.0.1/8"), "{addrs:?}");
    assert!(addrs.iter().all(|a| a.starts_with("lo ")), "{addrs:?}");

    let id = host
        .cli(&[
            "run", "-d", "--net", "none", "--name", "n1", "web", "sleep", "1000",
        ])
        .ok();
    let ins = host.inspect("n1");
    assert_eq!(ins["HostConfig"]["NetworkMode"], "none");
    let key = ins["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want = host.runroot().join("netns").join(&id);
    assert_eq!(
        key,
        want.to_str().unwrap(),
        "sandbox bind mount under <runroot>/netns/<id>"
    );
    assert!(want.exists(), "{key} missing while running");
    host.cli(&["rm", "-f", "n1"]).ok();
    assert!(!want.exists(), "{key} left after rm");
}

#[test]
fn host_mode_sees_the_sandbox_hosts_interfaces_and_addresses() {
    require_root!();
    let host = SandboxHost::with_web();
    let _client = host.add_client();
    host.cli(&[
        "run", "-d", "--net", "host", "--name", "hh", "web", "sleep", "1000",
    ])
    .ok();
    assert_eq!(host.inspect("hh")["HostConfig"]["NetworkMode"], "host");
    let mut same = false;
    let mut last = (BTreeSet::new(), BTreeSet::new());
    // IPv6 link-local addresses may still be appearing on the fresh veth: retry briefly.
    wait_until(Duration::from_secs(5), || {
        let inside = parse_addrs(&host.cli(&["exec", "hh", "ip", "-o", "addr"]).ok());
        let outside = host.host_addrs();
        same = inside == outside;
        last = (inside, outside);
        same
    });
    assert!(same, "container sees {:?}\nhost has {:?}", last.0, last.1);
    assert!(
        last.0.iter().any(|a| a.contains("10.77.0.1/24")),
        "{:?}",
        last.0
    );
}

#[test]
fn host_mode_needs_net_admin_to_change_addresses() {
    require_root!();
    let host = SandboxHost::with_web();
    let denied = host.cli(&[
        "run",
        "--rm",
        "--net",
        "host",
        "web",
        "ip",
        "addr",
        "add",
        "10.99.0.1/32",
        "dev",
        "lo",
    ]);
    assert!(
        !denied.success(),
        "ip addr add without NET_ADMIN must fail: {denied}"
    );
    assert!(!host.host_addrs().iter().any(|a| a.contains("10.99.0.1")));
    for (flag, addr) in [
        (&["--cap-add", "NET_ADMIN"][..], "10.99.0.2"),
        (&["--privileged"][..], "10.99.0.3"),
    ] {
        let cidr = format!("{addr}/32");
        let mut args = vec!["run", "--rm", "--net", "host"];
        args.extend_from_slice(flag);
        args.extend_from_slice(&["web", "ip", "addr", "add", &cidr, "dev", "lo"]);
        host.cli(&args).ok();
        assert!(
            host.host_addrs().iter().any(|a| a.contains(addr)),
            "{flag:?} did not add {addr}"
        );
    }
    host.cli(&[
        "create",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "--name",
        "caps",
        "web",
    ])
    .ok();
    let hc = &host.inspect("caps")["HostConfig"];
    assert!(hc["CapAdd"].to_string().contains("NET_ADMIN"), "{hc}");
    assert!(hc["CapDrop"].to_string().contains("CHOWN"), "{hc}");
}

#[test]
fn host_mode_uses_the_hosts_etc_files() {
    require_root!();
    let host = SandboxHost::with_web();
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let inside = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "host",
            "web",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert_eq!(inside.trim(), resolv.trim());
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let inside = host
        .cli(&["run", "--rm", "--net", "host", "web", "cat", "/etc/hosts"])
        .ok();
    for line in hosts
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        assert!(
            inside.contains(line.trim()),
            "{line:?} missing from container /etc/hosts:\n{inside}"
        );
    }
}

#[test]
fn container_mode_joins_a_running_containers_namespace() {
    require_root!();
    let host = SandboxHost::with_web();
    let setup = "ip addr add 10.98.0.1/32 dev lo && exec sleep 1000";
    host.cli(&[
        "run",
        "-d",
        "--net",
        "none",
        "--cap-add",
        "NET_ADMIN",
        "--name",
        "cx",
        "web",
        "sh",
        "-c",
        setup,
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || {
        host.cli(&["exec", "cx", "ip", "-o", "addr"])
            .stdout
            .contains("10.98.0.1")
    }));
    let theirs = parse_addrs(&host.cli(&["exec", "cx", "ip", "-o", "addr"]).ok());
    let mine = parse_addrs(
        &host
            .cli(&[
                "run",
                "--rm",
                "--net",
                "container:cx",
                "web",
                "ip",
                "-o",
                "addr",
            ])
            .ok(),
    );
    assert_eq!(mine, theirs);
    assert_eq!(
        host.cli(&["create", "--net", "container:cx", "--name", "jj", "web"])
            .ok()
            .len(),
        64
    );
    assert_eq!(
        host.inspect("jj")["HostConfig"]["NetworkMode"],
        "container:cx"
    );

    host.cli(&["stop", "-t", "1", "cx"]).ok();
    let err = host
        .cli(&["run", "--rm", "--net", "container:cx", "web", "true"])
        .code(125);
    assert!(err.contains("cx") && err.starts_with("berth: "), "{err}");
    let err = host
        .cli(&["run", "--rm", "--net", "container:nosuch", "web", "true"])
        .code(125);
    assert!(err.contains("nosuch"), "{err}");
    let err = host
        .cli(&["run", "--rm", "--net", "bogus", "web", "true"])
        .code(125);
    assert!(err.contains("bogus"), "{err}");
}
