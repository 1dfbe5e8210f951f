//! `logs`: print (and follow) a container's log.

use clap::Args;

use berth_engine::{Engine, Status};

use crate::CmdResult;

/// Flags of `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the log until the container stops.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines from the end ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Container.
    container: String,
}

pub fn logs(mut engine: Engine, a: LogsArgs) -> CmdResult {
    let tail = match a.tail.as_str() {
        "all" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            anyhow::anyhow!("invalid --tail {n:?}: give a number of lines or \"all\"")
        })?),
    };
    let c = engine.container(&a.container)?;
    let c = engine.reconcile_one(c)?;
    let path = engine.paths.log_file(&c.id);
    let id = c.id.clone();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    berth_engine::logs::print(&path, tail, a.follow, &mut out, &mut err, || {
        engine
            .container(&id)
            .map(|c| matches!(c.state.status, Status::Running | Status::Restarting))
            .unwrap_or(false)
    })?;
    Ok(0)
}
