//! The OCI bundle of one container run (OCI runtime spec, "Filesystem Bundle"): the rootfs
//! mounted, the network sandbox made, the etc files written and `config.json` generated from
//! the image config and the user's options (Docker's merge rules for Entrypoint/Cmd/Env).

use std::path::{Path, PathBuf};

use berth_net::NetworkMode;
use berth_net::Sandbox;

use crate::etc_files::{self, EtcPaths};
use crate::rootfs::{self, LookupError};
use crate::spec::{self, EtcFiles, NetNsSpec, SpecInput};
use crate::state::{Container, Status};
use crate::{user, Engine, EngineError};

/// Default PATH when the image sets none (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the bundle set up that teardown must know about.
#[derive(Debug)]
pub struct Bundle {
    /// The sandbox bind mount berth made, or empty (host mode, `container:` mode).
    pub sandbox_key: String,
    /// Published host ports, held by the monitor for the container's life.
    pub reservation: Option<berth_net::ports::Reservation>,
}

/// The process a container runs, after Docker's merge of image config and options.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// argv.
    pub args: Vec<String>,
    /// Environment, image's first, overridden by name.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
}

/// Docker's rules: `--entrypoint` replaces the image's Entrypoint and drops its Cmd; a command
/// given after the image replaces Cmd; env entries override the image's by name.
pub fn merge_process(
    image: &oci_spec::image::Config,
    c: &crate::ContainerConfig,
) -> Result<Process, EngineError> {
    let (entry, default_cmd) = match &c.entrypoint {
        Some(e) => (e.clone(), Vec::new()),
        None => (
            image.entrypoint().clone().unwrap_or_default(),
            image.cmd().clone().unwrap_or_default(),
        ),
    };
    let cmd = if c.cmd.is_empty() {
        default_cmd
    } else {
        c.cmd.clone()
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(crate::start::StartError::NoCommand.into());
    }
    let mut env: Vec<String> = image.env().clone().unwrap_or_default();
    for e in &c.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let cwd = c
        .working_dir
        .clone()
        .or_else(|| image.working_dir().clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    Ok(Process { args, env, cwd })
}

/// The PATH value of an environment list.
pub fn path_of(env: &[String]) -> &str {
    env.iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// Mounts the rootfs, makes the sandbox and etc files, writes `config.json`.
pub fn write_bundle(engine: &mut Engine, c: &Container) -> Result<Bundle, EngineError> {
    let dir = engine.paths.container_dir(&c.id);
    let rootfs_dir = engine.paths.rootfs(&c.id);
    let digest = berth_image::Digest::parse(&c.image_id).map_err(berth_image::ImageError::from)?;
    let layers = engine.images.layer_dirs(&engine.store, &digest)?;
    rootfs::mount_overlay(&layers, &dir, &rootfs_dir)?;
    berth_sys::failpoint::hit("run::after-rootfs");
    let image = engine.images.config(&engine.store, &digest)?;
    let image_cfg = image.config().clone().unwrap_or_default();
    let process = merge_process(&image_cfg, &c.config)?;
    check_command(&rootfs_dir, &process)?;
    let user = user::resolve_user(
        &rootfs_dir,
        c.config
            .user
            .as_deref()
            .or(image_cfg.user().as_deref().filter(|u| !u.is_empty())),
    )?;
    crate::init_layer::ensure_workdir(&rootfs_dir, &process.cwd, user.uid, user.gid)?;
    let (netns, etc, hostname, sandbox_key, reservation) = network_setup(engine, c, &dir)?;
    // Endpoints exist by now (network_setup attached them); DNS networks keep their server.
    let endpoints = engine.container_endpoints(&c.id);
    let embedded_dns = endpoints.iter().any(|(n, _)| n.dns);
    let host_gateway = match &netns {
        NetNsSpec::Host => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        NetNsSpec::Path(_) => endpoints.first().and_then(|(n, _)| {
            n.subnets
                .iter()
                .find(|s| s.gateway.is_ipv4())
                .map(|s| s.gateway)
        }),
    };
    etc_files::apply_overrides(&etc, &c.config.net, embedded_dns, host_gateway)?;
    let input = SpecInput {
        rootfs: rootfs_dir,
        args: process.args,
        env: process.env,
        cwd: process.cwd,
        user,
        hostname: Some(hostname),
        terminal: c.config.tty,
        cap_add: c.config.cap_add.clone(),
        cap_drop: c.config.cap_drop.clone(),
        privileged: c.config.privileged,
        netns,
        cgroups_path: format!("/berth/{}", c.id),
        etc_files: EtcFiles {
            hosts: etc.hosts,
            hostname: etc.hostname,
            resolv_conf: etc.resolv_conf,
        },
        seccomp: c.config.security.seccomp.clone(),
        no_new_privileges: c.config.security.no_new_privileges,
    };
    let spec = spec::build_spec(&input)?;
    // Last step before the runtime reads the rootfs: every mount target real, no symlink out.
    crate::init_layer::prepare(&input.rootfs, &crate::init_layer::targets(&spec))?;
    let path = dir.join("config.json");
    let json = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(&path, json).map_err(|e| EngineError::io(&path, e))?;
    Ok(Bundle {
        sandbox_key,
        reservation,
    })
}

fn check_command(rootfs_dir: &Path, p: &Process) -> Result<(), EngineError> {
    let cmd = &p.args[0];
    match rootfs::lookup_command(rootfs_dir, path_of(&p.env), cmd) {
        Ok(_) => Ok(()),
        Err(LookupError::NotFound) => Err(EngineError::CommandNotFound(format!(
            "exec: \"{cmd}\": executable file not found in $PATH: check the command and the image"
        ))),
        Err(LookupError::NotExecutable) => Err(EngineError::CannotInvoke(format!(
            "exec: \"{cmd}\": permission denied: the file is not an executable regular file"
        ))),
    }
}

type NetSetup = (
    NetNsSpec,
    EtcPaths,
    String,
    String,
    Option<berth_net::ports::Reservation>,
);

/// The sandbox by network mode (shared/DESIGN.md "Sandbox"): `none` gets a new netns with only
/// `lo` up, bind-mounted at `<runroot>/netns/<id>`; `host` gets none; `container:X` reuses X's.
fn network_setup(engine: &mut Engine, c: &Container, dir: &Path) -> Result<NetSetup, EngineError> {
    let own_hostname = c
        .config
        .hostname
        .clone()
        .unwrap_or_else(|| c.id[..12].to_string());
    let mode = &c.config.network;
    // The sandbox itself (a pinned netns for none and networks) is berth-net's `Sandbox`.
    let own_sandbox = |engine: &Engine| -> Result<PathBuf, EngineError> {
        let sb = Sandbox::create(&engine.paths.runroot, &c.id, mode, None)
            .map_err(berth_net::NetError::from)?;
        match &sb.spec().netns {
            NetNsSpec::Path(p) => Ok(p.clone()),
            NetNsSpec::Host => Err(EngineError::Internal("a sandbox without a namespace")),
        }
    };
    match mode {
        NetworkMode::None => {
            let key = own_sandbox(engine)?;
            let etc = etc_files::write_isolated(dir, &own_hostname)?;
            let key_s = key.display().to_string();
            Ok((NetNsSpec::Path(key), etc, own_hostname, key_s, None))
        }
        NetworkMode::Host => {
            let hostname = c
                .config
                .hostname
                .clone()
                .unwrap_or_else(etc_files::host_hostname);
            let etc = etc_files::write_host(dir, &hostname)?;
            Ok((NetNsSpec::Host, etc, hostname, String::new(), None))
        }
        NetworkMode::Container(target) => {
            let t = engine.container(target)?;
            if t.state.status != Status::Running {
                return Err(crate::start::StartError::TargetNotRunning {
                    target: t.name.to_string(),
                }
                .into());
            }
            let netns = if t.state.sandbox_key.is_empty() {
                NetNsSpec::Host
            } else {
                NetNsSpec::Path(t.state.sandbox_key.clone().into())
            };
            let etc = EtcPaths::in_dir(&engine.paths.container_dir(&t.id));
            let hostname = std::fs::read_to_string(&etc.hostname)
                .map(|h| h.trim().to_string())
                .unwrap_or(own_hostname);
            Ok((netns, etc, hostname, String::new(), None))
        }
        NetworkMode::Network(_) => {
            let key = own_sandbox(engine)?;
            let att = engine.attach_networks(c, &key)?;
            let etc = etc_files::write_networked(dir, &own_hostname, &att.network, &att.endpoint)?;
            let key_s = key.display().to_string();
            Ok((
                NetNsSpec::Path(key),
                etc,
                own_hostname,
                key_s,
                Some(att.reservation),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerConfig;

    fn cfg() -> ContainerConfig {
        serde_json::from_value(serde_json::json!({
            "image": "web", "entrypoint": null, "cmd": [], "env": [], "working_dir": null,
            "user": null, "hostname": null, "tty": false, "open_stdin": false, "expose": [],
            "cap_add": [], "cap_drop": [], "privileged": false, "restart": {"Name": "no"},
            "network": "none", "auto_remove": false, "skip_port_check": false
        }))
        .unwrap()
    }

    fn image(entry: Option<&[&str]>, cmd: Option<&[&str]>) -> oci_spec::image::Config {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut b = oci_spec::image::ConfigBuilder::default();
        if let Some(e) = entry {
            b = b.entrypoint(v(e));
        }
        if let Some(c) = cmd {
            b = b.cmd(v(c));
        }
        b.env(vec!["PATH=/bin".to_string(), "A=1".to_string()])
            .build()
            .unwrap()
    }

    #[test]
    fn docker_merge_rules() {
        let img = image(Some(&["/entry"]), Some(&["arg"]));
        let mut c = cfg();
        assert_eq!(merge_process(&img, &c).unwrap().args, ["/entry", "arg"]);
        c.cmd = vec!["other".into()];
        assert_eq!(merge_process(&img, &c).unwrap().args, ["/entry", "other"]);
        c.cmd.clear();
        c.entrypoint = Some(vec!["/x".into()]);
        assert_eq!(merge_process(&img, &c).unwrap().args, ["/x"]);
        c.entrypoint = Some(vec![]);
        assert!(merge_process(&img, &c).is_err());
        c.entrypoint = None;
        c.env = vec!["A=2".into(), "B=3".into()];
        let p = merge_process(&img, &c).unwrap();
        assert_eq!(p.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd, "/");
        assert_eq!(path_of(&p.env), "/bin");
    }
}
