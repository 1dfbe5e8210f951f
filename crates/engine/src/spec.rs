//! OCI runtime spec (config.json) generation: what `docker run` gives a container, from
//! moby's defaults (`oci/defaults.go`, `oci/caps`, `daemon/oci_linux.go`), written here in
//! our own code.
//!
//! [`build_spec`] is a pure function of its [`SpecInput`] plus two facts read from the host
//! at build time: the `RLIMIT_NOFILE` hard limit and `/proc/sys/kernel/cap_last_cap`.
//! Save the result with oci-spec's `Spec::save(bundle/config.json)`.
//!
//! Known gaps, on purpose for now:
//! - seccomp: Docker's default profile ([`seccomp`]), a user profile or none; no AppArmor
//!   or SELinux labels;
//! - no user namespace, no cgroup namespace (Docker's default on cgroup v1 hosts is the
//!   host cgroup namespace, which is what this gives), no resource limits beyond devices;
//! - `--uts=host`, `--pid=host`, `--ipc=host` are not modelled: uts, pid and ipc are always
//!   new namespaces. With [`NetNsSpec::Host`] the caller passes the host's hostname, as
//!   Docker does for `--net=host`.

mod caps;
mod mounts;
#[cfg(test)]
mod runc_test;
pub mod seccomp;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, PosixRlimitBuilder, PosixRlimitType, Process,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use oci_spec::OciSpecError;

pub use caps::{
    capability_mask, capability_number, capability_set, host_allowed_caps, host_last_cap,
    mask_up_to, validate_caps, ALL_CAPABILITIES, DEFAULT_CAPABILITIES,
};
pub use mounts::{
    default_mounts, device_rules, ALLOWED_CHAR_DEVICES, MASKED_PATHS, READONLY_PATHS,
};

use crate::user::ExecUser;

/// `PATH` when neither the image nor `-e` set one (moby `container.DefaultPathEnv` on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Upper bound of `RLIMIT_NOFILE` (open files), what dockerd (run with
/// `LimitNOFILE=infinity`) ends up giving containers: 2^20.
pub const MAX_NOFILE: u64 = 1_048_576;

/// OCI runtime-spec version written into `ociVersion`.
pub const OCI_VERSION: &str = "1.0.2";

/// The network namespace of the container: berth-net's sandbox spec (`Host` omits the
/// `network` entry from `linux.namespaces`; `Path` joins the pinned namespace).
pub use berth_net::NetNsSpec;

/// Host files bind-mounted (read-write, `rbind,rprivate`) over the container's `/etc` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// Source of `/etc/hosts`.
    pub hosts: PathBuf,
    /// Source of `/etc/hostname`.
    pub hostname: PathBuf,
    /// Source of `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
}

/// Everything [`build_spec`] needs, already resolved (image config merged with flags).
#[derive(Debug, Clone)]
pub struct SpecInput {
    /// Absolute path of the container's root filesystem on the host (`root.path`).
    pub rootfs: PathBuf,
    /// Command and arguments (entrypoint + cmd); must not be empty.
    pub args: Vec<String>,
    /// `KEY=value` entries, image env then `-e`, later ones winning; defaults are added.
    pub env: Vec<String>,
    /// Absolute working directory inside the container; empty means `/`.
    pub cwd: String,
    /// The resolved `-u` user.
    pub user: ExecUser,
    /// Hostname of the uts namespace, also `HOSTNAME` in the env; `None` keeps the runtime's.
    pub hostname: Option<String>,
    /// Allocate a pty (`-t`); also sets `TERM=xterm` unless given.
    pub terminal: bool,
    /// `--cap-add` values (`NET_ADMIN`, `CAP_NET_ADMIN`, `all`; case-insensitive).
    pub cap_add: Vec<String>,
    /// `--cap-drop` values, same forms as `cap_add`.
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, every device, no masked or read-only paths,
    /// writable /sys and cgroup mounts.
    pub privileged: bool,
    /// Network namespace to use.
    pub netns: NetNsSpec,
    /// `linux.cgroupsPath` (e.g. `/berth/<id>`, or `slice:prefix:name` for systemd); empty
    /// leaves it to the runtime.
    pub cgroups_path: String,
    /// Sources of `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub etc_files: EtcFiles,
    /// The seccomp filter asked for (none at all when `privileged`, as Docker).
    pub seccomp: crate::config::SeccompOption,
    /// `process.noNewPrivileges` (`--security-opt no-new-privileges`).
    pub no_new_privileges: bool,
}

