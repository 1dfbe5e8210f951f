//! Underlay networking end to end (issue 4): two sandbox hosts on one L2 segment (each with a
//! veth "NIC" into a lab bridge in a third namespace; the NIC is the macvlan parent). A
//! container on host A is reached from host B at its own address; bridge mode talks, private
//! mode does not; host_access gives the host a way to its containers and is gone after
//! `network rm`; passthru is exclusive; every refusal names its cause; `rm` and kill -9 of the
//! monitor leave no child link. ipvlan, 802.1q parents and dummy parents run where the kernel
//! has them, and print `SKIP:` with the missing kernel option here.

use std::time::Duration;

use berth_tests::{
    kernel_has_link_kind, require_root, skip_kernel, wait_until, Lab, Netns, SandboxHost,
};

/// The segment every test uses (inside its own lab, so tests never share it).
const SUBNET: &str = "192.168.77.0/24";
const GATEWAY: &str = "192.168.77.1";

/// Host A (runs berth, web image loaded), host B (a plain namespace), both plugged into a
/// fresh lab: A's NIC `nicA` 192.168.77.10, B's `nicB` 192.168.77.20. Drop order: host B, the
/// lab, then host A (declared first in the tuple's users).
struct Segment {
    b: Netns,
    lab: Lab,
}

fn segment(a: &SandboxHost) -> Segment {
    let lab = Lab::new().expect("lab namespace");
    let b = Netns::new(&format!("berth-t-{}", berth_tests::random_suffix(8))).expect("host B");
    lab.plug(a.netns(), "nicA", "192.168.77.10/24")
        .expect("plug A");
    lab.plug(&b, "nicB", "192.168.77.20/24").expect("plug B");
    Segment { b, lab }
}

/// `curl http://IP/` from host B (3 s); the body or the failure.
fn curl_from_b(seg: &Segment, ip: &str) -> Result<String, String> {
    let out = seg
        .b
        .command("curl")
        .args(["-sS", "--max-time", "3", &format!("http://{ip}/")])
        .output()
        .expect("curl runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn macvlan(host: &SandboxHost, name: &str, extra: &[&str]) {
    let mut args = vec!["network", "create", "-d", "macvlan", "-o", "parent=nicA"];
    args.extend_from_slice(extra);
    args.push(name);
    host.cli(&args).ok();
}

/// Links of a kind (`macvlan`, `ipvlan`, `vlan`) in host A's namespace.
fn links_of_kind(host: &SandboxHost, kind: &str) -> Vec<String> {
    host.sh("ip -d -o link")
        .ok()
        .lines()
        .filter(|l| l.contains(&format!(" {kind} ")))
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn macvlan_container_is_reached_from_another_host_at_its_own_address() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    let rules_before = host.nft_ruleset();
    macvlan(&host, "lan", &["--subnet", SUBNET, "--gateway", GATEWAY]);
    let net = host.network_inspect("lan");
    assert_eq!(net["Driver"], "macvlan", "{net}");
    assert_eq!(
        net["IPAM"]["Config"][0]["AuxiliaryAddresses"]["parent-nicA"], "192.168.77.10",
        "the host's own address is never handed out: {net}"
    );
    host.cli(&[
        "run",
        "-d",
        "--net",
        "lan",
        "--name",
        "w1",
        "-e",
        "INSTANCE=w1",
        "web",
    ])
    .ok();
    let ip = host.ip_on("w1", "lan");
    assert!(ip.starts_with("192.168.77."), "{ip}");
    let mut page = Err(String::new());
    assert!(
        wait_until(Duration::from_secs(10), || {
            page = curl_from_b(&seg, &ip);
            page.as_ref().is_ok_and(|p| p.contains("berth demo: w1"))
        }),
        "host B could not fetch the page from {ip}: {page:?}"
    );
    // The container's eth0 is a macvlan child with its own (Docker-style) MAC, seen by B.
    let mac = host.inspect("w1")["NetworkSettings"]["Networks"]["lan"]["MacAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let neigh = seg
        .b
        .command("ip")
        .args(["neigh", "show", &ip])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&neigh.stdout).contains(&mac),
        "B's neighbour entry for {ip} must be the container's MAC {mac}: {neigh:?}"
    );
    assert_eq!(
        host.nft_ruleset(),
        rules_before,
        "underlay networks add no rule"
    );
    assert!(
        links_of_kind(&host, "macvlan").is_empty(),
        "the child lives in the sandbox only"
    );

    host.cli(&["rm", "-f", "w1"]).ok();
    host.cli(&[
        "run", "-d", "--net", "lan", "--ip", &ip, "--name", "w2", "web",
    ])
    .ok();
    host.cli(&["rm", "-f", "w2"]).ok();
    host.cli(&["network", "rm", "lan"]).ok();
    assert!(links_of_kind(&host, "macvlan").is_empty());
    drop(seg);
}

