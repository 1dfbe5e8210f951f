//! More of bridge networking end to end (issue 3): dual-stack networks, `network connect` and
//! `disconnect` on a running container, and the resolver and hosts options of `run`.

use berth_tests::{require_root, SandboxHost};

#[test]
fn dual_stack_network_serves_over_ipv6() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:db8:7::/64",
        "dual",
    ])
    .ok();
    let cfg = host.network_inspect("dual")["IPAM"]["Config"].clone();
    let subnets: Vec<&str> = cfg
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Subnet"].as_str())
        .collect();
    assert!(subnets.contains(&"fd00:db8:7::/64"), "{cfg}");
    assert!(
        subnets.iter().any(|s| s.contains('.')),
        "an IPv4 subnet too: {cfg}"
    );
    host.cli(&[
        "run",
        "-d",
        "--net",
        "dual",
        "--name",
        "v6a",
        "-e",
        "INSTANCE=v6a",
        "web",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "dual", "--name", "v6b", "web", "sleep", "1000",
    ])
    .ok();
    let addrs = host
        .exec_sh("v6a", "ip -o -6 addr show eth0 scope global")
        .ok();
    let v6 = addrs
        .split_whitespace()
        .find(|w| w.starts_with("fd00:db8:7::"))
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no global IPv6 address on eth0: {addrs}"))
        .to_string();
    let ins = host.inspect("v6a");
    assert_eq!(
        ins["NetworkSettings"]["Networks"]["dual"]["GlobalIPv6Address"], v6,
        "inspect shows the IPv6 address"
    );
    let page = host
        .http_from("v6b", &v6, 80)
        .unwrap_or_else(|e| panic!("v6b cannot reach [{v6}]:80: {e}"));
    assert!(page.contains("berth demo: v6a"), "{page}");
    let routes = host.exec_sh("v6b", "ip -6 route").ok();
    assert!(routes.contains("default via fd00:db8:7::1"), "{routes}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "neta"]).ok();
    host.cli(&["network", "create", "netb"]).ok();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "neta",
        "--name",
        "mover",
        "-e",
        "INSTANCE=mover",
        "web",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "netb", "--name", "peer", "web", "sleep", "1000",
    ])
    .ok();
    // Before connecting, the peer on netb cannot reach mover on neta.
    let mover_a = host.ip_on("mover", "neta");
    host.cannot_connect_from("peer", &mover_a, 80).fails();
    host.cli(&["network", "connect", "--alias", "moved", "netb", "mover"])
        .ok();
    let links = host.exec_sh("mover", "ip -o link").ok();
    assert!(links.contains("eth1"), "a second interface: {links}");
    let mover_b = host.ip_on("mover", "netb");
    let page = host
        .http_from("peer", &mover_b, 80)
        .unwrap_or_else(|e| panic!("peer cannot reach mover on netb: {e}"));
    assert!(page.contains("berth demo: mover"), "{page}");
    // The alias given at connect time resolves on netb.
    let byname = host
        .http_from("peer", "moved", 80)
        .unwrap_or_else(|e| panic!("alias 'moved' does not resolve on netb: {e}"));
    assert!(byname.contains("berth demo: mover"), "{byname}");
    // Connecting twice is refused.
    let err = host.cli(&["network", "connect", "netb", "mover"]).code(125);
    assert!(err.contains("already connected"), "{err}");
    host.cli(&["network", "disconnect", "netb", "mover"]).ok();
    let links = host.exec_sh("mover", "ip -o link").ok();
    assert!(
        !links.contains("eth1"),
        "eth1 gone after disconnect: {links}"
    );
    host.cannot_connect_from("peer", &mover_b, 80).fails();
    assert!(
        host.network_inspect("netb")["Containers"]
            .as_object()
            .is_some_and(|m| m.len() == 1),
        "only peer left on netb"
    );
}