/// Errors of [`build_spec`].
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A `--cap-add`/`--cap-drop` value is not a Linux capability.
    #[error("unknown capability {name:?}: use a name like NET_ADMIN or CAP_NET_ADMIN, or ALL")]
    UnknownCapability {
        /// The value as given.
        name: String,
    },
    /// A `--cap-add` capability this host cannot grant (not in berth's bounding set).
    #[error("capability {name} cannot be granted here: it is not in this host's bounding set (CapBnd in /proc/self/status); drop --cap-add {name}")]
    UnavailableCapability {
        /// The capability.
        name: String,
    },
    /// No command to run.
    #[error("no command to run: give one after the image or set Cmd/Entrypoint in the image")]
    NoCommand,
    /// The working directory is not absolute.
    #[error("working directory {cwd:?} is not absolute: use a path starting with /")]
    RelativeCwd {
        /// The working directory as given.
        cwd: String,
    },
    /// The host's `RLIMIT_NOFILE` could not be read.
    #[error("cannot read the host RLIMIT_NOFILE: {source}")]
    Rlimit {
        /// The getrlimit error.
        #[source]
        source: std::io::Error,
    },
    /// A stored `seccomp=PATH` profile no longer parses (it was validated at create).
    #[error("seccomp profile {path}: {source}")]
    Seccomp {
        /// The path given at create.
        path: String,
        /// What is wrong.
        #[source]
        source: seccomp::SeccompError,
    },
    /// oci-spec refused to build a part of the spec (a bug in this module).
    #[error("cannot build the OCI spec {what}: {source}; this is a berth bug, please report it")]
    Build {
        /// The part being built.
        what: &'static str,
        /// oci-spec's error.
        #[source]
        source: OciSpecError,
    },
}

/// Wraps an oci-spec builder error with the part being built.
fn built<T>(what: &'static str, r: Result<T, OciSpecError>) -> Result<T, SpecError> {
    r.map_err(|source| SpecError::Build { what, source })
}

/// Builds the OCI runtime spec Docker would produce for `input`.
///
/// Namespaces: mount, network (per [`NetNsSpec`]), uts, pid, ipc. Mounts:
/// [`default_mounts`]. Capabilities: [`capability_set`] in bounding, effective and permitted;
/// inheritable and ambient are left empty (moby >= 23 after CVE-2022-24769), so a non-root
/// user ends up with no effective capabilities after execve. Rlimits: `RLIMIT_NOFILE`
/// soft = hard = min(2^20, host hard limit). Device cgroup: [`device_rules`].
///
/// # Errors
/// [`SpecError::NoCommand`], [`SpecError::RelativeCwd`], [`SpecError::UnknownCapability`],
/// [`SpecError::Rlimit`] (getrlimit failed) and [`SpecError::Build`].
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    let nofile = nofile_limit(host_nofile_hard()?);
    let process = build_process(input, nofile, host_allowed_caps())?;
    let mut linux = build_linux(input)?;
    linux.set_seccomp(seccomp_section(input, &process)?);
    let mut mounts = default_mounts(&input.etc_files);
    if input.privileged {
        // moby WithMounts: privileged containers get writable sysfs and cgroup mounts.
        for m in mounts.iter_mut() {
            if matches!(m.typ().as_deref(), Some("sysfs" | "cgroup")) {
                let opts = m.options().clone().unwrap_or_default();
                m.set_options(Some(opts.into_iter().filter(|o| o != "ro").collect()));
            }
        }
    }
    let root = built(
        "root",
        RootBuilder::default()
            .path(input.rootfs.clone())
            .readonly(false)
            .build(),
    )?;
    let mut spec = built(
        "document",
        SpecBuilder::default()
            .version(OCI_VERSION)
            .root(root)
            .mounts(mounts)
            .process(process)
            .linux(linux)
            .build(),
    )?;
    // Unset fields would otherwise carry oci-spec's defaults (hostname "youki").
    spec.set_hostname(input.hostname.clone());
    spec.set_annotations(None);
    Ok(spec)
}

/// `RLIMIT_NOFILE` for the container: [`MAX_NOFILE`], lowered to the host's hard limit
/// (berth has no CAP_SYS_RESOURCE guarantee, and runc's setrlimit fails above it).
pub fn nofile_limit(host_hard: u64) -> u64 {
    host_hard.min(MAX_NOFILE)
}

/// The calling process's `RLIMIT_NOFILE` hard limit (`u64::MAX` for unlimited).
///
/// # Errors
/// [`SpecError::Rlimit`] with the errno of getrlimit(2).
pub fn host_nofile_hard() -> Result<u64, SpecError> {
    berth_sys::fd::nofile_hard_limit().map_err(|source| SpecError::Rlimit { source })
}

