//! Container and image safety (issue 11): an image cannot make `run` write outside its root
//! filesystem, Docker's default seccomp profile and `--security-opt`, and the validation of
//! options written into a container's hosts and resolv.conf files.

use std::collections::BTreeMap;
use std::path::Path;

use berth_tests::{fixture_images, linked_rootfs_archive, require_root, SandboxHost};

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every file under `dir` (relative name, kind and content), to compare before and after.
fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(e.path()).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            format!(
                "file {:?}",
                std::fs::read_to_string(e.path()).unwrap_or_default()
            )
        };
        out.insert(e.file_name().to_string_lossy().into_owned(), what);
    }
    out
}

/// Imports the fixture rootfs with `links` replacing those names, tagged `tag`.
fn import_linked(host: &SandboxHost, links: &[(&str, &str)], tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("linked.tar");
    linked_rootfs_archive(&fixture_images().rootfs_tar, links, &archive).unwrap();
    host.cli(&[
        "import",
        "--change",
        r#"CMD ["/bin/sh"]"#,
        path(&archive),
        tag,
    ])
    .ok();
}

#[test]
fn image_links_on_mount_targets_never_reach_the_host() {
    require_root!();
    let host = SandboxHost::new();
    let dev = tempfile::tempdir_in("/var/tmp").unwrap();
    let etc = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(dev.path().join("ptmx"), "host ptmx\n").unwrap();
    std::fs::write(etc.path().join("keep"), "host file\n").unwrap();
    let (dev_before, etc_before) = (listing(dev.path()), listing(etc.path()));
    import_linked(
        &host,
        &[("dev", path(dev.path())), ("etc", path(etc.path()))],
        "evil:links",
    );
    // Docker's init layer: the links are hidden by real entries in the container's layer,
    // and the container runs normally with its own /dev and /etc files.
    let out = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--hostname",
            "safe",
            "evil:links",
            "sh",
            "-c",
            "test -d /dev -a ! -L /dev -a -d /etc -a ! -L /etc && cat /etc/hostname && ls /dev",
        ])
        .ok();
    assert!(out.starts_with("safe"), "{out}");
    assert!(out.contains("null"), "the runtime's /dev is there: {out}");
    assert_eq!(
        listing(dev.path()),
        dev_before,
        "host dir behind `dev` touched"
    );
    assert_eq!(
        listing(etc.path()),
        etc_before,
        "host dir behind `etc` touched"
    );
}

#[test]
fn workdir_through_an_image_link_stays_inside_the_rootfs() {
    require_root!();
    let host = SandboxHost::new();
    let app = tempfile::tempdir_in("/var/tmp").unwrap();
    import_linked(&host, &[("app", path(app.path()))], "evil:workdir");
    // `app` points at a path that does not exist inside the image: refused, nothing created.
    let err = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-w",
            "/app/sub",
            "evil:workdir",
            "true",
        ])
        .code(125);
    assert!(
        err.contains("symbolic link to a missing directory"),
        "{err}"
    );
    assert!(
        listing(app.path()).is_empty(),
        "host dir behind `app` touched"
    );
    // A workdir through a link that resolves inside the image works, and is made there.
    let out = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-w",
            "/bin/../www/new",
            "evil:workdir",
            "pwd",
        ])
        .ok();
    assert_eq!(out, "/www/new");
    assert!(listing(app.path()).is_empty());
}

/// `Seccomp:` and `NoNewPrivs:` of the container's init, from /proc/self/status.
fn status_fields(host: &SandboxHost, opts: &[&str]) -> (String, String) {
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[
        "web",
        "grep",
        "-E",
        "^(Seccomp|NoNewPrivs):",
        "/proc/self/status",
    ]);
    let out = host.cli(&args).ok();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    (field("Seccomp:"), field("NoNewPrivs:"))
}