#[test]
fn bridge_mode_children_talk_private_mode_children_do_not() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    macvlan(&host, "lanb", &["--subnet", "10.31.0.0/24"]);
    macvlan(
        &host,
        "lanp",
        &["--subnet", "10.32.0.0/24", "-o", "macvlan_mode=private"],
    );
    for (net, names) in [("lanb", ["b1", "b2"]), ("lanp", ["p1", "p2"])] {
        for n in names {
            let inst = format!("INSTANCE={n}");
            host.cli(&["run", "-d", "--net", net, "--name", n, "-e", &inst, "web"])
                .ok();
        }
    }
    let b1 = host.ip_on("b1", "lanb");
    let page = host
        .http_from("b2", &b1, 80)
        .expect("bridge mode: b2 reaches b1");
    assert!(page.contains("berth demo: b1"), "{page}");
    let p1 = host.ip_on("p1", "lanp");
    let out = host.cannot_connect_from("p2", &p1, 80);
    assert!(!out.success(), "private mode: p2 must not reach p1: {out}");
    host.cli(&["rm", "-f", "b1", "b2", "p1", "p2"]).ok();
    host.cli(&["network", "rm", "lanb", "lanp"]).ok();
    drop(seg);
}

#[test]
fn host_access_reaches_own_containers_and_its_shim_goes_with_the_network() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    let links_before = host.link_names();
    macvlan(&host, "plain", &["--subnet", "10.33.0.0/24"]);
    host.cli(&[
        "run",
        "-d",
        "--net",
        "plain",
        "--name",
        "c0",
        "-e",
        "INSTANCE=c0",
        "web",
    ])
    .ok();
    let ip0 = host.ip_on("c0", "plain");
    assert!(
        host.http_from_host(&ip0, 80).is_err(),
        "without host_access the kernel never passes parent <-> child traffic"
    );
    macvlan(&host, "ha", &["--subnet", SUBNET, "-o", "host_access=true"]);
    let net = host.network_inspect("ha");
    let shim_ip = net["IPAM"]["Config"][0]["AuxiliaryAddresses"]["host"]
        .as_str()
        .expect("the shim's address is recorded as aux address host")
        .to_string();
    let shims = links_of_kind(&host, "macvlan");
    assert_eq!(shims.len(), 1, "one host shim: {shims:?}");
    assert!(host.sh("ip -o addr").ok().contains(&shim_ip));
    host.cli(&[
        "run",
        "-d",
        "--net",
        "ha",
        "--name",
        "c1",
        "-e",
        "INSTANCE=c1",
        "web",
    ])
    .ok();
    let ip1 = host.ip_on("c1", "ha");
    let mut got = Err(String::new());
    assert!(
        wait_until(Duration::from_secs(10), || {
            got = host.http_from_host(&ip1, 80);
            got.as_ref().is_ok_and(|p| p.contains("berth demo: c1"))
        }),
        "the host reaches its own container {ip1} through the shim: {got:?}"
    );
    host.cli(&["rm", "-f", "c0", "c1"]).ok();
    host.cli(&["network", "rm", "ha", "plain"]).ok();
    assert!(links_of_kind(&host, "macvlan").is_empty(), "shim gone");
    assert_eq!(host.link_names(), links_before);
    assert!(!host.sh("ip route").ok().contains(&ip1), "no route left");
    drop(seg);
}