#[test]
fn resolver_and_hosts_options_are_written() {
    require_root!();
    let host = SandboxHost::with_web();
    let out = host
        .cli(&[
            "run",
            "--rm",
            "--dns",
            "10.0.0.53",
            "--dns-search",
            "example.test",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:10.9.9.9",
            "--hostname",
            "box1",
            "web",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts /etc/hostname",
        ])
        .ok();
    for want in [
        "nameserver 10.0.0.53",
        "search example.test",
        "options ndots:2",
        "10.9.9.9\tdb",
        "box1",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    let gw = host
        .cli(&[
            "run",
            "--rm",
            "--add-host",
            "hgw:host-gateway",
            "web",
            "cat",
            "/etc/hosts",
        ])
        .ok();
    let bridge_gw = host.network_inspect("bridge")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        gw.contains(&format!("{bridge_gw}\thgw")),
        "host-gateway is the gateway: {gw}"
    );
    let err = host
        .cli(&["run", "--rm", "--add-host", "nocolon", "web", "true"])
        .code(125);
    assert!(err.contains("--add-host"), "{err}");
    let err = host
        .cli(&["run", "--rm", "--ip", "172.30.0.5", "web", "true"])
        .code(125);
    assert!(err.contains("user-defined network"), "{err}");
}

#[test]
fn concurrent_network_creates_get_distinct_subnets() {
    require_root!();
    let host = SandboxHost::with_web();
    let names: Vec<String> = (0..8).map(|i| format!("cn{i}")).collect();
    std::thread::scope(|s| {
        for n in &names {
            let host = &host;
            s.spawn(move || host.cli(&["network", "create", n]).ok());
        }
    });
    let mut subnets: Vec<String> = names
        .iter()
        .map(|n| {
            host.network_inspect(n)["IPAM"]["Config"][0]["Subnet"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    subnets.sort();
    let before = subnets.len();
    subnets.dedup();
    assert_eq!(
        subnets.len(),
        before,
        "two networks share a subnet: {subnets:?}"
    );
    // Explicit overlapping subnets created at once: exactly one wins.
    let wins: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let host = &host;
                s.spawn(move || {
                    let name = format!("ov{i}");
                    let third = format!("10.66.{i}.0/24");
                    host.cli(&[
                        "network",
                        "create",
                        "--subnet",
                        &third,
                        "--subnet",
                        "10.99.0.0/16",
                        &name,
                    ])
                    .success()
                })
            })
            .collect();
        hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(wins, 1, "overlapping subnets must not all be created");
}

#[test]
fn racing_connect_and_disconnect_stay_consistent() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "home"]).ok();
    host.cli(&["network", "create", "away"]).ok();
    let names: Vec<String> = (0..6).map(|i| format!("rc{i}")).collect();
    for n in &names {
        host.cli(&[
            "run", "-d", "--net", "home", "--name", n, "web", "sleep", "1000",
        ])
        .ok();
    }
    std::thread::scope(|s| {
        for n in &names {
            let host = &host;
            s.spawn(move || host.cli(&["network", "connect", "away", n]));
            s.spawn(move || host.cli(&["network", "disconnect", "away", n]));
        }
    });
    // Whatever won, the record and the interface agree, and no address is used twice.
    let mut seen = Vec::new();
    for n in &names {
        let rec = host.inspect(n)["NetworkSettings"]["Networks"]["away"]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let dev = host
            .exec_sh(n, "ip -o -4 addr show eth1 2>/dev/null || true")
            .ok();
        if rec.is_empty() {
            assert!(dev.trim().is_empty(), "{n}: eth1 without a record: {dev}");
        } else {
            assert!(
                dev.contains(&format!("{rec}/")),
                "{n}: record {rec}, device {dev}"
            );
            assert!(!seen.contains(&rec), "{rec} given twice");
            seen.push(rec);
        }
    }
}

#[test]
fn a_container_on_two_networks_resolves_names_of_both() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "first"]).ok();
    host.cli(&["network", "create", "second"]).ok();
    host.cli(&[
        "run", "-d", "--net", "first", "--name", "multi", "web", "sleep", "1000",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "first", "--name", "single", "web", "sleep", "1000",
    ])
    .ok();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "second",
        "--name",
        "far",
        "-e",
        "INSTANCE=far",
        "web",
    ])
    .ok();
    host.cli(&["network", "connect", "second", "multi"]).ok();
    // multi's resolv.conf points at first's gateway, yet it resolves a name on second.
    let page = host
        .http_from("multi", "far", 80)
        .unwrap_or_else(|e| panic!("multi cannot reach far by name: {e}"));
    assert!(page.contains("berth demo: far"), "{page}");
    // A container only on first does not see second's names.
    let out = host.exec_sh("single", "nslookup far 2>&1 || true").ok();
    assert!(!out.contains(&host.ip_on("far", "second")), "{out}");
}

