//! What the user asked for when creating a container: validated, persisted as JSON in the
//! `containers.config` column. Parsing of CLI strings into these types happens here, at the edge.

use std::fmt;
use std::str::FromStr;

use berth_net::{NetworkMode, PublishRequest};
use berth_sys::link::MacAddr;
use serde::{Deserialize, Serialize};

/// Errors of parsing container options.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A container name broke Docker's rule.
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters")]
    Name(String),
    /// A restart policy string was not understood.
    #[error(
        "invalid restart policy {0:?}: use no, on-failure[:MAX-RETRIES], always or unless-stopped"
    )]
    Restart(String),
    /// A bad `--add-host`.
    #[error("invalid --add-host {0:?}: use NAME:IP (e.g. db:10.0.0.5) or NAME:host-gateway")]
    AddHost(String),
    /// A bad `-p` (the network model's message, unchanged).
    #[error(transparent)]
    Publish(#[from] berth_net::ModelError),
    /// A bad `--network`.
    #[error(transparent)]
    Mode(#[from] berth_net::ModeError),
    /// A bad `--mac-address`.
    #[error("invalid --mac-address {0:?}: use six hex octets of a unicast address other than 00:00:00:00:00:00, e.g. 02:42:ac:11:00:02")]
    Mac(String),
    /// `-e` / `--env-file` entry without a usable name.
    #[error("invalid environment variable {0:?}: use NAME=VALUE or NAME")]
    Env(String),
    /// A `--hostname` that is not an RFC 1123 host name of at most 64 characters.
    #[error("invalid --hostname {0:?}: use letters, digits and '-' in dot-separated labels of 1 to 63 characters, not starting or ending with '-', at most 64 characters in all (RFC 1123)")]
    Hostname(String),
    /// A `--dns-search` that is not a domain name.
    #[error("invalid --dns-search {0:?}: use a domain name such as example.com (labels of letters, digits and '-', at most 253 characters), or '.' for none")]
    DnsSearch(String),
    /// A `--dns-option` with whitespace or control characters.
    #[error("invalid --dns-option {0:?}: use one resolv.conf option such as ndots:2, without spaces or newlines")]
    DnsOption(String),
    /// A network alias with whitespace or control characters.
    #[error("invalid network alias {0:?}: use a name without spaces, newlines or control characters, at most 255 characters")]
    Alias(String),
    /// A relative `-w`.
    #[error("invalid working directory {0:?}: it must be an absolute path (start it with /)")]
    Workdir(String),
    /// A `--security-opt` berth does not know or support.
    #[error("invalid --security-opt {0:?}: use seccomp=unconfined, seccomp=PATH (a JSON profile in Docker's format) or no-new-privileges[=true|false]{1}")]
    SecurityOpt(String, &'static str),
    /// The `--security-opt seccomp=PATH` file cannot be read.
    #[error("cannot read the seccomp profile {path}: {source}")]
    SeccompFile {
        /// The path as given.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The `--security-opt seccomp=PATH` file is not a profile.
    #[error("{path}: {source}")]
    SeccompProfile {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        #[source]
        source: crate::spec::seccomp::SeccompError,
    },
}

/// A container name, valid by Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`
/// (moby `daemon/names/names.go`). A leading `/` (Docker's inspect form) is accepted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// The name as a string, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerName {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let name = s.strip_prefix('/').unwrap_or(s);
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = name.len() >= 2
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok {
            Ok(Self(name.to_string()))
        } else {
            Err(ConfigError::Name(s.to_string()))
        }
    }
}

impl TryFrom<String> for ContainerName {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

impl From<ContainerName> for String {
    fn from(n: ContainerName) -> String {
        n.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Docker's restart policies (`--restart`), Docker docs "Start containers automatically".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "Name", content = "MaximumRetryCount", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart when the exit code is non-zero, at most `max` times (0 = unlimited).
    OnFailure(u32),
    /// Always restart, unless stopped by the user.
    Always,
    /// Like `always`; differs only in that a user stop survives an engine restart.
    UnlessStopped,
}

impl RestartPolicy {
    /// Docker's policy name (`no`, `on-failure`, `always`, `unless-stopped`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::No => "no",
            Self::OnFailure(_) => "on-failure",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
        }
    }

    /// The retry limit (0 = none), as Docker's `MaximumRetryCount`.
    pub fn max_retries(&self) -> u32 {
        match self {
            Self::OnFailure(n) => *n,
            _ => 0,
        }
    }

    /// Whether a container that exited with `exit_code` after `restarts` restarts should
    /// start again. `user_stopped` is true after `stop`/`kill`/`rm -f`.
    pub fn should_restart(&self, exit_code: i32, restarts: u32, user_stopped: bool) -> bool {
        if user_stopped {
            return false;
        }
        match self {
            Self::No => false,
            Self::OnFailure(max) => exit_code != 0 && (*max == 0 || restarts < *max),
            Self::Always | Self::UnlessStopped => true,
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Restart(s.to_string());
        match s.split_once(':') {
            None => match s {
                "" | "no" => Ok(Self::No),
                "on-failure" => Ok(Self::OnFailure(0)),
                "always" => Ok(Self::Always),
                "unless-stopped" => Ok(Self::UnlessStopped),
                _ => Err(bad()),
            },
            Some(("on-failure", n)) => n.parse().map(Self::OnFailure).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }
}

/// Everything `create`/`run` was told, after validation. Persisted as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The image reference as the user typed it (shown by `ps`).
    pub image: String,
    /// `--entrypoint`, overriding the image's (`Some(vec![])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Command after the image name; empty means the image's Cmd.
    pub cmd: Vec<String>,
    /// `-e`/`--env-file` entries, `NAME=VALUE`, in order.
    pub env: Vec<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `--expose` ports, `PORT/PROTO`.
    pub expose: Vec<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--net/--network`, parsed at the edge; stored as Docker's spelling (`none`, `host`,
    /// `container:NAME`, a network name), so records of every version read the same.
    pub network: NetworkMode,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--skip-port-check`.
    pub skip_port_check: bool,
    /// Networking options of bridge networks (absent in records written before them).
    #[serde(default)]
    pub net: NetOptions,
    /// `--security-opt` (absent in records written before it: Docker's defaults).
    #[serde(default)]
    pub security: SecurityOptions,
}

/// `--security-opt` values, parsed at create by [`parse_security_opts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityOptions {
    /// The values as given, in order (inspect's `HostConfig.SecurityOpt`).
    pub given: Vec<String>,
    /// The seccomp filter.
    pub seccomp: SeccompOption,
    /// `no-new-privileges`: the OCI `process.noNewPrivileges` (prctl PR_SET_NO_NEW_PRIVS).
    pub no_new_privileges: bool,
}

/// Which seccomp filter a container gets (`--privileged` overrides it with none, as Docker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompOption {
    /// Docker's default profile ([`crate::spec::seccomp::default_profile`]).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=PATH`: the profile read at create (later edits of the file do not apply,
    /// as with Docker, whose CLI sends the file's content).
    Profile {
        /// The path as given.
        path: String,
        /// The file's JSON, already validated.
        json: String,
    },
}

