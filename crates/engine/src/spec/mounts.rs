//! The filesystem view Docker gives every container: the kernel filesystems under /proc,
//! /dev and /sys, the bind-mounted /etc/hosts, /etc/hostname and /etc/resolv.conf, the
//! masked and read-only /proc and /sys paths, and the device cgroup allow-list.
//!
//! Source: moby `oci/defaults.go` (`DefaultLinuxSpec`) and `daemon/oci_linux.go`
//! (`WithMounts`, `WithDevices`); /dev/shm is moby's 64 MiB default `--shm-size`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, Mount};

use super::{EtcFiles, SpecError};

/// Paths hidden from the container (a directory gets an empty read-only tmpfs, a file
/// `/dev/null`), moby `oci/defaults.go` `DefaultLinuxSpec().Linux.MaskedPaths`.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths remounted read-only, moby `oci/defaults.go` `DefaultLinuxSpec().Linux.ReadonlyPaths`.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Character devices a non-privileged container may read, write and mknod, as
/// `(name, major, minor)`; `None` minor is every minor. These are the OCI default devices
/// (runtime-spec `config-linux.md#default-devices`) plus the devpts slaves.
pub const ALLOWED_CHAR_DEVICES: [(&str, i64, Option<i64>); 9] = [
    ("null", 1, Some(3)),
    ("zero", 1, Some(5)),
    ("full", 1, Some(7)),
    ("random", 1, Some(8)),
    ("urandom", 1, Some(9)),
    ("tty", 5, Some(0)),
    ("console", 5, Some(1)),
    ("ptmx", 5, Some(2)),
    ("pts", 136, None),
];

/// Builds one mount entry.
fn mount(dest: &str, typ: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(source.to_owned()));
    m.set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    m
}

/// The container's mounts, in mount order: proc, /dev tmpfs, devpts, /dev/shm, mqueue,
/// sysfs (read-only), the cgroup hierarchy (read-only), then the three `/etc` bind mounts
/// (`rbind,rprivate`, writable like Docker's).
///
/// With the host network namespace the sysfs mount stays as is: runc mounts a fresh sysfs,
/// which then shows the host's interfaces, as under `docker run --net=host`.
pub fn default_mounts(etc: &EtcFiles) -> Vec<Mount> {
    let bind = ["rbind", "rprivate"];
    vec![
        mount(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            Path::new("cgroup"),
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mount("/etc/hosts", "bind", &etc.hosts, &bind),
        mount("/etc/hostname", "bind", &etc.hostname, &bind),
        mount("/etc/resolv.conf", "bind", &etc.resolv_conf, &bind),
    ]
}

/// The device cgroup rules: everything allowed when privileged, else deny all then allow
/// [`ALLOWED_CHAR_DEVICES`] (`rwm`).
///
/// # Errors
/// [`SpecError::Build`] if oci-spec rejects a rule (it does not for these values).
pub fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let build = |b: LinuxDeviceCgroupBuilder| {
        b.build().map_err(|source| SpecError::Build {
            what: "device cgroup rule",
            source,
        })
    };
    let all = LinuxDeviceCgroupBuilder::default()
        .typ(LinuxDeviceType::A)
        .access("rwm");
    if privileged {
        return Ok(vec![build(all.allow(true))?]);
    }
    let mut rules = vec![build(all.allow(false))?];
    for (_, major, minor) in ALLOWED_CHAR_DEVICES {
        let mut rule = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .access("rwm");
        if let Some(minor) = minor {
            rule = rule.minor(minor);
        }
        rules.push(build(rule)?);
    }
    Ok(rules)
}
