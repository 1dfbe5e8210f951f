//! Unit tests of the spec generator: pure checks of the produced document.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, Capability, LinuxNamespaceType, Spec};

use super::*;

pub(super) fn input() -> SpecInput {
    SpecInput {
        rootfs: PathBuf::from("/var/lib/berth/containers/abc/rootfs"),
        args: vec!["/bin/sh".to_owned(), "-c".to_owned(), "true".to_owned()],
        env: Vec::new(),
        cwd: "/".to_owned(),
        user: ExecUser::root(),
        hostname: Some("abc123".to_owned()),
        terminal: false,
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        privileged: false,
        netns: NetNsSpec::Path(PathBuf::from("/run/berth/netns/abc")),
        cgroups_path: "/berth/abc".to_owned(),
        etc_files: EtcFiles {
            hosts: PathBuf::from("/run/berth/abc/hosts"),
            hostname: PathBuf::from("/run/berth/abc/hostname"),
            resolv_conf: PathBuf::from("/run/berth/abc/resolv.conf"),
        },
        seccomp: crate::config::SeccompOption::Default,
        no_new_privileges: false,
    }
}

fn caps_of(spec: &Spec) -> oci_spec::runtime::LinuxCapabilities {
    spec.process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap()
}

fn strings(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn default_caps_are_exactly_dockers_in_every_set() {
    let spec = build_spec(&input()).unwrap();
    let caps = caps_of(&spec);
    let want: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    assert_eq!(want.len(), 14);
    assert_eq!(caps.bounding().as_ref(), Some(&want));
    assert_eq!(caps.effective().as_ref(), Some(&want));
    assert_eq!(caps.permitted().as_ref(), Some(&want));
    assert_eq!(caps.inheritable(), &None);
    assert_eq!(caps.ambient(), &None);
    // The CapEff every Docker container shows in /proc/self/status.
    assert_eq!(capability_mask(&want), 0xa804_25fb);
}

#[test]
fn cap_add_net_admin_in_all_sets_any_spelling() {
    for name in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_net_admin"] {
        let mut i = input();
        i.cap_add = vec![name.to_owned()];
        let caps = caps_of(&build_spec(&i).unwrap());
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.as_ref().unwrap();
            assert!(set.contains(&Capability::NetAdmin), "{name}");
            assert_eq!(set.len(), 15, "{name}");
        }
    }
}

#[test]
fn cap_drop_removes_one() {
    let mut i = input();
    i.cap_drop = vec!["net_raw".to_owned(), "CAP_MKNOD".to_owned()];
    let caps = caps_of(&build_spec(&i).unwrap());
    let eff = caps.effective().as_ref().unwrap();
    assert!(!eff.contains(&Capability::NetRaw));
    assert!(!eff.contains(&Capability::Mknod));
    assert_eq!(eff.len(), 12);
}

#[test]
fn cap_drop_all_keeps_only_added() {
    let mut i = input();
    i.cap_drop = vec!["ALL".to_owned()];
    let caps = caps_of(&build_spec(&i).unwrap());
    assert_eq!(caps.effective().as_ref().unwrap().len(), 0);
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 0);

    i.cap_add = vec!["chown".to_owned()];
    let caps = caps_of(&build_spec(&i).unwrap());
    let want: Capabilities = [Capability::Chown].into_iter().collect();
    assert_eq!(caps.effective().as_ref(), Some(&want));
}

#[test]
fn cap_add_all_minus_drop() {
    let set = capability_set(
        &["all".to_owned()],
        &["SYS_ADMIN".to_owned()],
        false,
        mask_up_to(40),
    )
    .unwrap();
    assert_eq!(set.len(), 40);
    assert!(!set.contains(&Capability::SysAdmin));
    assert!(set.contains(&Capability::NetAdmin));
}

#[test]
fn all_respects_the_kernels_last_cap() {
    let set = capability_set(&[], &[], true, mask_up_to(37)).unwrap();
    assert_eq!(set.len(), 38);
    assert!(!set.contains(&Capability::Bpf));
    assert!(set.contains(&Capability::AuditRead));
}

