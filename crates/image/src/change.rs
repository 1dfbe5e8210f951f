//! `--change` instructions of `import` (Dockerfile syntax, the subset `docker import`
//! accepts): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.

use std::collections::HashMap;

use oci_spec::image::Config;

/// Errors of `--change` parsing.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The instruction is not one `import` supports.
    #[error("unsupported --change instruction {instruction:?}; use one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR")]
    Unknown {
        /// The instruction word.
        instruction: String,
    },
    /// The instruction's arguments are malformed.
    #[error("invalid --change {change:?}: {reason}")]
    Invalid {
        /// The whole change text.
        change: String,
        /// What is wrong.
        reason: String,
    },
}

/// Applies each `changes` entry (e.g. `CMD ["sh"]`, `ENV A=1 B=2`, `EXPOSE 80/udp`) to
/// `config`, in order.
///
/// Errors: [`ChangeError::Unknown`] for other instructions, [`ChangeError::Invalid`] for
/// bad arguments (empty, unterminated quotes, bad ports, `KEY` without `=` in LABEL).
pub fn apply_changes(config: &mut Config, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        apply_one(config, change)?;
    }
    Ok(())
}

fn apply_one(config: &mut Config, change: &str) -> Result<(), ChangeError> {
    let invalid = |reason: &str| ChangeError::Invalid {
        change: change.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = change.trim();
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let rest = rest.trim();
    let instruction = word.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(invalid("missing arguments"));
    }
    match instruction.as_str() {
        "CMD" => {
            config.set_cmd(Some(exec_or_shell(rest)));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(exec_or_shell(rest)));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in key_values(rest, true).map_err(|r| invalid(&r))? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
            labels.extend(key_values(rest, false).map_err(|r| invalid(&r))?);
            config.set_labels(Some(labels));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for w in words(rest).map_err(|r| invalid(&r))? {
                for p in expand_port(&w).map_err(|r| invalid(&r))? {
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            let new = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => words(rest).map_err(|r| invalid(&r))?,
            };
            vols.extend(new);
            config.set_volumes(Some(vols));
        }
        "WORKDIR" => {
            let dir = match config.working_dir() {
                Some(base) if !rest.starts_with('/') => {
                    format!("{}/{rest}", base.trim_end_matches('/'))
                }
                _ => rest.to_string(),
            };
            config.set_working_dir(Some(dir));
        }
        "USER" => {
            config.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            config.set_stop_signal(Some(rest.to_string()));
        }
        _ => {
            return Err(ChangeError::Unknown {
                instruction: word.to_string(),
            })
        }
    };
    Ok(())
}

/// JSON array (exec form) or, if not valid JSON, `/bin/sh -c TEXT` (shell form), as Docker.
fn exec_or_shell(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.into()]
}

/// `K=V K2="V 2"` pairs; with `legacy`, also ENV's old `KEY value with spaces` form.
fn key_values(rest: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if legacy && !first.contains('=') {
        let value = rest[first.len()..].trim();
        return Ok(vec![(first.to_string(), value.to_string())]);
    }
    words(rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// Splits on whitespace, honouring single quotes, double quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `80` -> `80/tcp`; `53/udp`; `8000-8002/tcp` -> three entries.
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("protocol {proto:?} is not tcp, udp or sctp"));
    }
    let parse = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("port {p:?} is not a number from 1 to 65535")),
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if lo > hi {
        return Err(format!("port range {ports:?} is reversed"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Config {
        let mut c = Config::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &changes).unwrap();
        c
    }

    #[test]
    fn exec_and_shell_forms() {
        let c = applied(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --flag",
        ]);
        assert_eq!(c.cmd().as_deref().unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint().as_deref().unwrap(),
            ["/bin/sh", "-c", "/bin/init --flag"]
        );
    }

    #[test]
    fn env_label_expose_workdir_user() {
        let c = applied(&[
            "ENV A=1 B=\"two words\"",
            "env A=3",
            "ENV LEGACY some value",
            "LABEL org.x=y 'quoted key'=v",
            "EXPOSE 80 53/udp 8000-8001",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "VOLUME [\"/data\"]",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(
            c.env().as_deref().unwrap(),
            ["B=two words", "A=3", "LEGACY=some value"]
        );
        let labels = c.labels().as_ref().unwrap();
        assert_eq!(labels["org.x"], "y");
        assert_eq!(labels["quoted key"], "v");
        assert_eq!(
            c.exposed_ports().as_deref().unwrap(),
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"]
        );
        assert_eq!(c.working_dir().as_deref(), Some("/srv/app"));
        assert_eq!(c.user().as_deref(), Some("1000:1000"));
        assert_eq!(c.volumes().as_deref().unwrap(), ["/data"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGINT"));
    }

    #[test]
    fn rejects_bad_changes() {
        let mut c = Config::default();
        let err = apply_changes(&mut c, &["RUN rm -rf /".into()]).unwrap_err();
        assert!(matches!(&err, ChangeError::Unknown { instruction } if instruction == "RUN"));
        assert!(err.to_string().contains("CMD, ENTRYPOINT"));
        for bad in [
            "EXPOSE 0",
            "EXPOSE 70000",
            "EXPOSE 80/icmp",
            "LABEL novalue",
            "ENV A=\"open",
            "CMD",
            "EXPOSE 9-1",
        ] {
            assert!(
                matches!(
                    apply_changes(&mut c, &[bad.into()]),
                    Err(ChangeError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