#[test]
fn default_seccomp_profile_blocks_what_docker_blocks() {
    require_root!();
    let host = SandboxHost::with_web();
    // unshare(CLONE_NEWUSER) needs no capability, so only the filter stops it (Docker's
    // profile allows unshare with CAP_SYS_ADMIN only).
    let blocked = host
        .cli(&[
            "run", "--rm", "--net", "none", "web", "unshare", "-U", "true",
        ])
        .fails();
    assert!(blocked.contains("Operation not permitted"), "{blocked}");
    host.cli(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "web",
        "unshare",
        "-U",
        "true",
    ])
    .ok();
    assert_eq!(
        status_fields(&host, &[]),
        ("2".into(), "0".into()),
        "filter mode"
    );
    assert_eq!(
        status_fields(&host, &["--security-opt", "seccomp:unconfined"]).0,
        "0"
    );
    assert_eq!(
        status_fields(&host, &["--privileged"]).0,
        "0",
        "privileged: no filter"
    );
    // A Docker-format profile from a file: everything allowed but mkdir.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", path(&profile));
    let denied = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--security-opt",
            &opt,
            "web",
            "mkdir",
            "/x",
        ])
        .fails();
    assert!(denied.contains("Operation not permitted"), "{denied}");
    host.cli(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--security-opt",
        &opt,
        "web",
        "unshare",
        "-U",
        "true",
    ])
    .ok();
}

#[test]
fn no_new_privileges_and_inspect_security_opt() {
    require_root!();
    let host = SandboxHost::with_web();
    assert_eq!(
        status_fields(&host, &["--security-opt", "no-new-privileges"]).1,
        "1"
    );
    assert_eq!(
        status_fields(&host, &["--security-opt", "no-new-privileges=false"]).1,
        "0"
    );
    host.cli(&[
        "create",
        "--name",
        "nnp",
        "--security-opt",
        "no-new-privileges:true",
        "--security-opt",
        "seccomp=unconfined",
        "web",
    ])
    .ok();
    let v = host.inspect("nnp");
    assert_eq!(
        v["HostConfig"]["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true", "seccomp=unconfined"]),
        "{v}"
    );
    host.cli(&["create", "--name", "plain", "web"]).ok();
    assert!(host.inspect("plain")["HostConfig"]["SecurityOpt"].is_null());
    // `exec` runs under the container's filter and no_new_privs too.
    host.cli(&[
        "run",
        "-d",
        "--name",
        "nnp-run",
        "--net",
        "none",
        "--security-opt",
        "no-new-privileges",
        "web",
        "sleep",
        "300",
    ])
    .ok();
    let out = host
        .cli(&[
            "exec",
            "nnp-run",
            "grep",
            "-E",
            "^(Seccomp|NoNewPrivs):",
            "/proc/self/status",
        ])
        .ok();
    assert!(
        out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t1"),
        "{out}"
    );
    let blocked = host
        .cli(&["exec", "nnp-run", "unshare", "-U", "true"])
        .fails();
    assert!(blocked.contains("Operation not permitted"), "{blocked}");
}

#[test]
fn bad_security_opts_are_refused_at_create_leaving_nothing() {
    require_root!();
    let host = SandboxHost::with_web();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"defaultAction\": 7}").unwrap();
    let junk_opt = format!("seccomp={}", path(&junk));
    for (opt, says) in [
        ("apparmor=unconfined", "AppArmor"),
        (
            "seccomp=/nonexistent/profile.json",
            "cannot read the seccomp profile",
        ),
        (junk_opt.as_str(), "invalid seccomp profile"),
        ("no-new-privileges=maybe", "no-new-privileges[=true|false]"),
        ("bogus", "invalid --security-opt"),
    ] {
        let err = host
            .cli(&[
                "run",
                "-d",
                "--name",
                "refused",
                "--security-opt",
                opt,
                "web",
            ])
            .code(125);
        assert!(err.contains(says), "{opt}: {err}");
    }
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok(),
        "",
        "a refused create left a record"
    );
}

