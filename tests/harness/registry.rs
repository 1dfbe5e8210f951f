//! Image registries for the pull tests (issue 5), all run inside a sandbox host's namespace on
//! 127.0.0.1 and killed by pid on drop:
//! - [`Registry`]: Debian's `docker-registry` (distribution 2.8) with its storage in a temp
//!   dir, anonymous, htpasswd basic auth or token auth (with `token-server.py` as the realm),
//!   over plain HTTP or TLS (a test CA's certificate for 127.0.0.1); images pushed with skopeo.
//! - [`FakeRegistry`]: `fake-registry.py`, serving the OCI layout of test images read-only,
//!   optionally tampering with a blob or throttling big ones.
//! - [`ClientConfig`]: the client side, `$BERTH_CONFIG_DIR` (certs.d, registries.json) and
//!   `$DOCKER_CONFIG` (config.json) in a temp dir, passed to berth through its environment.
//!
//! The fixtures (certificates, the OCI layout and its `refs.json`) are built once per run under
//! `target/berth-fixtures/registry` by `tests/fixtures/registry/*`, like [`crate::fixture_images`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use tempfile::TempDir;

use crate::command::{try_run, Background, Outcome};
use crate::sandbox::SandboxHost;

/// The user every authenticating registry (and the token server) accepts.
pub const USER: &str = "alice";
/// [`USER`]'s password.
pub const PASSWORD: &str = "s3cret-pw";
/// The token server's issuer and the registry's service name (the token's `iss` and `aud`).
const TOKEN_ISSUER: &str = "berth-test-issuer";
const TOKEN_SERVICE: &str = "berth-test-registry";
/// Size of the random layer of the `big` image, in MiB.
const BIG_MIB: u32 = 64;
/// How long a registry or server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports for the servers of one test process. Each sandbox host has its own namespace, so
/// these never collide with other tests; distinct ports just keep one host's servers apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(5000);

fn next_port() -> u16 {
    NEXT_PORT.fetch_add(1, Ordering::Relaxed)
}

/// The built registry fixtures.
#[derive(Debug)]
pub struct RegistryFixtures {
    /// `target/berth-fixtures/registry`.
    pub dir: PathBuf,
    /// Certificates from `gen-certs.sh`: `ca.crt`, `server.{crt,key}`, `token.{crt,key}`.
    pub certs: PathBuf,
    /// The OCI layout from `build-images.py` (refs web, multi, big, amd64, arm64, multiarch,
    /// tampered).
    pub layout: PathBuf,
    /// `refs.json`: per ref its `digest`, `mediaType`, and for images `config`, `layers`,
    /// `sizes`, `architecture`; for `multiarch` its `manifests`.
    pub refs: serde_json::Value,
}

impl RegistryFixtures {
    /// The `refs.json` entry of `name`; panics if there is none.
    pub fn image(&self, name: &str) -> &serde_json::Value {
        let v = &self.refs[name];
        assert!(v.is_object(), "no image {name} in refs.json");
        v
    }

    /// String field `field` of image `name` (e.g. `digest`, `config`).
    pub fn field(&self, name: &str, field: &str) -> String {
        self.image(name)[field]
            .as_str()
            .unwrap_or_else(|| panic!("refs.json: {name}.{field} missing"))
            .to_string()
    }

