//! `run`, `create`, `start`: Docker's flags, then the engine's create/start, then (without
//! `-d`) the attach stream: container output to our stdout/stderr, our stdin to the container,
//! raw terminal mode and window size with `-t`, and the container's exit code handed back.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clap::Args;

use berth_engine::attach::{read_frame, FrameKind};
use berth_engine::config::{
    parse_add_hosts, parse_env, parse_env_file, parse_security_opts, NetOptions,
};
use berth_engine::create::CreateRequest;
use berth_engine::{ContainerConfig, Engine, RestartPolicy};

use crate::CmdResult;

/// Flags of `run` and `create` (Docker's names; `-h` is `--hostname` as in Docker, so help
/// is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Container name.
    #[arg(long)]
    name: Option<String>,
    /// Network: bridge (the default network), a user-defined network, none, host or container:NAME.
    #[arg(long = "network", visible_alias = "net", default_value = "bridge")]
    network: String,
    /// Set environment variables (NAME=VALUE, or NAME to copy ours).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Override the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container hostname.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Declare a port or range (PORT[/PROTO]).
    #[arg(long)]
    expose: Vec<String>,
    /// Publish a port (bridge networks; refused with --net host).
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish every exposed port (bridge networks).
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges (also turns seccomp off, as Docker).
    #[arg(long)]
    privileged: bool,
    /// Security options: seccomp=unconfined, seccomp=PATH (Docker-format JSON profile),
    /// no-new-privileges[=true|false].
    #[arg(long)]
    security_opt: Vec<String>,
    /// Username or UID[:GID].
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, default_value = "no")]
    restart: String,
    /// Start a host-mode container even if its ports are in use.
    #[arg(long)]
    skip_port_check: bool,
    /// IPv4 address on the (first) network.
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// IPv6 address on the (first) network.
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// MAC address of the (first) network interface.
    #[arg(long)]
    mac_address: Option<String>,
    /// Extra DNS name on the network (user-defined networks).
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    network_alias: Vec<String>,
    /// DNS server for the container's resolv.conf.
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// DNS search domain.
    #[arg(long)]
    dns_search: Vec<String>,
    /// DNS resolver option (resolv.conf `options`).
    #[arg(long = "dns-option", visible_alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a line to /etc/hosts (NAME:IP).
    #[arg(long)]
    add_host: Vec<String>,
    /// Pull the image: always, missing (default: only if it is not present), never.
    #[arg(long, value_enum, default_value = "missing")]
    pull: crate::cmd::pull::PullPolicy,
    #[command(flatten)]
    registry: crate::cmd::pull::RegistryFlags,
    /// Image name or id.
    image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Flags of `start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach stdout/stderr and hand back the exit code.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach stdin.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Start every container whose restart policy asks for it after a reboot (always;
    /// unless-stopped unless stopped by the user; on-failure after a failure), as Docker's
    /// daemon does when it comes up. For boot: docs/berth-restart.service.
    #[arg(long, conflicts_with_all = ["containers", "attach", "interactive"])]
    restart_policy: bool,
    /// Containers.
    #[arg(required_unless_present = "restart_policy")]
    containers: Vec<String>,
}

fn request(a: &RunArgs) -> anyhow::Result<CreateRequest> {
    let mut env_items = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read --env-file {}: {e}", f.display()))?;
        env_items.extend(parse_env_file(&text));
    }
    env_items.extend(a.env.iter().cloned());
    let env = parse_env(&env_items, |k| std::env::var(k).ok())?;
    let restart: RestartPolicy = a.restart.parse()?;
    if a.rm && restart != RestartPolicy::No {
        anyhow::bail!("conflicting options: --restart and --rm: a container removed on exit cannot be restarted");
    }
    let entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        }
    });
    let add_hosts = parse_add_hosts(&a.add_host)?;
    let security =
        parse_security_opts(&a.security_opt, berth_engine::config::read_seccomp_profile)?;
    let publish = a
        .publish
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CreateRequest {
        name: a.name.clone(),
        config: ContainerConfig {
            image: a.image.clone(),
            entrypoint,
            cmd: a.command.clone(),
            env,
            working_dir: a.workdir.clone(),
            user: a.user.clone(),
            hostname: a.hostname.clone(),
            tty: a.tty,
            open_stdin: a.interactive,
            expose: a.expose.clone(),
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            privileged: a.privileged,
            restart,
            network: a.network.parse()?,
            auto_remove: a.rm,
            skip_port_check: a.skip_port_check,
            net: NetOptions {
                publish,
                publish_all: a.publish_all,
                ip: a.ip,
                ip6: a.ip6,
                mac_address: a.mac_address.as_deref().map(str::parse).transpose()?,
                aliases: a.network_alias.clone(),
                dns: a.dns.clone(),
                dns_search: a.dns_search.clone(),
                dns_options: a.dns_option.clone(),
                add_hosts: add_hosts.0,
                host_gateway_names: add_hosts.1,
                ..NetOptions::default()
            },
            security,
        },
    })
}

pub fn create(mut engine: Engine, a: RunArgs) -> CmdResult {
    let req = request(&a)?;
    crate::cmd::pull::ensure_image(&mut engine, &a.image, a.pull, &a.registry)?;
    let c = engine.create(req)?;
    println!("{}", c.id);
    Ok(0)
}

pub fn run(mut engine: Engine, a: RunArgs) -> CmdResult {
    let req = request(&a)?;
    crate::cmd::pull::ensure_image(&mut engine, &a.image, a.pull, &a.registry)?;
    let c = engine.create(req)?;
    if a.detach {
        match engine.start(&c.id, false) {
            Ok(_) => {
                println!("{}", c.id);
                Ok(0)
            }
            Err(e) => {
                if a.rm || refused_before_start(&e) {
                    let _ = engine.remove(&c.id, true);
                }
                Err(e.into())
            }
        }
    } else {
        let started = match engine.start(&c.id, true) {
            Ok(s) => s,
            Err(e) => {
                if a.rm || refused_before_start(&e) {
                    let _ = engine.remove(&c.id, true);
                }
                return Err(e.into());
            }
        };
        let code = match started.attach {
            Some((sock, stdin)) => stream(sock, stdin, a.tty)?,
            None => 0,
        };
        if let Some(mut m) = started.monitor {
            if a.rm {
                // `run --rm` returns once the container is gone, as Docker's does.
                let _ = m.wait();
            }
        }
        Ok(code)
    }
}

/// A `run` refused by a pre-start check (a host port in use) leaves no container behind,
/// as if `create` had refused it; other start failures keep it, as Docker does.
fn refused_before_start(e: &berth_engine::EngineError) -> bool {
    matches!(e, berth_engine::EngineError::PortConflict(_))
}

pub fn start(mut engine: Engine, a: StartArgs) -> CmdResult {
    if a.restart_policy {
        return start_by_policy(engine);
    }
    if a.attach || a.interactive {
        if a.containers.len() != 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let s = engine.start(&a.containers[0], true)?;
        let tty = s.container.config.tty;
        return match s.attach {
            Some((sock, stdin)) => stream(sock, if a.interactive { stdin } else { None }, tty),
            None => Ok(0),
        };
    }
    crate::cmd::for_each(&a.containers, |k| {
        engine.start(k, false)?;
        Ok(k.to_string())
    })
}

/// `start --restart-policy`: prints each container started, reports each failure; exit 1 if
/// any failed.
fn start_by_policy(mut engine: Engine) -> CmdResult {
    let mut code = 0;
    for (name, r) in engine.start_by_policy()? {
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("berth: cannot start {name}: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Copies the attach stream until the exit frame; returns the exit code.
fn stream(mut sock: UnixStream, stdin: Option<OwnedFd>, tty: bool) -> CmdResult {
    let raw = if tty { RawMode::enter() } else { None };
    if let Some(fd) = stdin {
        if tty {
            spawn_winsize_sync(fd.try_clone()?);
        }
        std::thread::spawn(move || {
            let mut dst = std::fs::File::from(fd);
            let mut src = std::io::stdin().lock();
            let mut buf = [0u8; 8192];
            while let Ok(n) = src.read(&mut buf) {
                if n == 0 || dst.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            // Dropping `dst` closes our copy: the container sees EOF (pipe stdin).
        });
    }
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut code = 0;
    while let Some((kind, data)) = read_frame(&mut sock)? {
        match kind {
            FrameKind::Stdout => {
                out.write_all(&data)?;
                out.flush()?;
            }
            FrameKind::Stderr => {
                err.write_all(&data)?;
                err.flush()?;
            }
            FrameKind::Exit => {
                code = String::from_utf8_lossy(&data).trim().parse().unwrap_or(125);
                break;
            }
            FrameKind::Hello => {}
        }
    }
    drop(raw);
    Ok(code)
}

/// Our terminal in raw mode for the life of the value (restored on drop).
struct RawMode(rustix::termios::Termios);

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

/// Keeps the container's terminal size equal to ours (polled: cheap, and needs no signal
/// handler in a process that also blocks on the attach socket).
fn spawn_winsize_sync(master: OwnedFd) {
    std::thread::spawn(move || {
        let mut last = None;
        loop {
            if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
                let key = (ws.ws_row, ws.ws_col);
                if last != Some(key) {
                    let _ = rustix::termios::tcsetwinsize(&master, ws);
                    last = Some(key);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
}