#[test]
fn passthru_takes_the_parent_exclusively() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    macvlan(
        &host,
        "pt",
        &["--subnet", "10.34.0.0/24", "-o", "macvlan_mode=passthru"],
    );
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nicA",
        "--subnet",
        "10.35.0.0/24",
        "two",
    ]);
    let err = out.fails();
    assert!(
        err.contains("network pt") && err.contains("passthru"),
        "{out}"
    );
    host.cli(&["run", "-d", "--net", "pt", "--name", "first", "web"])
        .ok();
    let out = host.cli(&["run", "-d", "--net", "pt", "--name", "second", "web"]);
    let err = out.fails();
    assert!(err.contains("first") && err.contains("passthru"), "{out}");
    host.cli(&["rm", "-f", "first"]).ok();
    host.cli(&["rm", "-f", "second"]).ok_or_berth_error();
    host.cli(&["network", "rm", "pt"]).ok();
    drop(seg);
}

#[test]
fn refusals_name_their_cause_and_leave_nothing() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    seg.lab.plug(host.netns(), "nicD", "").unwrap();
    host.sh("ip link set nicD down").ok();
    seg.lab.plug(host.netns(), "nicE", "").unwrap();
    host.sh("ip link add brx type bridge && ip link set nicE master brx")
        .ok();
    let before = host.link_names();
    let create = |extra: &[&str]| {
        let mut args = vec![
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.36.0.0/24",
        ];
        args.extend_from_slice(extra);
        args.push("bad");
        host.cli(&args)
    };
    for (opts, needle) in [
        (vec!["-o", "parent=nope0"], "nope0 does not exist"),
        (vec!["-o", "parent=nicD"], "nicD is down"),
        (vec!["-o", "parent=nicE"], "enslaved to brx (bridge)"),
        (
            vec!["-o", "parent=nicA", "-o", "macvlan_mode=loud"],
            "bridge, private, vepa, passthru",
        ),
        (
            vec!["-o", "parent=nicA", "-o", "ipvlan_mode=l2"],
            "unknown option -o ipvlan_mode",
        ),
    ] {
        let out = create(&opts);
        assert!(out.fails().contains(needle), "{opts:?}: {out}");
    }
    macvlan(&host, "lan", &["--subnet", SUBNET]);
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "ipvlan",
        "-o",
        "parent=nicA",
        "--subnet",
        "10.37.0.0/24",
        "iv",
    ]);
    let err = out.fails();
    assert!(
        err.contains("macvlan network lan") && err.contains("macvlan and ipvlan"),
        "{out}"
    );
    let out = host.cli(&[
        "run", "-d", "--net", "lan", "-p", "8080:80", "--name", "pp", "web",
    ]);
    assert!(
        out.fails()
            .contains("reachable directly at its own address"),
        "{out}"
    );
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nicA",
        "--subnet",
        "10.38.0.0/24",
        "off",
    ]);
    assert!(
        out.stderr.contains("not on the segment of parent nicA"),
        "warns: {out}"
    );
    host.cli(&["rm", "-f", "pp"]).ok_or_berth_error();
    host.cli(&["network", "rm", "lan", "off"]).ok();
    assert_eq!(host.link_names(), before, "refusals leave no link");
    drop(seg);
}

#[test]
fn killed_monitor_and_rm_leave_no_child_link() {
    require_root!();
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    macvlan(&host, "lan", &["--subnet", SUBNET]);
    let id = host
        .cli(&[
            "run",
            "-d",
            "--net",
            "lan",
            "--name",
            "kk",
            "-e",
            "INSTANCE=kk",
            "web",
        ])
        .ok();
    let ip = host.ip_on("kk", "lan");
    let pid = monitor_pid(id.trim()).expect("the monitor of kk runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || monitor_pid(
        id.trim()
    )
    .is_none()));
    host.cli(&["rm", "-f", "kk"]).ok();
    let lab_ns = seg.lab.netns().name().to_string();
    // The child died with the sandbox: its MAC is no longer learnt behind A's lab port.
    assert!(links_of_kind(&host, "macvlan").is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || curl_from_b(&seg, &ip).is_err()),
        "{ip} still answers after rm"
    );
    host.cli(&[
        "run", "-d", "--net", "lan", "--ip", &ip, "--name", "k2", "web",
    ])
    .ok();
    host.cli(&["rm", "-f", "k2"]).ok();
    host.cli(&["network", "rm", "lan"]).ok();
    assert!(!lab_ns.is_empty());
    drop(seg);
}