#[test]
fn a_thousand_published_ports_come_and_go_together() {
    require_root!();
    let host = SandboxHost::with_web();
    // The default network (and its rules) exists before the baseline is taken.
    host.cli(&["run", "--rm", "web", "true"]).ok();
    let before = host.nft_ruleset();
    host.cli(&[
        "run",
        "-d",
        "--name",
        "many",
        "-e",
        "INSTANCE=many",
        "-p",
        "20000-20999:20000-20999",
        "-p",
        "21080:80",
        "web",
    ])
    .ok();
    let ports = host.cli(&["port", "many"]).ok();
    assert_eq!(
        ports.lines().count(),
        1001,
        "{}",
        &ports[..ports.len().min(300)]
    );
    assert!(
        host.wait_published(21080, "berth demo: many"),
        "the extra port answers"
    );
    // ps collapses the run into one range, as Docker does.
    let ps = host.cli(&["ps"]).ok();
    assert!(
        ps.contains("0.0.0.0:21080->80/tcp, 0.0.0.0:20000-20999->20000-20999/tcp")
            || ps.contains("0.0.0.0:20000-20999->20000-20999/tcp, 0.0.0.0:21080->80/tcp"),
        "{}",
        &ps[..ps.len().min(600)]
    );
    let err = host
        .cli(&["run", "-d", "--name", "clash", "-p", "20500:80", "web"])
        .code(125);
    assert!(err.contains("many"), "the holder is named: {err}");
    host.cli(&["rm", "-f", "many"]).ok();
    assert_eq!(host.nft_ruleset(), before, "every element is gone");
}

#[test]
fn connected_networks_survive_a_restart() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "front"]).ok();
    host.cli(&["network", "create", "back"]).ok();
    host.cli(&[
        "run", "-d", "--net", "front", "--name", "api", "web", "sleep", "1000",
    ])
    .ok();
    host.cli(&["network", "connect", "--alias", "apib", "back", "api"])
        .ok();
    host.cli(&["network", "disconnect", "front", "api"]).ok();
    host.cli(&["restart", "-t", "1", "api"]).ok();
    let nets = host.inspect("api")["NetworkSettings"]["Networks"].clone();
    let keys: Vec<&String> = nets.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["back"], "after restart: {nets}");
    let routes = host.exec_sh("api", "ip route").ok();
    assert!(
        routes.starts_with("default via"),
        "a default route via back: {routes}"
    );
    assert_eq!(
        nets["back"]["Aliases"][0], "apib",
        "the alias given at connect time"
    );
    // Reconnecting the first network takes a free interface name, not a taken one.
    host.cli(&["network", "connect", "front", "api"]).ok();
    let links = host.exec_sh("api", "ip -o link").ok();
    assert!(links.contains("eth0") && links.contains("eth1"), "{links}");
}

#[test]
fn the_host_itself_can_query_the_embedded_dns() {
    require_root!();
    let host = SandboxHost::with_web();
    // A "LAN" address on the host, on a link made before the bridge: masquerade on lo would
    // pick it as the new source (inet_select_addr takes the first universe-scope address).
    let _lan = host.add_client();
    host.cli(&["network", "create", "--subnet", "10.235.0.0/24", "hostdns"])
        .ok();
    host.cli(&["run", "-d", "--name", "named", "--net", "hostdns", "web"])
        .ok();
    let ip = host.ip_on("named", "hostdns");
    // From the sandbox host's own namespace (not a container): the packet leaves by lo with
    // the gateway as its source and must not be masqueraded on the way.
    let out = host.sh("timeout 10 busybox nslookup named 10.235.0.1");
    assert!(out.success() && out.stdout.contains(&ip), "{out}");
    let rules = host.nft_ruleset();
    assert!(
        rules.contains("oifname != \"lo\" oifname != @bridges masquerade"),
        "{rules}"
    );
}

#[test]
fn bridge_names_the_kernel_would_treat_as_templates_are_refused() {
    require_root!();
    let host = SandboxHost::with_web();
    let links = host.link_names();
    for name in ["x%d", "br/x", "br:x", "br x"] {
        let opt = format!("com.docker.network.bridge.name={name}");
        let err = host
            .cli(&[
                "network",
                "create",
                "-o",
                &opt,
                "--subnet",
                "10.236.0.0/24",
                "tmpl",
            ])
            .code(125);
        assert!(err.contains("invalid interface name"), "{name}: {err}");
        assert!(err.contains("'%'"), "{name}: {err}");
    }
    assert_eq!(host.link_names(), links, "no link was left behind (x0)");
    assert!(!host.network_names().contains("tmpl"));
}