/// The `process` section: args, env, cwd, user, capabilities, rlimits, terminal.
fn build_process(input: &SpecInput, nofile: u64, allowed_caps: u64) -> Result<Process, SpecError> {
    if input.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        &input.cwd
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeCwd {
            cwd: input.cwd.clone(),
        });
    }
    let set = capability_set(
        &input.cap_add,
        &input.cap_drop,
        input.privileged,
        allowed_caps,
    )?;
    let mut caps = built(
        "capabilities",
        LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .build(),
    )?;
    // oci-spec's builders start from its own defaults (inheritable and ambient hold
    // AUDIT_WRITE, KILL, NET_BIND_SERVICE): clear them explicitly.
    caps.set_inheritable(None);
    caps.set_ambient(None);
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build();
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(nofile)
        .hard(nofile)
        .build();
    let process = ProcessBuilder::default()
        .terminal(input.terminal)
        .user(built("process user", user)?)
        .args(input.args.clone())
        .env(container_env(input))
        .cwd(cwd)
        .capabilities(caps)
        .rlimits(vec![built("rlimit", rlimit)?])
        .no_new_privileges(input.no_new_privileges)
        .build();
    built("process", process)
}

/// The `linux.seccomp` section: none when privileged or unconfined, else the chosen profile
/// for this host's architecture and kernel and the process's bounding capabilities.
fn seccomp_section(
    input: &SpecInput,
    process: &Process,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    use crate::config::SeccompOption;
    let profile = match &input.seccomp {
        _ if input.privileged => return Ok(None),
        SeccompOption::Unconfined => return Ok(None),
        SeccompOption::Default => seccomp::default_profile(),
        SeccompOption::Profile { path, json } => {
            seccomp::parse_profile(json).map_err(|source| SpecError::Seccomp {
                path: path.clone(),
                source,
            })?
        }
    };
    let caps = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
        .collect();
    Ok(Some(seccomp::build(&profile, &seccomp::Target::host(caps))))
}

/// The container environment, Docker's way (moby `container.CreateDaemonEnvironment` then
/// runc's HOME default): `PATH` (default [`DEFAULT_PATH`]), `HOSTNAME` when a hostname is set,
/// `TERM=xterm` with a terminal, then `input.env` replacing by key in place or appending,
/// then `HOME` from the user's passwd entry if still missing.
pub fn container_env(input: &SpecInput) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(h) = &input.hostname {
        env.push(format!("HOSTNAME={h}"));
    }
    if input.terminal {
        env.push("TERM=xterm".to_owned());
    }
    for entry in &input.env {
        let key = env_key(entry);
        match env.iter_mut().find(|e| env_key(e) == key) {
            Some(slot) => slot.clone_from(entry),
            None => env.push(entry.clone()),
        }
    }
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", input.user.home));
    }
    env
}

/// The key of a `KEY=value` entry (the whole entry when there is no `=`).
fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The namespaces: mount, network (absent for [`NetNsSpec::Host`], joined by path
/// otherwise), uts, pid, ipc, in moby's order.
pub fn namespaces(netns: &NetNsSpec) -> Result<Vec<LinuxNamespace>, SpecError> {
    let ns = |typ| {
        built(
            "namespace",
            LinuxNamespaceBuilder::default().typ(typ).build(),
        )
    };
    let mut out = vec![ns(LinuxNamespaceType::Mount)?];
    if let NetNsSpec::Path(path) = netns {
        out.push(built(
            "network namespace",
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build(),
        )?);
    }
    for typ in [
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
    ] {
        out.push(ns(typ)?);
    }
    Ok(out)
}

/// The `linux` section: namespaces, cgroups path, device rules, masked/read-only paths.
fn build_linux(input: &SpecInput) -> Result<oci_spec::runtime::Linux, SpecError> {
    let resources = built(
        "resources",
        LinuxResourcesBuilder::default()
            .devices(device_rules(input.privileged)?)
            .build(),
    )?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(&input.netns)?)
        .resources(resources);
    if !input.cgroups_path.is_empty() {
        linux = linux.cgroups_path(PathBuf::from(&input.cgroups_path));
    }
    let mut linux = built("linux", linux.build())?;
    // Set both explicitly: the builder would otherwise fill in oci-spec's own lists.
    let owned = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    let (masked, readonly) = if input.privileged {
        (None, None)
    } else {
        (Some(owned(&MASKED_PATHS)), Some(owned(&READONLY_PATHS)))
    };
    linux.set_masked_paths(masked);
    linux.set_readonly_paths(readonly);
    Ok(linux)
}