/// Parses `--security-opt` values as Docker does (`KEY=VALUE`, or the legacy `KEY:VALUE`):
/// `seccomp=unconfined`, `seccomp=PATH` (read with `read` and validated now),
/// `no-new-privileges[=true|false]`. AppArmor, SELinux labels and everything else are
/// refused: berth does not apply them.
///
/// # Errors
/// [`ConfigError::SecurityOpt`], [`ConfigError::SeccompFile`], [`ConfigError::SeccompProfile`].
pub fn parse_security_opts(
    items: &[String],
    read: impl Fn(&str) -> std::io::Result<String>,
) -> Result<SecurityOptions, ConfigError> {
    let mut out = SecurityOptions {
        given: items.to_vec(),
        ..SecurityOptions::default()
    };
    for item in items {
        let (key, value) = match item.split_once('=').or_else(|| item.split_once(':')) {
            Some((k, v)) => (k, Some(v)),
            None => (item.as_str(), None),
        };
        let bad = |why| ConfigError::SecurityOpt(item.clone(), why);
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => out.seccomp = SeccompOption::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let json = read(path).map_err(|source| ConfigError::SeccompFile {
                    path: path.to_string(),
                    source,
                })?;
                crate::spec::seccomp::parse_profile(&json).map_err(|source| {
                    ConfigError::SeccompProfile {
                        path: path.to_string(),
                        source,
                    }
                })?;
                out.seccomp = SeccompOption::Profile {
                    path: path.to_string(),
                    json,
                };
            }
            ("apparmor" | "label" | "systempaths", _) => return Err(bad(
                " (berth applies no AppArmor or SELinux profile and keeps Docker's masked paths)",
            )),
            _ => return Err(bad("")),
        }
    }
    Ok(out)
}