#[test]
fn junk_in_written_options_and_start_time_checks_are_refused_at_create() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.231.0.0/24", "sec4"])
        .ok();
    let long = "a".repeat(65);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--dns-search", "a.com\nnameserver 7.7.7.7"],
            "invalid --dns-search",
        ),
        (
            &["--dns-option", "ndots:1\nnameserver 7.7.7.7"],
            "invalid --dns-option",
        ),
        (&["--hostname", "evil\n10.0.0.1 bank"], "invalid --hostname"),
        (&["--hostname", &long], "at most 64 characters"),
        (
            &["--network-alias", "db\n10.0.0.1 bank"],
            "invalid network alias",
        ),
        (&["--add-host", "a\nb:10.0.0.1"], "invalid --add-host"),
        (&["-w", "relative/dir"], "must be an absolute path"),
        (
            &["--mac-address", "00:00:00:00:00:00"],
            "invalid --mac-address",
        ),
        (
            &["--mac-address", "ff:ff:ff:ff:ff:ff"],
            "invalid --mac-address",
        ),
        (
            &["--mac-address", "01:00:5e:00:00:01"],
            "invalid --mac-address",
        ),
        (&["-p", "[::1]:8093:80"], "IPv4-only"),
        (&["-p", "[::]:8094:80"], "IPv4-only"),
        (
            &["--net", "sec4", "-p", "[::]:8094:80"],
            "network sec4 is IPv4-only",
        ),
        (
            &["--net", "none", "--ip", "10.231.0.9"],
            "conflicting options: --ip",
        ),
        (
            &["--net", "host", "--mac-address", "02:42:ac:11:00:09"],
            "conflicting options: --mac-address",
        ),
        (
            &["-p", "8090:80", "-p", "8090:80"],
            "published twice in this command",
        ),
        (
            &["-p", "8091:80", "-p", "127.0.0.1:8091:81"],
            "published twice in this command",
        ),
    ];
    for (opts, says) in cases {
        let mut args = vec!["run", "-d", "--name", "refused"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["web", "sleep", "30"]);
        let err = host.cli(&args).code(125);
        assert!(err.contains(says), "{opts:?}: {err}");
        assert!(!err.contains("already in use"), "{opts:?}: {err}");
    }
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok(),
        "",
        "a refused create left a record"
    );
    // Distinct ports and a valid set of options still run.
    host.cli(&[
        "run",
        "-d",
        "--name",
        "fine",
        "-p",
        "8090:80",
        "-p",
        "8091:80",
        "--hostname",
        "fine.example",
        "--dns-search",
        "example.com",
        "--dns-option",
        "ndots:2",
        "web",
    ])
    .ok();
    let resolv = host.exec_sh("fine", "cat /etc/resolv.conf").ok();
    assert!(
        resolv.contains("search example.com") && resolv.contains("options ndots:2"),
        "{resolv}"
    );
}

#[test]
fn a_mac_address_in_use_on_the_network_is_refused_naming_its_holder() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.232.0.0/24", "macnet"])
        .ok();
    let mac = "02:42:0a:e8:00:77";
    host.cli(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--net",
        "macnet",
        "--mac-address",
        mac,
        "web",
    ])
    .ok();
    let err = host
        .cli(&[
            "create",
            "--name",
            "twin",
            "--net",
            "macnet",
            "--mac-address",
            mac,
            "web",
        ])
        .code(125);
    assert!(
        err.contains("already used on network macnet by container holder"),
        "{err}"
    );
    // Created before the holder ran: the start refuses it and leaves the holder's link alone.
    host.cli(&["rm", "-f", "holder"]).ok();
    host.cli(&[
        "create",
        "--name",
        "early",
        "--net",
        "macnet",
        "--mac-address",
        mac,
        "web",
    ])
    .ok();
    host.cli(&[
        "run",
        "-d",
        "--name",
        "holder2",
        "--net",
        "macnet",
        "--mac-address",
        mac,
        "web",
    ])
    .ok();
    let err = host.cli(&["start", "early"]).fails();
    assert!(err.contains("by container holder2"), "{err}");
    assert!(host.running_names().contains("holder2"));
    assert!(!host.running_names().contains("early"));
}

