//! `berth`: the command-line interface. Parses Docker-compatible flags with clap, opens the
//! engine, runs one command, prints tables or JSON, and exits with Docker's codes
//! (125 engine error, 126 cannot invoke, 127 command not found, else the container's own).

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use berth_engine::{Engine, EngineError};

/// A container engine built around Docker's network model.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, disable_help_subcommand = true)]
struct Cli {
    /// Persistent state: SQLite database, images, container bundles and logs.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    root: PathBuf,
    /// Runtime state: netns bind mounts, monitor sockets, runtime state.
    #[arg(
        long,
        global = true,
        env = "BERTH_RUNROOT",
        default_value = "/run/berth"
    )]
    runroot: PathBuf,
    /// OCI runtime: runc (default), crun, youki, or a path.
    #[arg(long, global = true, env = "BERTH_RUNTIME", default_value = "runc")]
    runtime: String,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: cmd::Command,
}

/// What a command returns: the process exit code.
type CmdResult = Result<i32, anyhow::Error>;

fn main() -> ExitCode {
    // Docker exits 125 on flag errors, not clap's 2.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    let text = e.render().to_string();
                    eprint!("berth: {}", text.strip_prefix("error: ").unwrap_or(&text));
                    ExitCode::from(125)
                }
            };
        }
    };
    // Fault injection (feature `failpoints` only; a no-op otherwise).
    if let Err(e) = berth_sys::failpoint::setup() {
        eprintln!("berth: {e}");
        return ExitCode::from(125);
    }
    if !matches!(cli.command, cmd::Command::Monitor(_)) {
        berth_sys::process::default_sigpipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // rustls' verifier logs a refused certificate at ERROR before berth's own message
            // says what to do; keep it for explicit debugging levels only.
            tracing_subscriber::EnvFilter::try_new(format!(
                "{},rustls_platform_verifier=off",
                cli.log_level
            ))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {}", error_text(&e));
            e.downcast_ref::<EngineError>()
                .map(EngineError::exit_code)
                .unwrap_or(125)
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(125))
}

/// The error as the user sees it, printed once. berth's one cause-chain convention: an
/// error's message already says its cause (thiserror `"...: {source}"` in every crate, and
/// the CLI's own errors are built the same way, never with a cause-less `context`), so the
/// message is complete and the chain is not walked again (it would repeat the causes).
pub fn error_text(e: &anyhow::Error) -> String {
    e.to_string()
}

fn run(cli: Cli) -> CmdResult {
    // Monitors and the runtime run with other working directories: hand them absolute paths.
    let root = std::path::absolute(&cli.root)?;
    let runroot = std::path::absolute(&cli.runroot)?;
    let engine = Engine::open(&root, &runroot, &cli.runtime)?;
    cmd::dispatch(engine, cli.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e: anyhow::Error = EngineError::io("/x/y".as_ref(), io).into();
        let text = error_text(&e);
        assert_eq!(text, "/x/y: entity not found");
        let nested: anyhow::Error =
            EngineError::Config(berth_engine::config::ConfigError::SeccompFile {
                path: "/p.json".into(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            })
            .into();
        let text = error_text(&nested);
        assert_eq!(text.matches("permission denied").count(), 1, "{text}");
        assert!(
            text.starts_with("cannot read the seccomp profile /p.json"),
            "{text}"
        );
    }
}