/// The largest `--security-opt seccomp=PATH` file read (16 MiB): Docker's own default profile
/// is under 30 KiB, and the largest real profiles a few MB.
pub const SECCOMP_PROFILE_MAX: u64 = 16 << 20;

/// Reads a `--security-opt seccomp=PATH` profile: a regular file (symlinks followed) of at
/// most [`SECCOMP_PROFILE_MAX`] bytes, UTF-8. Opened non-blocking and checked on the open
/// descriptor, so a FIFO or a device (`/dev/zero`) is refused at once instead of hanging or
/// filling memory.
///
/// # Errors
/// The open/read error; `InvalidInput` for a file that is not regular or too large, with a
/// message saying so.
pub fn read_seccomp_profile(path: &str) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file; give the path of a JSON profile file",
        ));
    }
    let too_big = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "larger than {} MiB; a seccomp profile is a small JSON file",
                SECCOMP_PROFILE_MAX >> 20
            ),
        )
    };
    if meta.len() > SECCOMP_PROFILE_MAX {
        return Err(too_big());
    }
    let mut text = String::new();
    // The file may grow after the check: read one byte past the limit to notice.
    file.take(SECCOMP_PROFILE_MAX + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > SECCOMP_PROFILE_MAX {
        return Err(too_big());
    }
    Ok(text)
}

/// `run`/`create` options that only matter on networks (bridge, macvlan and ipvlan drivers).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetOptions {
    /// `-p` values, parsed at the edge (stored as the strings given).
    pub publish: Vec<PublishSpec>,
    /// `-P`: publish every exposed port on an ephemeral host port (the ports are known only
    /// at start, from the image and `--expose`: see `Engine::publish_requests`).
    pub publish_all: bool,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--ip6`.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--mac-address`, a unicast address (stored as its lowercase text).
    pub mac_address: Option<EndpointMac>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--dns`.
    pub dns: Vec<std::net::IpAddr>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`, as (name, address).
    pub add_hosts: Vec<(String, std::net::IpAddr)>,
    /// Networks added with `network connect`, attached again at every start (Docker keeps
    /// them the same way).
    #[serde(default)]
    pub connected: Vec<ConnectedNetwork>,
    /// `network disconnect` of the `--net` network: it is not attached at the next start.
    #[serde(default)]
    pub primary_detached: bool,
    /// `--add-host NAME:host-gateway` names: mapped to the address at which the container
    /// reaches the host (its first network's gateway; 127.0.0.1 in host mode).
    #[serde(default)]
    pub host_gateway_names: Vec<String>,
}

impl NetOptions {
    /// Whether anything is published (`-p` or `-P`).
    pub fn publishes(&self) -> bool {
        self.publish_all || !self.publish.is_empty()
    }

    /// Every request of the `-p` values, in order (`-P`'s are added at start).
    pub fn publish_requests(&self) -> impl Iterator<Item = &PublishRequest> {
        self.publish.iter().flat_map(|p| p.requests.iter())
    }
}