#[test]
fn unknown_cap_is_named() {
    let mut i = input();
    i.cap_add = vec!["NET_ADMIN".to_owned(), "CAP_FLY".to_owned()];
    let err = build_spec(&i).unwrap_err();
    assert!(matches!(&err, SpecError::UnknownCapability { name } if name == "CAP_FLY"));
    assert!(err.to_string().contains("CAP_FLY"));

    let mut i = input();
    i.cap_drop = vec!["bogus".to_owned()];
    i.privileged = true;
    assert!(matches!(
        build_spec(&i),
        Err(SpecError::UnknownCapability { .. })
    ));
}

#[test]
fn capability_numbers_are_the_kernels() {
    assert_eq!(capability_number(Capability::NetAdmin), 12);
    assert_eq!(capability_number(Capability::SysAdmin), 21);
    assert_eq!(capability_number(Capability::CheckpointRestore), 40);
    let numbers: HashSet<u8> = ALL_CAPABILITIES.iter().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (0..=40).collect());
}

#[test]
fn privileged_gets_everything_and_no_masks() {
    let mut i = input();
    i.privileged = true;
    let spec = build_spec(&i).unwrap();
    let caps = caps_of(&spec);
    let n = (host_allowed_caps() & mask_up_to(40)).count_ones() as usize;
    assert_eq!(caps.effective().as_ref().unwrap().len(), n);
    assert!(caps
        .bounding()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths(), &None);
    assert_eq!(linux.readonly_paths(), &None);
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].allow());
    assert_eq!(devices[0].access().as_deref(), Some("rwm"));
    for m in spec.mounts().as_ref().unwrap() {
        if matches!(m.typ().as_deref(), Some("sysfs" | "cgroup")) {
            assert!(!m.options().as_ref().unwrap().contains(&"ro".to_owned()));
        }
    }
}

#[test]
fn default_masks_readonly_and_devices() {
    let spec = build_spec(&input()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let masked = linux.masked_paths().clone().unwrap();
    assert!(masked.contains(&"/proc/kcore".to_owned()));
    assert!(masked.contains(&"/sys/devices/virtual/powercap".to_owned()));
    assert_eq!(masked.len(), 11);
    assert_eq!(
        strings(&linux.readonly_paths().clone().unwrap()),
        [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(!devices[0].allow(), "first rule denies all");
    assert_eq!(devices[0].major(), None);
    let allowed: Vec<(i64, Option<i64>)> = devices[1..]
        .iter()
        .inspect(|d| assert!(d.allow()))
        .map(|d| (d.major().unwrap(), d.minor()))
        .collect();
    for want in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(9)),
        (5, Some(2)),
        (136, None),
    ] {
        assert!(allowed.contains(&want), "{want:?}");
    }
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new("/berth/abc"))
    );
    let seccomp = linux
        .seccomp()
        .as_ref()
        .expect("Docker's default seccomp profile");
    assert_eq!(
        seccomp.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    assert!(!spec
        .process()
        .as_ref()
        .unwrap()
        .no_new_privileges()
        .unwrap_or(false));
}

#[test]
fn seccomp_off_when_privileged_or_unconfined_and_no_new_privileges() {
    let mut i = input();
    i.privileged = true;
    assert_eq!(
        build_spec(&i).unwrap().linux().as_ref().unwrap().seccomp(),
        &None
    );
    let mut i = input();
    i.seccomp = crate::config::SeccompOption::Unconfined;
    i.no_new_privileges = true;
    let spec = build_spec(&i).unwrap();
    assert_eq!(spec.linux().as_ref().unwrap().seccomp(), &None);
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    // CAP_SYS_ADMIN in the bounding set brings mount/unshare back, as in Docker.
    let mut i = input();
    i.cap_add = vec!["SYS_ADMIN".into()];
    let spec = build_spec(&i).unwrap();
    let names: Vec<String> = spec
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .as_ref()
        .unwrap()
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names().clone())
        .collect();
    assert!(names.iter().any(|n| n == "unshare"));
}