    /// The layer digests of image `name`.
    pub fn layers(&self, name: &str) -> Vec<String> {
        self.image(name)["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Builds the registry fixtures at most once per run (file-locked against parallel test
/// processes; rebuilt when a fixture script is newer than the cache). Panics with the
/// scripts' output if a build fails.
pub fn registry_fixtures() -> &'static RegistryFixtures {
    static FIXTURES: OnceLock<RegistryFixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| build_fixtures().unwrap_or_else(|e| panic!("registry fixtures: {e:#}")))
}

fn build_fixtures() -> anyhow::Result<RegistryFixtures> {
    let web = crate::fixture_images().oci_archive.clone();
    let dir = crate::fixtures::target_dir().join("berth-fixtures/registry");
    std::fs::create_dir_all(&dir)?;
    let scripts = crate::fixtures::workspace_root().join("tests/fixtures/registry");
    let (certs, layout) = (dir.join("certs"), dir.join("layout"));
    let lock = File::create(dir.join(".lock"))?;
    // Serialises check-and-build across test processes; released when `_lock` drops.
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", dir.display()))?;
    let stamp = dir.join(".stamp");
    if !is_fresh(&stamp, &[&scripts, &web]) {
        run_script(
            Command::new("bash")
                .arg(scripts.join("gen-certs.sh"))
                .arg(&certs),
        )?;
        run_script(
            Command::new("/usr/bin/python3")
                .arg(scripts.join("build-images.py"))
                .arg(&web)
                .arg(&layout)
                .arg(BIG_MIB.to_string()),
        )?;
        std::fs::write(&stamp, b"built\n")?;
    }
    let refs = serde_json::from_slice(&std::fs::read(layout.join("refs.json"))?)?;
    Ok(RegistryFixtures {
        dir,
        certs,
        layout,
        refs,
    })
}

fn run_script(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The stamp exists and is newer than every input (a file, or a directory's files).
fn is_fresh(stamp: &Path, inputs: &[&Path]) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = mtime(stamp) else {
        return false;
    };
    inputs.iter().all(|input| {
        let files: Vec<PathBuf> = match std::fs::read_dir(input) {
            Ok(dir) => dir.flatten().map(|e| e.path()).collect(),
            Err(_) => vec![input.to_path_buf()],
        };
        files.iter().all(|f| mtime(f).is_some_and(|m| m <= built))
    })
}

/// How a [`Registry`] authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No authentication: anyone may pull and push.
    Anonymous,
    /// htpasswd (bcrypt) basic auth of [`USER`]/[`PASSWORD`].
    Basic,
    /// Bearer tokens from a token server (started alongside) that grants [`USER`] every
    /// scope asked for and refuses anyone else.
    Token,
}

/// A `docker-registry serve` inside a sandbox host; killed (with its token server) on drop.
#[derive(Debug)]
pub struct Registry {
    // Field order is drop order: the servers die before their directory is removed.
    _server: Background,
    _token_server: Option<Background>,
    addr: String,
    auth: RegistryAuth,
    tls: bool,
    netns_arg: String,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry on a fresh 127.0.0.1 port inside `host` (with a token server when
    /// `auth` is [`RegistryAuth::Token`], TLS with the test CA's certificate when `tls`), and
    /// waits until it listens. Panics if it does not start within 10 s.
    pub fn start(host: &SandboxHost, auth: RegistryAuth, tls: bool) -> Self {
        let fx = registry_fixtures();
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in("/var/tmp")
            .expect("registry tempdir");
        let addr = format!("127.0.0.1:{}", next_port());
        let token_server = (auth == RegistryAuth::Token).then(|| start_token_server(host, &dir));
        let token_realm = token_server.as_ref().map(|(_, realm)| realm.clone());
        let config = registry_config(&dir, &addr, auth, tls, token_realm.as_deref(), fx);
        let log = dir.path().join("registry.log");
        let server = spawn_logged(host, &["docker-registry", "serve", &config], &log);
        let reg = Self {
            _server: server,
            _token_server: token_server.map(|(bg, _)| bg),
            addr,
            auth,
            tls,
            netns_arg: host.netns().nsenter_arg(),
            dir,
        };
        let ok = crate::wait_until(START_TIMEOUT, || {
            reg.log().contains(&format!("listening on {}", reg.addr))
        });
        assert!(ok, "registry {} did not start:\n{}", reg.addr, reg.log());
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `127.0.0.1:PORT/<repo_tag>`, the reference of an image on this registry.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// Whether it serves HTTPS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The registry's log: its own lines (stderr) and the access log (stdout, combined format).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The token server's log (`GET /token?... user=U granted=[...]` or `... denied`).
    pub fn token_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("token.log")).unwrap_or_default()
    }

    /// The blob digests the registry has served with `GET` (status 200 or 206), in order,
    /// per its access log.
    pub fn blob_gets(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(access_blob_get)
            .map(String::from)
            .collect()
    }

    /// Pushes the fixture `web.docker.tar` as `<addr>/<repo_tag>` with skopeo (inside the
    /// host). Panics if the push fails.
    pub fn push_web(&self, repo_tag: &str) {
        let archive = crate::fixture_images().docker_archive.display().to_string();
        self.push(&format!("docker-archive:{archive}"), repo_tag, false);
    }

    /// Pushes ref `name` of the fixture layout (`multi`, `multiarch`, ...; an index with
    /// `--all`) as `<addr>/<repo_tag>`. Panics if the push fails.
    pub fn push_layout(&self, name: &str, repo_tag: &str) {
        let layout = registry_fixtures().layout.display().to_string();
        self.push(&format!("oci:{layout}:{name}"), repo_tag, true);
    }