/// One `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` value, parsed once at the edge
/// ([`berth_net::parse_publish`]). Serialized as the text given, the JSON of every record
/// since `-p` exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublishSpec {
    given: String,
    requests: Vec<PublishRequest>,
}

impl PublishSpec {
    /// The value as the user gave it (for messages and inspect).
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The mappings it asks for (a range gives one per port; host port 0 = ephemeral).
    pub fn requests(&self) -> &[PublishRequest] {
        &self.requests
    }
}

impl FromStr for PublishSpec {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            given: s.to_string(),
            requests: berth_net::parse_publish(s)?,
        })
    }
}

impl TryFrom<String> for PublishSpec {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

impl From<PublishSpec> for String {
    fn from(p: PublishSpec) -> String {
        p.given
    }
}

impl fmt::Display for PublishSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// A `--mac-address` for an endpoint: a [`MacAddr`] that is unicast (bit 0 of the first octet
/// clear, which also rules out broadcast ff:ff:ff:ff:ff:ff, IEEE 802 §8.2) and not all zero
/// (no interface can use it). Serialized as lowercase `aa:bb:cc:dd:ee:ff`, as since the flag
/// exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointMac(MacAddr);

impl EndpointMac {
    /// The address.
    pub fn addr(&self) -> MacAddr {
        self.0
    }
}

impl FromStr for EndpointMac {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Mac(s.to_string());
        // MacAddr's parser takes what u8::from_str_radix takes, a leading '+' too.
        if !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        let mac: MacAddr = s.parse().map_err(|_| bad())?;
        if mac.0[0] & 1 == 0 && mac.0 != [0; 6] {
            Ok(Self(mac))
        } else {
            Err(bad())
        }
    }
}

impl TryFrom<String> for EndpointMac {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

impl From<EndpointMac> for String {
    fn from(m: EndpointMac) -> String {
        m.to_string()
    }
}

impl fmt::Display for EndpointMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A network joined with `network connect`, as recorded for the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedNetwork {
    /// The network's id.
    pub network_id: String,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--ip6`.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--alias`.
    pub aliases: Vec<String>,
}

/// Docker's special `--add-host` value meaning "the host, as this container reaches it".
pub const HOST_GATEWAY: &str = "host-gateway";

/// `--add-host` entries: (name, address) pairs and the names mapped to `host-gateway`.
pub type AddHosts = (Vec<(String, std::net::IpAddr)>, Vec<String>);

/// Splits `--add-host` values into fixed entries and `host-gateway` names.
pub fn parse_add_hosts(items: &[String]) -> Result<AddHosts, ConfigError> {
    let mut fixed = Vec::new();
    let mut gateway = Vec::new();
    for item in items {
        let special = item
            .strip_suffix(HOST_GATEWAY)
            .and_then(|n| n.strip_suffix(':').or_else(|| n.strip_suffix('=')));
        match special {
            Some(name) if !name.is_empty() => gateway.push(name.to_string()),
            _ => fixed.push(parse_add_host(item)?),
        }
    }
    Ok((fixed, gateway))
}

/// Parses `--add-host NAME:IP` (IPv6 addresses may contain ':'; the name is before the first
/// ':'; `NAME=IP` as in newer Docker is accepted too).
pub fn parse_add_host(s: &str) -> Result<(String, std::net::IpAddr), ConfigError> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| ConfigError::AddHost(s.to_string()))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| ConfigError::AddHost(s.to_string()))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(ConfigError::AddHost(s.to_string()));
    }
    Ok((name.to_string(), ip))
}

