//! `login` / `logout`: credentials in Docker's `config.json` (`$DOCKER_CONFIG`).

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use berth_image::registry::auth::Credentials;
use berth_image::registry::{login as registry_login, LoginRequest, RegistryOptions};

use crate::CmdResult;

/// Flags of `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password (prefer --password-stdin: a flag is visible in the process list).
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Verify the registry's TLS certificate (false also allows plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Registry (`host[:port]`; default Docker Hub).
    registry: Option<String>,
}

/// Flags of `logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry (`host[:port]`; default Docker Hub).
    registry: Option<String>,
}

/// A registry argument as a `host[:port]` key (scheme and path dropped, as Docker does).
fn registry_key(arg: Option<&str>) -> String {
    let arg = arg.unwrap_or("docker.io");
    let rest = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.into(),
    }
}

pub fn login(a: LoginArgs) -> CmdResult {
    let registry = registry_key(a.registry.as_deref());
    if a.password.is_some() && a.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() && !a.password_stdin => prompt("Username: ")?,
        None => anyhow::bail!("give the user name with -u when the password comes from stdin"),
    };
    let password = if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if a.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        read_password("Password: ")?
    };
    if username.is_empty() {
        anyhow::bail!("the user name must not be empty");
    }
    if password.is_empty() {
        anyhow::bail!("no password given: use --password-stdin (or -p), or run login on a terminal to be asked");
    }
    let opts = RegistryOptions::from_env(a.tls_verify);
    let req = LoginRequest {
        registry,
        credentials: Credentials { username, password },
    };
    // Docker's `login` exits 1 when the registry refuses (125 stays for usage errors).
    if let Err(e) = registry_login(&req, &opts) {
        eprintln!("berth: {}", crate::error_text(&e.into()));
        return Ok(1);
    }
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(a: LogoutArgs) -> CmdResult {
    let registry = registry_key(a.registry.as_deref());
    let opts = RegistryOptions::from_env(None);
    if opts.auth_file.remove(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

fn prompt(text: &str) -> anyhow::Result<String> {
    eprint!("{text}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Reads a password from the terminal with echo off.
fn read_password(text: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let line = prompt(text);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_like_docker() {
        assert_eq!(registry_key(None), "docker.io");
        assert_eq!(
            registry_key(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            registry_key(Some("http://127.0.0.1:5000/")),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_key(Some("r.example:443")), "r.example:443");
    }
}
