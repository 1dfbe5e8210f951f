//! Host-mode port check: conflicts with another container (named) or a plain process
//! (name and pid), UDP, IPv6-only and specific-address listeners, --skip-port-check,
//! `port`/`ps` showing the real listeners, `-p` refused with host mode.

use std::time::Duration;

use berth_tests::{require_root, Proto, SandboxHost};

#[test]
fn conflict_with_another_container_names_it() {
    require_root!();
    let host = SandboxHost::with_web();
    let client = host.add_client();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "host",
        "--name",
        "web1",
        "-e",
        "INSTANCE=web1",
        "web",
    ])
    .ok();
    assert!(
        host.wait_listening(80, Duration::from_secs(10)),
        "web1 never listened on 80"
    );
    let page = client.http_get(80).unwrap();
    assert!(page.contains("berth demo: web1"), "{page}");

    let err = host
        .cli(&[
            "run",
            "-d",
            "--net",
            "host",
            "--name",
            "web2",
            "-e",
            "INSTANCE=web2",
            "web",
        ])
        .code(125);
    assert!(err.starts_with("berth: "), "{err}");
    assert!(err.contains("80/tcp"), "names the port: {err}");
    assert!(err.contains("container web1"), "names the owner: {err}");
    assert_eq!(host.status("web1"), "running");

    host.cli(&["rm", "-f", "web1"]).ok();
    host.cli(&["rm", "-f", "web2"]).ok_or_berth_error();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "host",
        "--name",
        "web2",
        "-e",
        "INSTANCE=web2",
        "web",
    ])
    .ok();
    assert!(host.wait_listening(80, Duration::from_secs(10)));
    let page = client.http_get(80).unwrap();
    assert!(page.contains("berth demo: web2"), "{page}");
}

#[test]
fn conflict_with_a_plain_process_names_it_and_its_pid() {
    require_root!();
    let host = SandboxHost::with_web();
    let (_listener, pid) = host.listen(Proto::Tcp, "0.0.0.0", 80);
    let err = host
        .cli(&["run", "-d", "--net", "host", "--name", "w1", "web"])
        .code(125);
    assert!(err.contains("80/tcp"), "{err}");
    assert!(
        err.contains(&format!("pid {pid}")),
        "names pid {pid}: {err}"
    );
    assert!(err.contains("python"), "names the process: {err}");
    assert!(err.contains("0.0.0.0"), "names the address: {err}");
}

#[test]
fn skip_port_check_lets_it_start() {
    require_root!();
    let host = SandboxHost::with_web();
    let (_listener, _) = host.listen(Proto::Tcp, "0.0.0.0", 80);
    host.cli(&[
        "run",
        "-d",
        "--net",
        "host",
        "--skip-port-check",
        "--name",
        "s1",
        "web",
        "sleep",
        "1000",
    ])
    .ok();
    assert_eq!(host.status("s1"), "running");
}

#[test]
fn udp_and_expose_flag() {
    require_root!();
    let host = SandboxHost::with_web();
    let (_listener, pid) = host.listen(Proto::Udp, "0.0.0.0", 5353);
    let err = host
        .cli(&[
            "run", "-d", "--net", "host", "--expose", "5353/udp", "--name", "u1", "web", "sleep",
            "1000",
        ])
        .code(125);
    assert!(
        err.contains("5353/udp") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    // The same number over TCP is free, and the image's 80/tcp is free too.
    host.cli(&[
        "run", "-d", "--net", "host", "--expose", "5353/tcp", "--name", "t1", "web", "sleep",
        "1000",
    ])
    .ok();
    let exposed = host.inspect("t1")["Config"]["ExposedPorts"].clone();
    assert!(
        exposed.get("5353/tcp").is_some() && exposed.get("80/tcp").is_some(),
        "{exposed}"
    );
}

#[test]
fn ipv6_only_listener_conflicts() {
    require_root!();
    let host = SandboxHost::with_web();
    let (_listener, pid) = host.listen(Proto::Tcp, "::", 8080);
    let err = host
        .cli(&[
            "run", "-d", "--net", "host", "--expose", "8080", "--name", "v6", "web", "sleep",
            "1000",
        ])
        .code(125);
    assert!(
        err.contains("8080/tcp") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
}

#[test]
fn specific_address_listener_conflicts_with_wildcard() {
    require_root!();
    let host = SandboxHost::with_web();
    let (_listener, pid) = host.listen(Proto::Tcp, "127.0.0.1", 80);
    let err = host
        .cli(&["run", "-d", "--net", "host", "--name", "w1", "web"])
        .code(125);
    assert!(err.contains("80/tcp") && err.contains("127.0.0.1"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    // A listener on another port and address does not matter.
    let (_other, _) = host.listen(Proto::Tcp, "127.0.0.1", 81);
    host.cli(&["rm", "-f", "w1"]).ok_or_berth_error();
    drop(_listener);
    assert!(berth_tests::wait_until(Duration::from_secs(5), || host
        .listener_pid(Proto::Tcp, 80)
        .is_none()));
    host.cli(&["run", "-d", "--net", "host", "--name", "w1", "web"])
        .ok();
}

#[test]
fn port_and_ps_show_the_real_listeners() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["run", "-d", "--net", "host", "--name", "p1", "web"])
        .ok();
    assert!(host.wait_listening(80, Duration::from_secs(10)));
    let port = host.cli(&["port", "p1"]).ok();
    assert!(
        port.lines().any(|l| l == "80/tcp -> 0.0.0.0:80 (host)"),
        "{port}"
    );
    let ps = host.cli(&["ps"]).ok();
    assert!(ps.contains("0.0.0.0:80->80/tcp (host)"), "{ps}");

    host.cli(&[
        "run",
        "-d",
        "--net",
        "host",
        "--skip-port-check",
        "--name",
        "p2",
        "-e",
        "PORT=8081",
        "web",
    ])
    .ok();
    assert!(host.wait_listening(8081, Duration::from_secs(10)));
    let port = host.cli(&["port", "p2"]).ok();
    assert!(
        port.contains("8081/tcp -> 0.0.0.0:8081 (host)"),
        "what it really listens on: {port}"
    );
    assert!(
        !port.contains("80/tcp -> 0.0.0.0:80 "),
        "p2 does not listen on 80: {port}"
    );
}

#[test]
fn publish_with_host_mode_is_refused() {
    require_root!();
    let host = SandboxHost::with_web();
    let err = host
        .cli(&["run", "-d", "--net", "host", "-p", "8080:80", "web"])
        .code(125);
    assert!(err.starts_with("berth: "), "{err}");
    assert_eq!(host.cli(&["ps", "-aq"]).ok(), "");
}
