//! The container's seccomp filter (`linux.seccomp` of the OCI runtime spec): Docker's
//! default profile, or a Docker-format JSON profile given with `--security-opt seccomp=PATH`,
//! turned into the OCI section for this host's architecture and the container's
//! capabilities.
//!
//! The default profile's data, `seccomp_default.json`, is transcribed from moby's
//! `profiles/seccomp/default.json` (github.com/moby/moby, commit
//! 00f3d189e420d485e42d15fe494f96d272284e0e): which syscalls are allowed, under which
//! capabilities, architectures and minimum kernel; default action `SCMP_ACT_ERRNO` with
//! `EPERM`. The rules for turning a profile into the OCI section (an `archMap` entry picks
//! the native architecture and its sub-architectures; a rule applies only when every
//! `includes` condition holds and no `excludes` condition does; capabilities are checked
//! against the bounding set) are Docker's documented semantics (docs.docker.com
//! "Seccomp security profiles for Docker"), written here in our own code.

use std::collections::HashSet;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;

/// The default profile, Docker-format JSON (see the module doc for its source).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("seccomp_default.json");

/// Errors of reading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The JSON is not a Docker seccomp profile.
    #[error("invalid seccomp profile: {0}; give a JSON profile in Docker's format (defaultAction, syscalls: [{{names, action}}])")]
    Parse(#[from] serde_json::Error),
    /// A rule names both `name` and `names`, or neither.
    #[error("invalid seccomp profile: a rule must have either `name` or `names` (rule {0})")]
    RuleNames(usize),
    /// Both `architectures` and `archMap`.
    #[error("invalid seccomp profile: use either `architectures` or `archMap`, not both")]
    BothArchLists,
    /// An argument condition names an argument a syscall does not have.
    #[error("invalid seccomp profile: rule {rule} compares argument {index}; syscalls have arguments 0 to 5")]
    ArgIndex {
        /// The rule's position in `syscalls`.
        rule: usize,
        /// The index given.
        index: usize,
    },
    /// `SCMP_ACT_NOTIFY`, which needs a seccomp agent berth does not run.
    #[error("invalid seccomp profile: SCMP_ACT_NOTIFY ({0}) needs a seccomp notify agent, which berth does not run; use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_TRACE")]
    Notify(String),
    /// `minKernel` is not `MAJOR.MINOR`.
    #[error("invalid seccomp profile: minKernel {0:?} is not MAJOR.MINOR (e.g. 4.8)")]
    MinKernel(String),
}

/// A seccomp profile in Docker's JSON format (moby `api/types` `seccomp.Seccomp`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Action for syscalls no rule matches.
    pub default_action: LinuxSeccompAction,
    /// errno for `SCMP_ACT_ERRNO` as default action (EPERM when absent).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// Explicit architectures (exclusive with `arch_map`).
    #[serde(default)]
    pub architectures: Option<Vec<Arch>>,
    /// Native architecture to the architectures it also runs (x86_64: x86, x32).
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    /// Rules, in order.
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The native architecture.
    pub architecture: Arch,
    /// Architectures a process on it can also use.
    #[serde(default)]
    pub sub_architectures: Option<Vec<Arch>>,
}

/// One rule of a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// A single syscall (older profiles).
    #[serde(default)]
    pub name: Option<String>,
    /// The syscalls.
    #[serde(default)]
    pub names: Vec<String>,
    /// What happens on a match.
    pub action: LinuxSeccompAction,
    /// errno for `SCMP_ACT_ERRNO`.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Argument conditions (all must match).
    #[serde(default)]
    pub args: Option<Vec<LinuxSeccompArg>>,
    /// Conditions that must all hold for the rule to apply.
    #[serde(default)]
    pub includes: Filter,
    /// Conditions any of which drops the rule.
    #[serde(default)]
    pub excludes: Filter,
}

/// `includes`/`excludes` of a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capability names (`CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Vec<String>,
    /// Architectures, Go's names (`amd64`, `arm64`, `x86`, ...).
    #[serde(default)]
    pub arches: Vec<String>,
    /// Minimum kernel `MAJOR.MINOR`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What the filter is built for: the host and the container's bounding capabilities.
#[derive(Debug, Clone)]
pub struct Target {
    /// Go's name of the native architecture (`amd64` on x86_64).
    pub arch: &'static str,
    /// The kernel version (major, minor).
    pub kernel: (u32, u32),
    /// Bounding capabilities, `CAP_*` names.
    pub caps: HashSet<String>,
}