/// The pid of the monitor of container `id` (`berth __monitor ... <id>`), if one runs.
fn monitor_pid(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        (cmdline.contains("__monitor") && cmdline.contains(id)).then_some(pid)
    })
}

#[test]
fn ipvlan_l2_container_is_reached_from_another_host() {
    require_root!();
    if let Err(why) = kernel_has_link_kind("ipvlan") {
        skip_kernel!("this kernel lacks CONFIG_IPVLAN ({why})");
    }
    let host = SandboxHost::with_web();
    let seg = segment(&host);
    host.cli(&[
        "network",
        "create",
        "-d",
        "ipvlan",
        "-o",
        "parent=nicA",
        "--subnet",
        SUBNET,
        "iv",
    ])
    .ok();
    host.cli(&[
        "run",
        "-d",
        "--net",
        "iv",
        "--name",
        "i1",
        "-e",
        "INSTANCE=i1",
        "web",
    ])
    .ok();
    let ip = host.ip_on("i1", "iv");
    assert!(wait_until(Duration::from_secs(10), || curl_from_b(
        &seg, &ip
    )
    .is_ok_and(|p| p.contains("berth demo: i1"))));
    host.cli(&["rm", "-f", "i1"]).ok();
    host.cli(&["network", "rm", "iv"]).ok();
    drop(seg);
}

#[test]
fn ipvlan_without_kernel_support_is_named_at_create() {
    require_root!();
    if kernel_has_link_kind("ipvlan").is_ok() {
        skip_kernel!("this kernel has ipvlan: the missing-driver error cannot be provoked");
    }
    let host = SandboxHost::new();
    let seg = segment(&host);
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "ipvlan",
        "-o",
        "parent=nicA",
        "--subnet",
        SUBNET,
        "iv",
    ]);
    assert!(out.fails().contains("CONFIG_IPVLAN"), "{out}");
    assert!(!host.network_names().contains("iv"), "no record left");
    drop(seg);
}

#[test]
fn vlan_parent_is_created_and_removed_with_its_last_network() {
    require_root!();
    let host = SandboxHost::new();
    let seg = segment(&host);
    let have = kernel_has_link_kind("vlan");
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nicA.10",
        "--subnet",
        "10.40.0.0/24",
        "v10",
    ]);
    if let Err(why) = have {
        assert!(out.fails().contains("CONFIG_VLAN_8021Q"), "{out}");
        assert!(!host.link_names().contains("nicA.10"));
        drop(seg);
        skip_kernel!("this kernel lacks CONFIG_VLAN_8021Q ({why}); the refusal names it");
    }
    out.ok();
    host.cli(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=nicA.10",
        "--subnet",
        "10.42.0.0/24",
        "v10b",
    ])
    .ok();
    host.cli(&["network", "rm", "v10"]).ok();
    assert!(host.link_names().contains("nicA.10"), "still used by v10b");
    host.cli(&["network", "rm", "v10b"]).ok();
    assert!(
        !host.link_names().contains("nicA.10"),
        "removed with its last network"
    );
    drop(seg);
}

#[test]
fn no_parent_means_an_internal_network_on_a_dummy() {
    require_root!();
    let host = SandboxHost::new();
    let have = kernel_has_link_kind("dummy");
    let out = host.cli(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.41.0.0/24",
        "in",
    ]);
    if let Err(why) = have {
        assert!(out.fails().contains("CONFIG_DUMMY"), "{out}");
        skip_kernel!("this kernel lacks CONFIG_DUMMY ({why}); the refusal names it");
    }
    out.ok();
    assert_eq!(host.network_inspect("in")["Internal"], true);
    host.cli(&["network", "rm", "in"]).ok();
    assert!(links_of_kind(&host, "dummy").is_empty());
}
