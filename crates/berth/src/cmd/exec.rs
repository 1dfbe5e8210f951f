//! `exec`: run a command in a running container.

use clap::Args;

use berth_engine::exec::ExecRequest;
use berth_engine::Engine;

use crate::CmdResult;

/// Flags of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Username or UID[:GID].
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container.
    container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn exec(mut engine: Engine, a: ExecArgs) -> CmdResult {
    let env = berth_engine::config::parse_env(&a.env, |k| std::env::var(k).ok())?;
    let req = ExecRequest {
        args: a.command,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        env,
        workdir: a.workdir,
        user: a.user,
    };
    Ok(engine.exec(&a.container, &req)?)
}