/// One RFC 1123 label (§2.1, RFC 952 as amended): 1 to 63 letters, digits and '-', not
/// starting or ending with '-'.
fn is_label(l: &str) -> bool {
    (1..=63).contains(&l.len())
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// Checks a `--hostname`: dot-separated RFC 1123 labels, at most 64 characters in all (the
/// kernel's `__NEW_UTS_LEN`, sethostname(2), which is also Docker's limit).
pub fn validate_hostname(s: &str) -> Result<(), ConfigError> {
    if s.len() <= 64 && s.split('.').all(is_label) {
        Ok(())
    } else {
        Err(ConfigError::Hostname(s.to_string()))
    }
}

/// Checks a `--dns-search` domain: RFC 1123 labels, an optional trailing dot, at most 253
/// characters (RFC 1035 §2.3.4 less the dots' framing); `.` alone means "no search list", as in
/// Docker's `ValidateDNSSearch`.
pub fn validate_dns_search(s: &str) -> Result<(), ConfigError> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if s == "." || (name.len() <= 253 && name.split('.').all(is_label)) {
        Ok(())
    } else {
        Err(ConfigError::DnsSearch(s.to_string()))
    }
}

/// Checks a `--dns-option` (one resolv.conf `options` word, resolv.conf(5)): not empty, no
/// whitespace or control characters, which would start a new option or line.
pub fn validate_dns_option(s: &str) -> Result<(), ConfigError> {
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(ConfigError::DnsOption(s.to_string()))
    }
}

/// Checks a `--network-alias`/`--alias`: a DNS name the embedded server answers and the hosts
/// file lists, so no whitespace or control characters; 1 to 255 characters (RFC 1035 §2.3.4).
pub fn validate_alias(s: &str) -> Result<(), ConfigError> {
    if (1..=255).contains(&s.len()) && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(ConfigError::Alias(s.to_string()))
    }
}

/// Checks the options that end up in `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`,
/// and the working directory (absolute, as the runtime requires), at create time.
///
/// # Errors
/// The first of [`ConfigError::Hostname`], [`ConfigError::DnsSearch`],
/// [`ConfigError::DnsOption`], [`ConfigError::Alias`], [`ConfigError::Workdir`].
pub fn validate_written_options(c: &ContainerConfig) -> Result<(), ConfigError> {
    if let Some(h) = &c.hostname {
        validate_hostname(h)?;
    }
    c.net
        .dns_search
        .iter()
        .try_for_each(|d| validate_dns_search(d))?;
    c.net
        .dns_options
        .iter()
        .try_for_each(|o| validate_dns_option(o))?;
    c.net.aliases.iter().try_for_each(|a| validate_alias(a))?;
    if let Some(w) = c.working_dir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(ConfigError::Workdir(w.to_string()));
    }
    Ok(())
}

/// Parses `-e` values: `NAME=VALUE` is kept, a bare `NAME` takes the value from `lookup`
/// (Docker reads the CLI's environment) and is dropped when unset.
pub fn parse_env(
    items: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for item in items {
        let name = item.split('=').next().unwrap_or_default();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ConfigError::Env(item.clone()));
        }
        if item.contains('=') {
            out.push(item.clone());
        } else if let Some(v) = lookup(item) {
            out.push(format!("{item}={v}"));
        }
    }
    Ok(out)
}