impl Target {
    /// This host, for a container with bounding capabilities `caps` (`CAP_*` names).
    pub fn host(caps: HashSet<String>) -> Self {
        Self {
            arch: go_arch(std::env::consts::ARCH),
            kernel: host_kernel(),
            caps,
        }
    }
}

/// Parses a Docker-format profile.
///
/// # Errors
/// [`SeccompError::Parse`] (also for an unknown action or operator), [`SeccompError::RuleNames`],
/// [`SeccompError::BothArchLists`], [`SeccompError::ArgIndex`], [`SeccompError::Notify`],
/// [`SeccompError::MinKernel`]: everything the runtime would refuse at start is refused here.
pub fn parse_profile(json: &str) -> Result<Profile, SeccompError> {
    let p: Profile = serde_json::from_str(json)?;
    if p.default_action == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::Notify("defaultAction".into()));
    }
    if p.architectures.as_ref().is_some_and(|a| !a.is_empty())
        && p.arch_map.as_ref().is_some_and(|a| !a.is_empty())
    {
        return Err(SeccompError::BothArchLists);
    }
    for (i, r) in p.syscalls.iter().enumerate() {
        // Both `name` and `names`, or neither.
        if r.name.is_some() != r.names.is_empty() {
            return Err(SeccompError::RuleNames(i));
        }
        check_rule(i, r)?;
        for k in [&r.includes.min_kernel, &r.excludes.min_kernel]
            .into_iter()
            .flatten()
        {
            parse_kernel(k).ok_or_else(|| SeccompError::MinKernel(k.clone()))?;
        }
    }
    Ok(p)
}

/// The checks of one rule the runtime would otherwise fail at start: `args` indexes 0 to 5
/// (seccomp_data.args has six, linux/seccomp.h) and no `SCMP_ACT_NOTIFY`.
fn check_rule(i: usize, r: &Rule) -> Result<(), SeccompError> {
    if r.action == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::Notify(format!("rule {i}")));
    }
    match r.args.iter().flatten().find(|a| a.index() > MAX_ARG_INDEX) {
        Some(a) => Err(SeccompError::ArgIndex {
            rule: i,
            index: a.index(),
        }),
        None => Ok(()),
    }
}

/// The last syscall argument a condition may compare (`seccomp_data.args[6]`).
const MAX_ARG_INDEX: usize = 5;

/// Docker's default profile, parsed.
pub fn default_profile() -> Profile {
    parse_profile(DEFAULT_PROFILE_JSON).expect("the bundled default seccomp profile parses")
}

/// The OCI `linux.seccomp` section of `profile` for `target`.
pub fn build(profile: &Profile, target: &Target) -> LinuxSeccomp {
    let mut out = LinuxSeccomp::default();
    out.set_default_action(profile.default_action);
    out.set_default_errno_ret(profile.default_errno_ret);
    out.set_architectures(Some(architectures(profile, target.arch)));
    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .iter()
        .filter(|r| applies(r, target))
        .map(|r| {
            let mut s = LinuxSyscall::default();
            s.set_names(r.name.clone().map_or_else(|| r.names.clone(), |n| vec![n]));
            s.set_action(r.action);
            s.set_errno_ret(r.errno_ret);
            s.set_args(r.args.clone());
            s
        })
        .collect();
    out.set_syscalls(Some(syscalls));
    out
}

/// The explicit list, or the native architecture's `archMap` entry with its
/// sub-architectures (none when the profile does not know this architecture).
fn architectures(profile: &Profile, arch: &str) -> Vec<Arch> {
    if let Some(a) = profile.architectures.as_ref().filter(|a| !a.is_empty()) {
        return a.clone();
    }
    let native = scmp_arch(arch);
    profile
        .arch_map
        .iter()
        .flatten()
        .filter(|m| Some(m.architecture) == native)
        .flat_map(|m| {
            std::iter::once(m.architecture).chain(m.sub_architectures.clone().unwrap_or_default())
        })
        .collect()
}

/// Whether a rule applies: every `includes` condition holds, no `excludes` condition does.
fn applies(r: &Rule, t: &Target) -> bool {
    let newer = |k: &Option<String>| {
        k.as_deref()
            .and_then(parse_kernel)
            .map(|min| t.kernel >= min)
    };
    let inc = &r.includes;
    let exc = &r.excludes;
    let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == t.arch))
        && inc.caps.iter().all(|c| t.caps.contains(c))
        && newer(&inc.min_kernel).unwrap_or(true);
    let excluded = exc.arches.iter().any(|a| a == t.arch)
        || exc.caps.iter().any(|c| t.caps.contains(c))
        || newer(&exc.min_kernel).unwrap_or(false);
    included && !excluded
}