#[test]
fn container_mode_refuses_options_that_would_rewrite_the_joined_container() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "--subnet", "10.233.0.0/24", "joined"])
        .ok();
    host.cli(&["run", "-d", "--name", "xx", "--net", "joined", "web"])
        .ok();
    let files = |h: &SandboxHost| h.exec_sh("xx", "cat /etc/resolv.conf /etc/hosts").ok();
    let before = files(&host);
    assert!(before.contains("nameserver 10.233.0.1"), "{before}");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--dns", "9.9.9.9"],
            "conflicting options: dns and the network mode",
        ),
        (
            &["--dns-search", "evil.example"],
            "conflicting options: dns and the network mode",
        ),
        (
            &["--dns-option", "ndots:9"],
            "conflicting options: dns and the network mode",
        ),
        (
            &["--add-host", "bank:10.0.0.66"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            &["--add-host", "gw:host-gateway"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (&["--expose", "81"], "conflicting options: port exposing"),
        (
            &["-p", "8095:80"],
            "cannot be used with --net container:NAME",
        ),
        (&["-P"], "cannot be used with --net container:NAME"),
        (
            &["--mac-address", "02:42:0a:e9:00:77"],
            "conflicting options: --mac-address",
        ),
        (
            &["--network-alias", "db"],
            "network-scoped alias is supported only",
        ),
        (&["--hostname", "other"], "conflicting options: --hostname"),
    ];
    for (opts, says) in cases {
        let mut args = vec!["run", "-d", "--name", "refused", "--net", "container:xx"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["web", "sleep", "30"]);
        let err = host.cli(&args).code(125);
        assert!(err.contains(says), "{opts:?}: {err}");
    }
    assert_eq!(host.running_names(), ["xx".to_string()].into());
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok().lines().count(),
        1,
        "a refused create left a record"
    );
    assert_eq!(
        files(&host),
        before,
        "xx's resolv.conf and hosts were rewritten"
    );
    // Without those options, joining still works and sees xx's files.
    host.cli(&[
        "run",
        "-d",
        "--name",
        "jj",
        "--net",
        "container:xx",
        "web",
        "sleep",
        "30",
    ])
    .ok();
    let joined = host.exec_sh("jj", "cat /etc/resolv.conf").ok();
    assert!(joined.contains("nameserver 10.233.0.1"), "{joined}");
    assert_eq!(files(&host), before);
}

#[test]
fn network_aliases_need_a_user_defined_network() {
    require_root!();
    let host = SandboxHost::with_web();
    for net in ["bridge", "default", "host", "none"] {
        let err = host
            .cli(&[
                "create",
                "--name",
                "refused",
                "--net",
                net,
                "--network-alias",
                "db",
                "web",
            ])
            .code(125);
        assert!(
            err.contains(
                "network-scoped alias is supported only for containers in user defined networks"
            ),
            "{net}: {err}"
        );
    }
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok(),
        "",
        "a refused create left a record"
    );
    host.cli(&["network", "create", "--subnet", "10.234.0.0/24", "aliased"])
        .ok();
    host.cli(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--net",
        "aliased",
        "--network-alias",
        "db",
        "web",
    ])
    .ok();
    host.cli(&["run", "-d", "--name", "da", "web"]).ok();
    let err = host
        .cli(&["network", "connect", "--alias", "db3", "bridge", "ca"])
        .code(125);
    assert!(
        err.contains("network-scoped alias is supported only"),
        "{err}"
    );
    // The refused connect attached nothing; a user-defined network takes the alias.
    let c = host.inspect("ca");
    let nets = c["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["aliased"], "{c}");
    host.cli(&["network", "connect", "--alias", "db2", "aliased", "da"])
        .ok();
    let out = host.exec_sh("ca", "nslookup db2").ok();
    assert!(out.contains(&host.ip_on("da", "aliased")), "{out}");
}

#[test]
fn seccomp_profiles_must_be_small_regular_files_with_valid_rules() {
    require_root!();
    let host = SandboxHost::with_web();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let arg6 = dir.path().join("arg6.json");
    std::fs::write(
        &arg6,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let notify = dir.path().join("notify.json");
    std::fs::write(
        &notify,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    )
    .unwrap();
    let cases = [
        ("/dev/zero".to_string(), "not a regular file"),
        (path(&fifo).to_string(), "not a regular file"),
        (path(dir.path()).to_string(), "not a regular file"),
        (path(&arg6).to_string(), "compares argument 6"),
        (path(&notify).to_string(), "SCMP_ACT_NOTIFY"),
    ];
    for (file, says) in cases {
        let opt = format!("seccomp={file}");
        let started = std::time::Instant::now();
        let err = host
            .cli(&["create", "--name", "refused", "--security-opt", &opt, "web"])
            .code(125);
        assert!(err.contains(says), "{file}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{file}"
        );
    }
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok(),
        "",
        "a refused create left a record"
    );
    // Argument 5 is the last one a rule may compare, and it runs.
    let arg5 = dir.path().join("arg5.json");
    std::fs::write(
        &arg5,
        std::fs::read_to_string(&arg6)
            .unwrap()
            .replace("\"index\":6", "\"index\":5"),
    )
    .unwrap();
    let opt = format!("seccomp={}", path(&arg5));
    host.cli(&["run", "--rm", "--security-opt", &opt, "web", "true"])
        .ok();
}