/// Parses an `--env-file`: one `NAME=VALUE` or `NAME` per line, `#` comments and blank
/// lines skipped (Docker's format; no quotes processing).
pub fn parse_env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rule() {
        for ok in ["web1", "a.b-c_d", "/web", "9x"] {
            assert!(ok.parse::<ContainerName>().is_ok(), "{ok}");
        }
        for bad in ["", "a", "-web", "we b", "web/1", "_x", "wéb"] {
            assert!(bad.parse::<ContainerName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::No);
        assert_eq!(
            "on-failure:3".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure(3)
        );
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure(2);
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }

    #[test]
    fn add_host_and_mac() {
        assert_eq!(parse_add_host("db:10.0.0.5").unwrap().0, "db");
        assert_eq!(
            parse_add_host("v6:::1").unwrap().1,
            "::1".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(parse_add_host("nope").is_err());
        assert!(parse_add_host("x:999.1.1.1").is_err());
        let mac = |s: &str| s.parse::<EndpointMac>();
        assert_eq!(
            mac("02:42:AC:11:00:02").unwrap().to_string(),
            "02:42:ac:11:00:02"
        );
        assert!(mac("01:00:5e:00:00:01").is_err(), "multicast refused");
        assert!(mac("ff:ff:ff:ff:ff:ff").is_err(), "broadcast refused");
        assert!(mac("00:00:00:00:00:00").is_err(), "all-zero refused");
        assert!(mac("02:42:ac:11:00").is_err());
        assert!(mac("02:42:ac:11:00:0g").is_err());
        assert!(mac("02:42:ac:11:00:02:03").is_err());
        assert!(mac("+2:42:ac:11:00:02").is_err());
    }

    #[test]
    fn written_option_validators() {
        for ok in [
            "web",
            "a-b.example",
            "x1",
            &"a".repeat(63),
            &format!("{}.b", "a".repeat(62)),
        ] {
            assert!(validate_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a b",
            "a\nb",
            "a_b",
            &"a".repeat(64),
            &format!("{}.bc", "a".repeat(62)),
        ] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
        for ok in ["example.com", "example.com.", ".", "lan"] {
            assert!(validate_dns_search(ok).is_ok(), "{ok}");
        }
        for bad in ["a.com\nnameserver 7.7.7.7", "a com", "", "a..b", "-x.com"] {
            assert!(validate_dns_search(bad).is_err(), "{bad:?}");
        }
        assert!(validate_dns_option("ndots:2").is_ok());
        for bad in ["", "ndots:2 x", "a\nnameserver 1.1.1.1", "a\tb"] {
            assert!(validate_dns_option(bad).is_err(), "{bad:?}");
        }
        assert!(validate_alias("db.svc").is_ok());
        for bad in ["", "a b", "a\n1.2.3.4 evil", &"a".repeat(256)] {
            assert!(validate_alias(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn security_opts() {
        let read = |p: &str| -> std::io::Result<String> {
            match p {
                "/ok.json" => Ok(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into()),
                "/bad.json" => Ok("not json".into()),
                _ => Err(std::io::ErrorKind::NotFound.into()),
            }
        };
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s =
            parse_security_opts(&v(&["seccomp=unconfined", "no-new-privileges"]), read).unwrap();
        assert_eq!(s.seccomp, SeccompOption::Unconfined);
        assert!(s.no_new_privileges);
        let s = parse_security_opts(
            &v(&["no-new-privileges:true", "no-new-privileges=false"]),
            read,
        )
        .unwrap();
        assert!(!s.no_new_privileges);
        let s = parse_security_opts(&v(&["seccomp=/ok.json"]), read).unwrap();
        assert!(matches!(s.seccomp, SeccompOption::Profile { .. }));
        assert_eq!(s.given, ["seccomp=/ok.json"]);
        for bad in [
            "seccomp=/bad.json",
            "seccomp=/missing",
            "apparmor=x",
            "nope",
            "no-new-privileges=maybe",
            "seccomp=",
        ] {
            assert!(parse_security_opts(&v(&[bad]), read).is_err(), "{bad}");
        }
        assert_eq!(
            parse_security_opts(&[], read).unwrap(),
            SecurityOptions::default()
        );
    }

    #[test]
    fn seccomp_profiles_are_regular_files_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
        // A 15 MB real-looking profile still reads (padding is JSON whitespace).
        let mut big = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]"#.to_string();
        big.push_str(&" ".repeat(15_000_000));
        big.push('}');
        std::fs::write(path("big.json"), &big).unwrap();
        std::os::unix::fs::symlink(path("big.json"), path("link.json")).unwrap();
        for ok in ["big.json", "link.json"] {
            let text = read_seccomp_profile(&path(ok)).unwrap();
            crate::spec::seccomp::parse_profile(&text).unwrap();
        }
        // Larger than the cap (sparse: no disk used).
        let f = std::fs::File::create(path("huge.json")).unwrap();
        f.set_len(SECCOMP_PROFILE_MAX + 1).unwrap();
        let e = read_seccomp_profile(&path("huge.json")).unwrap_err();
        assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
        // A FIFO is refused without waiting for a writer; so are devices and directories.
        nix::unistd::mkfifo(
            dir.path().join("fifo").as_path(),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        for bad in [path("fifo"), "/dev/zero".into(), path("")] {
            let e = read_seccomp_profile(&bad).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{bad}: {e}");
        }
        let e = parse_security_opts(&["seccomp=/dev/zero".into()], read_seccomp_profile);
        let m = e.unwrap_err().to_string();
        assert!(
            m.contains("/dev/zero") && m.contains("not a regular file"),
            "{m}"
        );
    }

    #[test]
    fn env_parsing() {
        let got = parse_env(&["A=1".into(), "B".into(), "C".into()], |k| {
            (k == "B").then(|| "2".to_string())
        })
        .unwrap();
        assert_eq!(got, vec!["A=1", "B=2"]);
        assert!(parse_env(&["=x".into()], |_| None).is_err());
        assert_eq!(parse_env_file("# c\nA=1\n\n B=2\n"), vec!["A=1", "B=2"]);
    }

    /// Records written by berth b34e8f4 (main before the typed config; `create` of
    /// oldweb/oldhost/olduser/oldnone/oldjoin with -p ranges, -P, --mac-address in capitals,
    /// --ip, every network mode) read into the typed config and write back the same JSON.
    #[test]
    fn records_of_the_string_config_stay_readable() {
        let lines = include_str!("testdata/configs-b34e8f4.jsonl");
        let mut modes = Vec::new();
        for line in lines.lines() {
            let c: ContainerConfig = serde_json::from_str(line).expect(line);
            let again = serde_json::to_string(&c).unwrap();
            let (a, b): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(line).unwrap(),
                serde_json::from_str(&again).unwrap(),
            );
            assert_eq!(a, b, "same JSON back");
            modes.push(c.network.clone());
            if c.network == NetworkMode::Network("bridge".into()) {
                let net = &c.net;
                assert!(net.publish_all && net.publishes());
                assert_eq!(net.publish[1].as_str(), "127.0.0.1:9090-9091:90-91/udp");
                let reqs: Vec<_> = net.publish_requests().collect();
                assert_eq!(reqs.len(), 3, "8080:80 and a range of two");
                assert_eq!((reqs[2].host_port, reqs[2].container_port), (9091, 91));
                assert_eq!(reqs[2].proto, berth_net::Proto::Udp);
                let mac = net.mac_address.expect("mac");
                assert_eq!(mac.addr().0, [0x02, 0x42, 0xac, 0x11, 0x00, 0x09]);
            }
        }
        assert_eq!(
            modes,
            [
                NetworkMode::Host,
                NetworkMode::Container("oldweb".into()),
                NetworkMode::None,
                NetworkMode::Network("usernet".into()),
                NetworkMode::Network("bridge".into()),
            ]
        );
    }

    #[test]
    fn a_record_with_a_value_no_longer_valid_is_refused_with_its_reason() {
        let line = lines_with("\"publish\":[]", "\"publish\":[\"70000:80\"]");
        let e = serde_json::from_str::<ContainerConfig>(&line).unwrap_err();
        assert!(e.to_string().contains("invalid -p"), "{e}");
        let line = lines_with("\"network\":\"none\"", "\"network\":\"\"");
        assert!(serde_json::from_str::<ContainerConfig>(&line).is_err());
    }

    /// The `oldnone` record with `from` replaced by `to`.
    fn lines_with(from: &str, to: &str) -> String {
        let line = include_str!("testdata/configs-b34e8f4.jsonl")
            .lines()
            .find(|l| l.contains("\"network\":\"none\""))
            .unwrap();
        assert!(line.contains(from));
        line.replacen(from, to, 1)
    }
}