    fn push(&self, src: &str, repo_tag: &str, all: bool) {
        let mut cmd = Command::new("nsenter");
        cmd.arg(&self.netns_arg).args([
            "--",
            "skopeo",
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if all {
            cmd.arg("--all");
        }
        if self.auth != RegistryAuth::Anonymous {
            cmd.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        cmd.arg(src)
            .arg(format!("docker://{}", self.image(repo_tag)));
        let out = try_run(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        let out = Outcome::new(format!("skopeo copy {src} -> {repo_tag}"), out);
        assert!(
            out.success(),
            "push failed: {out}\nregistry log:\n{}",
            self.log()
        );
    }

    /// The manifest digest the registry serves for `repo_tag` (skopeo inspect --raw, hashed
    /// here: for an index this is the index's digest).
    pub fn manifest_digest(&self, repo_tag: &str) -> String {
        let mut cmd = Command::new("nsenter");
        cmd.arg(&self.netns_arg)
            .args(["--", "skopeo", "inspect", "--raw", "--tls-verify=false"]);
        if self.auth != RegistryAuth::Anonymous {
            cmd.arg("--creds").arg(format!("{USER}:{PASSWORD}"));
        }
        cmd.arg(format!("docker://{}", self.image(repo_tag)));
        let out = try_run(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "skopeo inspect --raw {repo_tag} failed"
        );
        sha256_digest(&out.stdout)
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// The blob digest of an access-log line `"GET /v2/NAME/blobs/sha256:HEX HTTP/1.1" 200 ...`.
fn access_blob_get(line: &str) -> Option<&str> {
    let rest = line.split("\"GET /v2/").nth(1)?;
    let (path, after) = rest.split_once(" HTTP/")?;
    let digest = path.split("/blobs/").nth(1)?;
    let status = after.split_once("\" ")?.1.split_whitespace().next()?;
    matches!(status, "200" | "206").then_some(digest)
}

/// Writes the registry's `config.yml` into `dir` and returns its path.
fn registry_config(
    dir: &TempDir,
    addr: &str,
    auth: RegistryAuth,
    tls: bool,
    token_realm: Option<&str>,
    fx: &RegistryFixtures,
) -> String {
    let d = dir.path();
    let mut yml = format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    \
         rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
        d.join("storage").display()
    );
    if tls {
        yml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            fx.certs.join("server.crt").display(),
            fx.certs.join("server.key").display()
        );
    }
    match auth {
        RegistryAuth::Anonymous => {}
        RegistryAuth::Basic => {
            let htpasswd = d.join("htpasswd");
            write_htpasswd(&htpasswd);
            yml += &format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        RegistryAuth::Token => {
            yml += &format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    \
                 issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                token_realm.expect("token realm"),
                fx.certs.join("token.crt").display()
            );
        }
    }
    let path = d.join("config.yml");
    std::fs::write(&path, yml).expect("write registry config");
    path.display().to_string()
}

/// `htpasswd -Bbc FILE USER PASSWORD` (distribution accepts bcrypt entries only).
fn write_htpasswd(path: &Path) {
    let out = Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(path)
        .args([USER, PASSWORD])
        .output()
        .unwrap_or_else(|e| panic!("htpasswd (apt-get install apache2-utils): {e}"));
    assert!(out.status.success(), "htpasswd failed: {out:?}");
}

/// Starts `token-server.py` inside `host`; returns it and its realm URL.
fn start_token_server(host: &SandboxHost, dir: &TempDir) -> (Background, String) {
    let fx = registry_fixtures();
    let port = next_port().to_string();
    let script = crate::fixtures::workspace_root().join("tests/fixtures/registry/token-server.py");
    let (key, cert) = (fx.certs.join("token.key"), fx.certs.join("token.crt"));
    let log = dir.path().join("token.log");
    let out = dir.path().join("token.out");
    let args = [
        "/usr/bin/python3",
        path_str(&script),
        "--port",
        &port,
        "--key",
        path_str(&key),
        "--cert",
        path_str(&cert),
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--issuer",
        TOKEN_ISSUER,
        "--service",
        TOKEN_SERVICE,
        "--log",
        path_str(&log),
    ];
    let bg = spawn_logged(host, &args, &out);
    wait_ready(&out, "token server");
    (bg, format!("http://127.0.0.1:{port}/token"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Spawns `argv` inside `host` with stdout and stderr appended to `log`.
fn spawn_logged(host: &SandboxHost, argv: &[&str], log: &Path) -> Background {
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("server log file");
    let mut cmd = host.netns().command(argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup log fd"))
        .stderr(file);
    Background::spawn(&mut cmd)
}

/// Waits until `out` (a server's stdout) says `ready`; panics with it after 10 s.
fn wait_ready(out: &Path, what: &str) {
    let read = || std::fs::read_to_string(out).unwrap_or_default();
    let ok = crate::wait_until(START_TIMEOUT, || read().lines().any(|l| l == "ready"));
    assert!(ok, "{what} did not start:\n{}", read());
}

/// Faults a [`FakeRegistry`] injects.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeOptions {
    /// Serve the `tampered` image's marker layer with different bytes (same size).
    pub tamper: bool,
    /// Send blobs of 8 MiB or more at this many bytes per second (0: full speed).
    pub throttle: u32,
    /// Cut the first this many GETs of each blob after half its bytes (0: never).
    pub cut_first: u32,
}

/// `fake-registry.py` serving the fixture layout inside a sandbox host (plain HTTP,
/// anonymous, repositories `web` and `big` only); killed on drop.
#[derive(Debug)]
pub struct FakeRegistry {
    _server: Background,
    addr: String,
    dir: TempDir,
}

impl FakeRegistry {
    /// Starts it on a fresh port. Panics if it does not start within 10 s.
    pub fn start(host: &SandboxHost, opts: FakeOptions) -> Self {
        Self::start_on(host, next_port(), opts)
    }

    /// Starts it on `port` (e.g. the port of one just dropped, to serve the same references
    /// with other options).
    pub fn start_on(host: &SandboxHost, port: u16, opts: FakeOptions) -> Self {
        let fx = registry_fixtures();
        let dir = tempfile::Builder::new()
            .prefix("berth-fake-registry-")
            .tempdir_in("/var/tmp")
            .expect("fake registry tempdir");
        let script =
            crate::fixtures::workspace_root().join("tests/fixtures/registry/fake-registry.py");
        let (log, out) = (dir.path().join("fake.log"), dir.path().join("fake.out"));
        let port_s = port.to_string();
        let throttle = opts.throttle.to_string();
        let cut_first = opts.cut_first.to_string();
        let mut argv = vec![
            "/usr/bin/python3",
            path_str(&script),
            "--port",
            &port_s,
            "--layout",
            path_str(&fx.layout),
            "--repo",
            "web",
            "--repo",
            "big",
            "--log",
            path_str(&log),
            "--throttle",
            &throttle,
            "--cut-first",
            &cut_first,
        ];
        if opts.tamper {
            argv.push("--tamper");
        }
        let server = spawn_logged(host, &argv, &out);
        wait_ready(&out, "fake registry");
        Self {
            _server: server,
            addr: format!("127.0.0.1:{port}"),
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// `127.0.0.1:PORT/<repo>:<ref>`; repos are `web` and `big`, refs those of the layout
    /// plus `schema1`.
    pub fn image(&self, repo_ref: &str) -> String {
        format!("{}/{repo_ref}", self.addr)
    }

    /// The server's event log (see fake-registry.py).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fake.log")).unwrap_or_default()
    }

    /// Blob digests whose `GET` the server started, in order.
    pub fn blob_gets(&self) -> Vec<String> {
        self.blob_events("start")
    }

    /// Blob digests whose `GET` the server finished sending.
    pub fn blobs_done(&self) -> Vec<String> {
        self.blob_events("done")
    }

    fn blob_events(&self, event: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with("GET ") && l.split_whitespace().nth(2) == Some(event))
            .filter_map(|l| l.split("/blobs/").nth(1)?.split_whitespace().next())
            .map(String::from)
            .collect()
    }
}

/// A client configuration for berth: `$BERTH_CONFIG_DIR` (certs.d/, registries.json) and
/// `$DOCKER_CONFIG` (config.json), both in one temp dir, removed on drop.
#[derive(Debug)]
pub struct ClientConfig {
    dir: TempDir,
}

impl ClientConfig {
    /// Empty config dirs (no trusted CA, no insecure registry, no credentials).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-client-config-")
            .tempdir()
            .expect("client config tempdir");
        std::fs::create_dir_all(dir.path().join("berth")).expect("berth config dir");
        std::fs::create_dir_all(dir.path().join("docker")).expect("docker config dir");
        Self { dir }
    }

    /// `$BERTH_CONFIG_DIR`.
    pub fn berth_dir(&self) -> PathBuf {
        self.dir.path().join("berth")
    }

    /// `$DOCKER_CONFIG/config.json`.
    pub fn docker_config_json(&self) -> PathBuf {
        self.dir.path().join("docker/config.json")
    }

    /// The environment berth runs with.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("BERTH_CONFIG_DIR", self.berth_dir()),
            ("DOCKER_CONFIG", self.dir.path().join("docker")),
        ]
    }

    /// Trusts the test CA for `addr`: `certs.d/<addr>/ca.crt`.
    pub fn trust_ca(&self, addr: &str) {
        let dir = self.berth_dir().join("certs.d").join(addr);
        std::fs::create_dir_all(&dir).expect("certs.d dir");
        std::fs::copy(registry_fixtures().certs.join("ca.crt"), dir.join("ca.crt"))
            .expect("copy ca.crt");
    }

    /// Marks `addrs` insecure in `registries.json` (`{"insecure": [...]}`).
    pub fn insecure(&self, addrs: &[&str]) {
        let json = serde_json::json!({ "insecure": addrs });
        std::fs::write(self.berth_dir().join("registries.json"), json.to_string())
            .expect("write registries.json");
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SandboxHost {
    /// `berth ARGS` inside the host with `cfg`'s environment (90 s deadline).
    pub fn berth_cfg(&self, cfg: &ClientConfig, args: &[&str]) -> Outcome {
        self.berth_cfg_stdin(cfg, args, None)
    }

    /// Like [`Self::berth_cfg`] with a deadline of `timeout` instead of 90 s (panics past
    /// it), for commands whose work grows with the machine's load, e.g. pulling the 64 MiB
    /// layer of the `big` image with a debug build on a busy machine.
    pub fn berth_cfg_within(
        &self,
        cfg: &ClientConfig,
        args: &[&str],
        timeout: Duration,
    ) -> Outcome {
        let mut cmd = self.berth_command(args);
        cmd.envs(cfg.env());
        let out = try_run(&mut cmd, timeout).unwrap_or_else(|e| panic!("{e}"));
        Outcome::new(format!("berth {}", args.join(" ")), out)
    }

    /// Like [`Self::berth_cfg`], writing `input` to berth's stdin (then closing it) when
    /// given, e.g. for `login --password-stdin`.
    pub fn berth_cfg_stdin(
        &self,
        cfg: &ClientConfig,
        args: &[&str],
        input: Option<&str>,
    ) -> Outcome {
        let Some(input) = input else {
            return self.berth_cfg_within(cfg, args, Duration::from_secs(90));
        };
        let mut cmd = self.berth_command(args);
        cmd.envs(cfg.env());
        let shown = format!("berth {}", args.join(" "));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {shown}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
        drop(stdin);
        let out = child.wait_with_output().expect("wait for berth");
        Outcome::new(shown, out)
    }

    /// Starts `berth ARGS` in the background with `cfg`'s environment, its stdout and stderr
    /// going to a temp file read with [`SpawnedBerth::output`] (e.g. to wait for a progress
    /// line); the guard SIGKILLs it by pid (it is berth itself: `nsenter` execs it).
    pub fn spawn_berth(&self, cfg: &ClientConfig, args: &[&str]) -> SpawnedBerth {
        let log = tempfile::NamedTempFile::new().expect("berth output file");
        let file = log.reopen().expect("reopen berth output file");
        let mut cmd = self.berth_command(args);
        cmd.envs(cfg.env())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup output fd"))
            .stderr(file);
        SpawnedBerth {
            process: Background::spawn(&mut cmd),
            log,
        }
    }
}

/// A berth started by [`SandboxHost::spawn_berth`]: the process (SIGKILLed on drop) and the
/// file its output goes to.
#[derive(Debug)]
pub struct SpawnedBerth {
    // Field order is drop order: the process dies before its output file is removed.
    /// The berth process.
    pub process: Background,
    log: tempfile::NamedTempFile,
}

impl SpawnedBerth {
    /// What berth has written so far (stdout and stderr interleaved, as written).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// `base64(user:password)`, the `auth` field of Docker's config.json (RFC 4648 alphabet,
/// padded).
pub fn basic_auth_field(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