/// `MAJOR.MINOR` of a kernel release string (`6.1.0-18-amd64` gives (6, 1)).
pub fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The running kernel's version (`/proc/sys/kernel/osrelease`, uname(2)'s release); (0, 0)
/// when unreadable, which drops `minKernel` rules (the safe side).
fn host_kernel() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| parse_kernel(r.trim()))
        .unwrap_or((0, 0))
}

/// Go's `GOARCH` name for a Rust target arch (the names profiles use in `arches`).
pub fn go_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "mips64" => "mips64",
        _ => "unknown",
    }
}

/// The libseccomp architecture of a Go arch name.
fn scmp_arch(go: &str) -> Option<Arch> {
    Some(match go {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "s390x" => Arch::ScmpArchS390x,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "riscv64" => Arch::ScmpArchRiscv64,
        "mips64" => Arch::ScmpArchMips64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .iter()
            .flatten()
            .flat_map(|c| c.names().clone())
            .collect()
    }

    fn amd64(caps: &[&str]) -> Target {
        Target {
            arch: "amd64",
            kernel: (6, 1),
            caps: caps.iter().map(|c| (*c).to_string()).collect(),
        }
    }

    #[test]
    fn default_profile_blocks_by_capability_and_arch() {
        let p = default_profile();
        let s = build(&p, &amd64(&["CAP_CHOWN", "CAP_SYS_CHROOT"]));
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().clone().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let n = names(&s);
        for allowed in ["read", "chroot", "arch_prctl", "ptrace", "clone", "socket"] {
            assert!(n.iter().any(|x| x == allowed), "{allowed} allowed");
        }
        for blocked in [
            "unshare",
            "mount",
            "keyctl",
            "kexec_load",
            "open_by_handle_at",
            "reboot",
            "s390_runtime_instr",
        ] {
            assert!(!n.iter().any(|x| x == blocked), "{blocked} blocked");
        }
        // With CAP_SYS_ADMIN the namespace calls come back and clone is unrestricted.
        let admin = names(&build(&p, &amd64(&["CAP_SYS_ADMIN"])));
        assert!(admin.iter().any(|x| x == "unshare"));
        let clone3: Vec<_> = build(&p, &amd64(&[]))
            .syscalls()
            .clone()
            .unwrap()
            .into_iter()
            .filter(|c| c.names() == &["clone3"])
            .collect();
        assert_eq!(
            clone3[0].errno_ret(),
            Some(38),
            "clone3 gets ENOSYS, not EPERM"
        );
    }

    #[test]
    fn old_kernels_lose_min_kernel_rules() {
        let p = default_profile();
        let mut t = amd64(&[]);
        t.kernel = (4, 4);
        assert!(!names(&build(&p, &t)).iter().any(|x| x == "ptrace"));
    }

    #[test]
    fn user_profiles_are_checked() {
        let ok = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO"}]}"#;
        let s = build(&parse_profile(ok).unwrap(), &amd64(&[]));
        assert_eq!(names(&s), ["mkdir"]);
        assert!(parse_profile("{}").is_err());
        assert!(parse_profile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).is_err());
        assert!(matches!(
            parse_profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#
            ),
            Err(SeccompError::RuleNames(0))
        ));
        let with_arg = |index: usize, op: &str| {
            parse_profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{{"index":{index},"value":8,"op":"{op}"}}]}}]}}"#
            ))
        };
        assert!(with_arg(5, "SCMP_CMP_EQ").is_ok());
        assert!(matches!(
            with_arg(6, "SCMP_CMP_EQ"),
            Err(SeccompError::ArgIndex { rule: 0, index: 6 })
        ));
        assert!(matches!(
            with_arg(0, "SCMP_CMP_SOMETIMES"),
            Err(SeccompError::Parse(_))
        ));
        let notify = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_NOTIFY"}]}"#;
        assert!(matches!(
            parse_profile(notify),
            Err(SeccompError::Notify(_))
        ));
        assert!(matches!(
            parse_profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#),
            Err(SeccompError::Notify(_))
        ));
        assert!(matches!(
            parse_profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"x","action":"SCMP_ACT_BOGUS"}]}"#
            ),
            Err(SeccompError::Parse(_))
        ));
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
    }
}
