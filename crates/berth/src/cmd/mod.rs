//! One module per command (or small family of commands).

mod dns;
mod exec;
mod image;
mod inspect;
mod lifecycle;
mod login;
mod logs;
mod monitor;
mod network;
mod port;
mod ps;
mod pull;
mod run;

use clap::Subcommand;

use berth_engine::Engine;

use crate::CmdResult;

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start a container.
    Run(run::RunArgs),
    /// Create a container without starting it.
    Create(run::RunArgs),
    /// Start stopped containers.
    Start(run::StartArgs),
    /// Stop running containers (SIGTERM, then SIGKILL).
    Stop(lifecycle::StopArgs),
    /// Restart containers.
    Restart(lifecycle::StopArgs),
    /// Send a signal to running containers.
    Kill(lifecycle::KillArgs),
    /// Remove containers.
    Rm(lifecycle::RmArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Print a container's logs.
    Logs(logs::LogsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Show containers as JSON.
    Inspect(inspect::InspectArgs),
    /// Show the ports a container listens on or publishes.
    Port(port::PortArgs),
    /// Load images from a docker-archive or OCI archive.
    Load(image::LoadArgs),
    /// Import a rootfs tarball as an image.
    Import(image::ImportArgs),
    /// List images.
    Images(image::ImagesArgs),
    /// Download an image from a registry.
    Pull(pull::PullArgs),
    /// Give an image another name (SOURCE TARGET).
    Tag(image::TagArgs),
    /// Write images to a docker-archive.
    Save(image::SaveArgs),
    /// Store credentials for a registry.
    Login(login::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(login::LogoutArgs),
    /// Remove images.
    Rmi(image::RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Internal: the embedded DNS server of user-defined networks (started on demand).
    #[command(hide = true)]
    Dns(dns::DnsArgs),
    /// Internal: the per-container monitor process.
    #[command(name = "__monitor", hide = true)]
    Monitor(monitor::MonitorArgs),
}

/// Runs one command.
pub fn dispatch(mut engine: Engine, command: Command) -> CmdResult {
    // Self-repair: a killed DNS server is restarted by whichever command comes next (one
    // flock probe when it runs). Not by the server itself or a monitor (the start hot path).
    if !matches!(
        command,
        Command::Dns(_) | Command::Monitor(_) | Command::Login(_) | Command::Logout(_)
    ) {
        engine.repair_dns();
    }
    match command {
        Command::Run(a) => run::run(engine, a),
        Command::Create(a) => run::create(engine, a),
        Command::Start(a) => run::start(engine, a),
        Command::Stop(a) => lifecycle::stop(engine, a),
        Command::Restart(a) => lifecycle::restart(engine, a),
        Command::Kill(a) => lifecycle::kill(engine, a),
        Command::Rm(a) => lifecycle::rm(engine, a),
        Command::Ps(a) => ps::ps(engine, a),
        Command::Logs(a) => logs::logs(engine, a),
        Command::Exec(a) => exec::exec(engine, a),
        Command::Inspect(a) => inspect::inspect(engine, a),
        Command::Port(a) => port::port(engine, a),
        Command::Load(a) => image::load(engine, a),
        Command::Import(a) => image::import(engine, a),
        Command::Images(a) => image::images(engine, a),
        Command::Pull(a) => pull::pull(engine, a),
        Command::Tag(a) => image::tag(engine, a),
        Command::Save(a) => image::save(engine, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Rmi(a) => image::rmi(engine, a),
        Command::Image(c) => image::image(engine, c),
        Command::Network(c) => network::network(engine, c),
        Command::Dns(a) => dns::dns(engine, a),
        Command::Monitor(a) => monitor::monitor(engine, a),
    }
}

/// Runs `f` on each key, printing what it returns, like Docker's multi-container verbs:
/// every key is tried; the exit code is 1 if any failed (errors printed as they happen).
pub fn for_each(
    keys: &[String],
    mut f: impl FnMut(&str) -> Result<String, berth_engine::EngineError>,
) -> CmdResult {
    let mut code = 0;
    for k in keys {
        match f(k) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("berth: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
