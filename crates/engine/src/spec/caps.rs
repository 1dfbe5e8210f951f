//! Linux capabilities of the container process: Docker's default set, `--cap-add` /
//! `--cap-drop` and `--privileged`.
//!
//! Semantics follow moby `oci/caps` (`DefaultCapabilities`, `TweakCapabilities`): privileged
//! gets every capability the kernel knows; `--cap-add ALL` gives every capability except the
//! dropped ones; `--cap-drop ALL` gives only the added ones; otherwise the defaults minus the
//! dropped plus the added. Names are case-insensitive, with or without the `CAP_` prefix.

use oci_spec::runtime::{Capabilities, Capability};

use super::SpecError;

/// Docker's default capability set, in moby's order (`oci/caps/defaults.go`,
/// `DefaultCapabilities`): the well-known `CapEff` of a Docker container, `0xa80425fb`.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability oci-spec knows, with its kernel number (`include/uapi/linux/capability.h`).
pub const ALL_CAPABILITIES: [(Capability, u8); 41] = [
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::DacReadSearch, 2),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::LinuxImmutable, 9),
    (Capability::NetBindService, 10),
    (Capability::NetBroadcast, 11),
    (Capability::NetAdmin, 12),
    (Capability::NetRaw, 13),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::SysModule, 16),
    (Capability::SysRawio, 17),
    (Capability::SysChroot, 18),
    (Capability::SysPtrace, 19),
    (Capability::SysPacct, 20),
    (Capability::SysAdmin, 21),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysResource, 24),
    (Capability::SysTime, 25),
    (Capability::SysTtyConfig, 26),
    (Capability::Mknod, 27),
    (Capability::Lease, 28),
    (Capability::AuditWrite, 29),
    (Capability::AuditControl, 30),
    (Capability::Setfcap, 31),
    (Capability::MacOverride, 32),
    (Capability::MacAdmin, 33),
    (Capability::Syslog, 34),
    (Capability::WakeAlarm, 35),
    (Capability::BlockSuspend, 36),
    (Capability::AuditRead, 37),
    (Capability::Perfmon, 38),
    (Capability::Bpf, 39),
    (Capability::CheckpointRestore, 40),
];

/// Where the kernel publishes its highest capability number.
const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// The kernel number of `cap` (0..=40), e.g. 12 for `CAP_NET_ADMIN`: its bit in
/// `/proc/<pid>/status` `CapEff`.
pub fn capability_number(cap: Capability) -> u8 {
    ALL_CAPABILITIES
        .iter()
        .find(|(c, _)| *c == cap)
        .map_or(u8::MAX, |(_, n)| *n)
}

/// The `CapEff`-style bit mask of a capability set (bit n = capability number n).
pub fn capability_mask(caps: &Capabilities) -> u64 {
    caps.iter()
        .map(|c| 1u64 << capability_number(*c))
        .fold(0, |acc, bit| acc | bit)
}

/// The highest capability number of the running kernel, from
/// `/proc/sys/kernel/cap_last_cap`; every capability oci-spec knows when unreadable.
pub fn host_last_cap() -> u8 {
    std::fs::read_to_string(CAP_LAST_CAP)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Bit mask of capabilities `0..=last_cap`.
pub fn mask_up_to(last_cap: u8) -> u64 {
    if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    }
}

/// The capabilities a container can be given here: the kernel's (`cap_last_cap`) that are
/// also in this process's bounding set (`CapBnd` in /proc/self/status, proc(5)). A runtime
/// cannot raise a capability its caller's bounding set lacks (capabilities(7)): on a host
/// whose root lacks, say, CAP_SYS_RESOURCE, `--privileged` must leave it out, as Podman does.
pub fn host_allowed_caps() -> u64 {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    bounding & mask_up_to(host_last_cap())
}

/// One parsed `--cap-add`/`--cap-drop` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapName {
    All,
    One(Capability),
}

/// Parses `NET_ADMIN`, `cap_net_admin`, `ALL` ...; anything else is
/// [`SpecError::UnknownCapability`].
fn parse_cap(name: &str) -> Result<CapName, SpecError> {
    if name.eq_ignore_ascii_case("ALL") {
        return Ok(CapName::All);
    }
    // oci-spec's deserializer is the case-insensitive, prefix-tolerant parser we want.
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map(CapName::One)
        .map_err(|_| SpecError::UnknownCapability {
            name: name.to_owned(),
        })
}

/// The capability set of a container (`bounding` = `effective` = `permitted`).
///
/// `allowed` is the mask of capabilities that can be granted ([`host_allowed_caps`]):
/// privileged and `ALL` grant only those, as moby's `GetAllCapabilities` keeps to the
/// kernel's; a capability named in `cap_add` outside it is an error that says so.
///
/// # Errors
/// [`SpecError::UnknownCapability`] naming the first value of `cap_add` or `cap_drop` that is
/// not a capability (all values are validated, even when privileged);
/// [`SpecError::UnavailableCapability`] for an added one outside `allowed`.
pub fn capability_set(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    allowed: u64,
) -> Result<Capabilities, SpecError> {
    let add = cap_add
        .iter()
        .map(|n| parse_cap(n))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = cap_drop
        .iter()
        .map(|n| parse_cap(n))
        .collect::<Result<Vec<_>, _>>()?;
    let all = || {
        ALL_CAPABILITIES
            .iter()
            .filter(|(_, n)| allowed & (1u64 << n) != 0)
            .map(|(c, _)| *c)
    };
    if privileged {
        return Ok(all().collect());
    }
    for c in &add {
        if let CapName::One(cap) = c {
            if allowed & (1u64 << capability_number(*cap)) == 0 {
                return Err(SpecError::UnavailableCapability {
                    name: format!("{cap:?}"),
                });
            }
        }
    }
    let added = add.iter().filter_map(|c| match c {
        CapName::One(c) => Some(*c),
        CapName::All => None,
    });
    let set = if add.contains(&CapName::All) {
        all()
            .filter(|c| !drop.contains(&CapName::One(*c)))
            .collect()
    } else if drop.contains(&CapName::All) {
        added.collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.contains(&CapName::One(*c)))
            .chain(added)
            .collect()
    };
    Ok(set)
}

/// Checks every `--cap-add`/`--cap-drop` value names a capability (or `ALL`), so
/// `berth create` can refuse a typo before anything is stored.
///
/// # Errors
/// [`SpecError::UnknownCapability`] naming the first bad value.
pub fn validate_caps(cap_add: &[String], cap_drop: &[String]) -> Result<(), SpecError> {
    cap_add
        .iter()
        .chain(cap_drop)
        .try_for_each(|n| parse_cap(n).map(|_| ()))
}