#[test]
fn network_namespace_by_mode() {
    let spec = build_spec(&input()).unwrap();
    let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    let net: Vec<_> = ns
        .iter()
        .filter(|n| n.typ() == LinuxNamespaceType::Network)
        .collect();
    assert_eq!(net.len(), 1);
    assert_eq!(
        net[0].path().as_deref(),
        Some(std::path::Path::new("/run/berth/netns/abc"))
    );
    let types: HashSet<_> = ns.iter().map(|n| n.typ()).collect();
    for t in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
    ] {
        assert!(types.contains(&t), "{t:?}");
    }
    assert!(ns
        .iter()
        .filter(|n| n.typ() != LinuxNamespaceType::Network)
        .all(|n| n.path().is_none()));

    let mut i = input();
    i.netns = NetNsSpec::Host;
    let spec = build_spec(&i).unwrap();
    let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert_eq!(ns.len(), 4);
    assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::Network));
    assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
}

#[test]
fn mounts_are_dockers() {
    let spec = build_spec(&input()).unwrap();
    let mounts = spec.mounts().clone().unwrap();
    let find = |dest: &str| {
        mounts
            .iter()
            .find(|m| m.destination() == std::path::Path::new(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    };
    let opts = |dest: &str| find(dest).options().clone().unwrap();
    assert_eq!(find("/proc").typ().as_deref(), Some("proc"));
    assert!(opts("/dev").contains(&"size=65536k".to_owned()));
    assert!(opts("/dev").contains(&"mode=755".to_owned()));
    for o in ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] {
        assert!(opts("/dev/pts").contains(&o.to_owned()), "{o}");
    }
    assert!(opts("/dev/shm").contains(&"size=67108864".to_owned()));
    assert_eq!(find("/dev/mqueue").typ().as_deref(), Some("mqueue"));
    assert!(opts("/sys").contains(&"ro".to_owned()));
    assert!(opts("/sys/fs/cgroup").contains(&"ro".to_owned()));
    for (dest, src) in [
        ("/etc/hosts", "/run/berth/abc/hosts"),
        ("/etc/hostname", "/run/berth/abc/hostname"),
        ("/etc/resolv.conf", "/run/berth/abc/resolv.conf"),
    ] {
        let m = find(dest);
        assert_eq!(m.source().as_deref(), Some(std::path::Path::new(src)));
        assert_eq!(strings(&opts(dest)), ["rbind", "rprivate"]);
    }
    // /dev must come before the mounts beneath it.
    let pos = |d: &str| {
        mounts
            .iter()
            .position(|m| m.destination() == std::path::Path::new(d))
    };
    assert!(pos("/dev") < pos("/dev/pts") && pos("/sys") < pos("/sys/fs/cgroup"));
}

#[test]
fn nofile_never_above_host_hard_limit() {
    assert_eq!(nofile_limit(u64::MAX), MAX_NOFILE);
    assert_eq!(nofile_limit(4096), 4096);
    assert_eq!(nofile_limit(MAX_NOFILE * 2), MAX_NOFILE);
    let hard = host_nofile_hard().unwrap();
    let spec = build_spec(&input()).unwrap();
    let rl = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(
        rl[0].typ(),
        oci_spec::runtime::PosixRlimitType::RlimitNofile
    );
    assert!(rl[0].hard() <= hard && rl[0].hard() <= MAX_NOFILE);
    assert_eq!(rl[0].soft(), rl[0].hard());
}

#[test]
fn env_defaults() {
    let env = container_env(&input());
    assert_eq!(
        strings(&env),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=abc123",
            "HOME=/",
        ]
    );
}

#[test]
fn env_overrides_in_place_and_term_with_tty() {
    let mut i = input();
    i.terminal = true;
    i.user.home = "/home/alice".to_owned();
    i.env = vec![
        "PATH=/opt/bin".to_owned(),
        "FOO=bar".to_owned(),
        "FOO=baz".to_owned(),
    ];
    assert_eq!(
        strings(&container_env(&i)),
        [
            "PATH=/opt/bin",
            "HOSTNAME=abc123",
            "TERM=xterm",
            "FOO=baz",
            "HOME=/home/alice",
        ]
    );
    i.env.push("HOME=/data".to_owned());
    i.env.push("TERM=dumb".to_owned());
    let env = container_env(&i);
    assert!(env.contains(&"HOME=/data".to_owned()));
    assert!(env.contains(&"TERM=dumb".to_owned()));
    assert!(!env
        .iter()
        .any(|e| e == "TERM=xterm" || e == "HOME=/home/alice"));
}

#[test]
fn process_fields() {
    let mut i = input();
    i.user = ExecUser {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10, 29],
        home: "/home/alice".to_owned(),
    };
    i.cwd = "/srv".to_owned();
    i.terminal = true;
    let spec = build_spec(&i).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.user().uid(), 1000);
    assert_eq!(p.user().gid(), 1000);
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[10, 29][..]));
    assert_eq!(p.cwd(), std::path::Path::new("/srv"));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.no_new_privileges(), Some(false));
    assert_eq!(p.oom_score_adj(), None);
    assert_eq!(p.args().as_deref().unwrap(), &i.args[..]);
    assert_eq!(spec.hostname().as_deref(), Some("abc123"));
    assert_eq!(spec.root().as_ref().unwrap().path(), &i.rootfs);
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
}

#[test]
fn bad_command_and_cwd_are_refused() {
    let mut i = input();
    i.args.clear();
    assert!(matches!(build_spec(&i), Err(SpecError::NoCommand)));
    let mut i = input();
    i.cwd = "srv".to_owned();
    assert!(matches!(build_spec(&i), Err(SpecError::RelativeCwd { .. })));
    let mut i = input();
    i.cwd = String::new();
    let spec = build_spec(&i).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().cwd(),
        std::path::Path::new("/")
    );
}

#[test]
fn serializes_to_runc_json() {
    let spec = build_spec(&input()).unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["process"]["noNewPrivileges"], false);
    assert!(json["process"]["capabilities"]["effective"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("CAP_CHOWN")));
    assert_eq!(json["linux"]["cgroupsPath"], "/berth/abc");
    assert_eq!(json["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
}

#[test]
fn validate_caps_accepts_spellings_and_names_typos() {
    let ok = ["NET_ADMIN", "cap_sys_time", "ALL", "all"].map(String::from);
    validate_caps(&ok, &ok).unwrap();
    let err = validate_caps(&[], &["CAP_NET_ADMNI".to_owned()]).unwrap_err();
    assert!(matches!(err, SpecError::UnknownCapability { name } if name == "CAP_NET_ADMNI"));
}

#[test]
fn no_oci_spec_defaults_leak_in() {
    let mut i = input();
    i.hostname = None;
    let spec = build_spec(&i).unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert!(json.get("hostname").is_none(), "{json}");
    assert!(json.get("annotations").is_none());
    assert!(!container_env(&i).iter().any(|e| e.starts_with("HOSTNAME=")));
    let linux = &json["linux"];
    for absent in ["uidMappings", "sysctl", "devices", "rootfsPropagation"] {
        assert!(linux.get(absent).is_none(), "{absent}: {linux}");
    }
    let p = &json["process"];
    for absent in [
        "apparmorProfile",
        "oomScoreAdj",
        "consoleSize",
        "selinuxLabel",
    ] {
        assert!(p.get(absent).is_none(), "{absent}: {p}");
    }
}

#[test]
fn only_capabilities_in_the_bounding_set_are_granted() {
    // A host whose bounding set lacks CAP_SYS_RESOURCE (24), like this CI machine's root.
    let allowed = mask_up_to(40) & !(1u64 << 24);
    let set = capability_set(&[], &[], true, allowed).unwrap();
    assert!(!set.contains(&Capability::SysResource));
    assert!(set.contains(&Capability::SysAdmin));
    let all = capability_set(&["ALL".to_owned()], &[], false, allowed).unwrap();
    assert!(!all.contains(&Capability::SysResource));
    let err = capability_set(&["SYS_RESOURCE".to_owned()], &[], false, allowed).unwrap_err();
    assert!(err.to_string().contains("bounding set"), "{err}");
}
