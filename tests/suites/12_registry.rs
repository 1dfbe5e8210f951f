//! Images from registries end to end (issue 5): `pull` from Debian's `docker-registry`
//! (anonymous, htpasswd basic auth, Bearer tokens, self-signed TLS) and from a fake registry
//! (tampered blob, schema 1, throttled blob for a killed pull); `login`/`logout`, platform
//! selection in an index, re-pulls that fetch nothing, `run --pull`, `tag`, `save`, `image prune`.
//! Every registry runs inside the test's sandbox host on 127.0.0.1.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_tests::{
    basic_auth_field, registry_fixtures, require_root, ClientConfig, FakeOptions, FakeRegistry,
    Outcome, Registry, RegistryAuth, SandboxHost, PASSWORD, USER,
};
use nix::sys::signal::Signal;

/// `berth pull --tls-verify=false REF` with `cfg`.
fn pull_insecure(host: &SandboxHost, cfg: &ClientConfig, reference: &str) -> Outcome {
    host.berth_cfg(cfg, &["pull", "--tls-verify=false", reference])
}

/// Asserts Docker's closing lines of a successful pull: `Digest: DIGEST`, then
/// `Status: Downloaded newer image for REF` (`fresh`) or `Status: Image is up to date for REF`,
/// then REF alone. Returns stdout.
#[track_caller]
fn assert_pulled(out: &Outcome, reference: &str, digest: &str, fresh: bool) -> String {
    let stdout = out.ok();
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let status = if fresh {
        format!("Status: Downloaded newer image for {reference}")
    } else {
        format!("Status: Image is up to date for {reference}")
    };
    let want = [format!("Digest: {digest}"), status, reference.to_string()];
    assert!(
        lines.len() >= 3 && lines[lines.len() - 3..] == want,
        "pull output should end with {want:#?}:\n{out}"
    );
    stdout
}

/// Docker's short form of a layer digest in progress lines: its first 12 hex digits.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// `berth image inspect REF`, first element; panics if it fails.
fn image_inspect(host: &SandboxHost, reference: &str) -> serde_json::Value {
    let text = host.cli(&["image", "inspect", reference]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("image inspect: {e}: {text}"));
    v[0].clone()
}

/// The IMAGE ID column of `berth images` for `repo` `tag`, if listed.
fn listed(host: &SandboxHost, repo: &str, tag: &str) -> Option<String> {
    let table = host.cli(&["images"]).ok();
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.first() == Some(&repo) && cols.get(1) == Some(&tag)).then(|| cols[2].to_string())
    })
}

/// Asserts that `reference` (`repo:tag`) is neither listed nor inspectable.
#[track_caller]
fn assert_no_image(host: &SandboxHost, reference: &str) {
    let (repo, tag) = reference.rsplit_once(':').expect("repo:tag");
    assert_eq!(
        listed(host, repo, tag),
        None,
        "{reference} should not be listed"
    );
    host.cli(&["image", "inspect", reference]).fails();
}

/// Lowercase `text` contains one of `words`.
fn mentions(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// `$DOCKER_CONFIG/config.json` parsed; `{}` when there is none (nothing stored yet, or
/// removed with the last entry).
fn docker_config(cfg: &ClientConfig) -> serde_json::Value {
    match std::fs::read(cfg.docker_config_json()) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("config.json is not JSON ({e}): {bytes:?}")),
        Err(_) => serde_json::json!({}),
    }
}

/// Runs `sh` inside the host; panics unless it succeeds. Returns stdout.
fn host_sh(host: &SandboxHost, cmd: &str) -> String {
    host.sh(cmd).ok()
}

#[test]
fn registry_variants_serve_skopeo() {
    // The infrastructure itself, with skopeo as the client: if this fails, the berth tests
    // below fail for the harness's reasons, not berth's.
    require_root!();
    let host = SandboxHost::new();
    let anon = Registry::start(&host, RegistryAuth::Anonymous, false);
    let basic = Registry::start(&host, RegistryAuth::Basic, false);
    let token = Registry::start(&host, RegistryAuth::Token, false);
    let tls = Registry::start(&host, RegistryAuth::Anonymous, true);
    let creds = format!("--creds {USER}:{PASSWORD}");
    for (reg, opts) in [
        (&anon, ""),
        (&basic, &*creds),
        (&token, &*creds),
        (&tls, ""),
    ] {
        reg.push_web("web:latest");
        let arch = host_sh(
            &host,
            &format!(
                "skopeo inspect --tls-verify=false {opts} --format '{{{{.Architecture}}}}' \
                 docker://{}",
                reg.image("web:latest")
            ),
        );
        assert_eq!(arch, "amd64");
    }
    for reg in [&basic, &token] {
        let out = host.sh(&format!(
            "skopeo inspect --tls-verify=false docker://{}",
            reg.image("web:latest")
        ));
        assert!(
            mentions(&out.fails(), &["unauthorized", "authentication required"]),
            "{out}"
        );
    }
    assert!(
        token.token_log().contains("user=alice granted="),
        "{}",
        token.token_log()
    );
    let out = host.sh(&format!(
        "skopeo inspect docker://{}",
        tls.image("web:latest")
    ));
    assert!(
        mentions(&out.fails(), &["certificate signed by unknown authority"]),
        "{out}"
    );
    let certs = registry_fixtures().certs.display().to_string();
    host_sh(
        &host,
        &format!(
            "mkdir -p /tmp/berth-ca-$$ && cp {certs}/ca.crt /tmp/berth-ca-$$/ && \
                  skopeo inspect --cert-dir /tmp/berth-ca-$$ docker://{}; r=$?; \
                  rm -rf /tmp/berth-ca-$$; exit $r",
            tls.image("web:latest")
        ),
    );
    anon.push_layout("multiarch", "multiarch:latest");
    let arch = host_sh(
        &host,
        &format!(
            "skopeo inspect --tls-verify=false --override-arch arm64 \
             --format '{{{{.Architecture}}}}' docker://{}",
            anon.image("multiarch:latest")
        ),
    );
    assert_eq!(arch, "arm64");
}

#[test]
fn fake_registry_serves_and_misbehaves_for_skopeo() {
    require_root!();
    let host = SandboxHost::new();
    let fake = FakeRegistry::start(
        &host,
        FakeOptions {
            tamper: true,
            ..FakeOptions::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    host_sh(
        &host,
        &format!(
            "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{} dir:{d}/multi",
            fake.image("web:multi")
        ),
    );
    let out = host.sh(&format!(
        "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{} dir:{d}/bad",
        fake.image("web:tampered")
    ));
    assert!(out.fails().contains("Digest did not match"), "{out}");
    assert!(fake.log().contains("tampered sha256:"), "{}", fake.log());
    let out = host.sh(&format!(
        "skopeo inspect --tls-verify=false docker://{}",
        fake.image("nosuch:latest")
    ));
    assert!(mentions(&out.fails(), &["name unknown"]), "{out}");
    let raw = host_sh(
        &host,
        &format!(
            "skopeo inspect --raw --tls-verify=false docker://{}",
            fake.image("web:schema1")
        ),
    );
    assert!(raw.contains("\"schemaVersion\": 1"), "{raw}");
}

#[test]
fn anonymous_pull_runs_with_net_host_and_serves_http() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    let reference = reg.image("web:latest");
    let digest = reg.manifest_digest("web:latest");
    assert_pulled(
        &pull_insecure(&host, &cfg, &reference),
        &reference,
        &digest,
        true,
    );
    let repo = reg.image("web");
    assert!(
        listed(&host, &repo, "latest").is_some(),
        "images lists {reference}"
    );
    let ins = image_inspect(&host, &reference);
    assert_eq!(ins["Architecture"], "amd64", "{ins}");
    let repo_digest = format!("{repo}@{digest}");
    assert!(
        ins["RepoDigests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == &*repo_digest)),
        "RepoDigests should hold {repo_digest}: {ins}"
    );
    host.cli(&["run", "-d", "--net", "host", "--name", "pulled", &reference])
        .ok();
    let mut page = String::new();
    let served = berth_tests::wait_until(Duration::from_secs(10), || {
        page = host.sh("curl -s -m 2 http://127.0.0.1:80/").stdout;
        page.contains("berth demo")
    });
    assert!(served, "the pulled image serves HTTP on the host: {page:?}");
    // registries.json marks the plain-HTTP registry insecure: no flag needed.
    let insecure = ClientConfig::new();
    insecure.insecure(&[reg.addr()]);
    let out = host.berth_cfg(&insecure, &["pull", &reference]);
    assert_pulled(&out, &reference, &digest, false);
}

#[test]
fn pull_shows_progress_and_repull_fetches_nothing() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_layout("multi", "multi:latest");
    let reference = reg.image("multi:latest");
    let digest = reg.manifest_digest("multi:latest");
    let layers = registry_fixtures().layers("multi");
    let out = pull_insecure(&host, &cfg, &reference);
    let stdout = assert_pulled(&out, &reference, &digest, true);
    for layer in &layers {
        let short = short(layer);
        assert!(
            stdout.contains(&format!("{short}: Pull complete")),
            "a plain progress line per layer ({short}): {out}"
        );
    }
    let fetched = reg.blob_gets();
    for layer in &layers {
        assert!(
            fetched.contains(layer),
            "layer {layer} fetched: {fetched:?}"
        );
    }
    let again = pull_insecure(&host, &cfg, &reference);
    assert_pulled(&again, &reference, &digest, false);
    assert_eq!(
        reg.blob_gets(),
        fetched,
        "a re-pull fetches no blob:\n{}",
        reg.log()
    );
    let quiet = host.berth_cfg(&cfg, &["pull", "-q", "--tls-verify=false", &reference]);
    assert_eq!(quiet.ok(), reference, "pull -q prints only the reference");
}

#[test]
fn basic_auth_login_and_logout() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Basic, false);
    reg.push_web("web:latest");
    let (addr, reference) = (reg.addr(), reg.image("web:latest"));
    let refused = |why: &str| {
        let out = pull_insecure(&host, &cfg, &reference);
        let err = out.fails();
        assert!(
            mentions(
                &err,
                &[
                    "unauthorized",
                    "authentication required",
                    "credentials",
                    "login"
                ]
            ) && err.contains(addr),
            "{why}: pull refused naming the registry and the auth problem: {out}"
        );
    };
    refused("before login");
    let bad = host.berth_cfg(
        &cfg,
        &[
            "login",
            "-u",
            USER,
            "-p",
            "wrong",
            "--tls-verify=false",
            addr,
        ],
    );
    bad.fails();
    let stored = docker_config(&cfg);
    assert!(
        stored["auths"].get(addr).is_none(),
        "a refused login stores nothing: {stored}"
    );
    let login = host.berth_cfg_stdin(
        &cfg,
        &[
            "login",
            "-u",
            USER,
            "--password-stdin",
            "--tls-verify=false",
            addr,
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(login.ok().contains("Login Succeeded"), "{login}");
    let meta = std::fs::metadata(cfg.docker_config_json()).expect("config.json written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "config.json mode");
    let json = docker_config(&cfg);
    assert_eq!(
        json["auths"][addr]["auth"],
        basic_auth_field(USER, PASSWORD),
        "Docker's auths format: {json}"
    );
    let digest = reg.manifest_digest("web:latest");
    assert_pulled(
        &pull_insecure(&host, &cfg, &reference),
        &reference,
        &digest,
        true,
    );
    host.berth_cfg(&cfg, &["logout", addr]).ok();
    let json = docker_config(&cfg);
    assert!(
        json["auths"].get(addr).is_none(),
        "logout removes the entry: {json}"
    );
    refused("after logout");
}

#[test]
fn bearer_token_flow() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Token, false);
    reg.push_web("web:latest");
    let (addr, reference) = (reg.addr(), reg.image("web:latest"));
    let out = pull_insecure(&host, &cfg, &reference);
    assert!(
        mentions(
            &out.fails(),
            &[
                "unauthorized",
                "authentication required",
                "credentials",
                "login"
            ]
        ),
        "anonymous pull refused by the token server: {out}"
    );
    host.berth_cfg(
        &cfg,
        &[
            "login",
            "-u",
            USER,
            "-p",
            "wrong",
            "--tls-verify=false",
            addr,
        ],
    )
    .fails();
    let login = host.berth_cfg(
        &cfg,
        &[
            "login",
            "-u",
            USER,
            "-p",
            PASSWORD,
            "--tls-verify=false",
            addr,
        ],
    );
    assert!(login.ok().contains("Login Succeeded"), "{login}");
    let digest = reg.manifest_digest("web:latest");
    assert_pulled(
        &pull_insecure(&host, &cfg, &reference),
        &reference,
        &digest,
        true,
    );
    let tokens = reg.token_log();
    assert!(
        tokens.lines().any(|l| l.contains("user=alice granted=")
            && l.contains(r#""name":"web""#)
            && l.contains(r#""pull""#)),
        "berth got a pull token for web from the token server:\n{tokens}"
    );
}

#[test]
fn self_signed_tls_is_refused_unless_trusted() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, true);
    reg.push_web("web:latest");
    let reference = reg.image("web:latest");
    let digest = reg.manifest_digest("web:latest");
    let out = host.berth_cfg(&cfg, &["pull", &reference]);
    assert!(
        mentions(&out.fails(), &["certificate"]),
        "refused by default, naming the certificate problem: {out}"
    );
    assert_no_image(&host, &reference);
    assert_pulled(
        &pull_insecure(&host, &cfg, &reference),
        &reference,
        &digest,
        true,
    );
    host.cli(&["rmi", &reference]).ok();
    cfg.trust_ca(reg.addr());
    let out = host.berth_cfg(&cfg, &["pull", &reference]);
    assert_pulled(&out, &reference, &digest, true);
    host.cli(&["rmi", &reference]).ok();
    let insecure = ClientConfig::new();
    insecure.insecure(&[reg.addr()]);
    let out = host.berth_cfg(&insecure, &["pull", &reference]);
    assert_pulled(&out, &reference, &digest, true);
}

#[test]
fn index_pull_picks_the_platform() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_layout("multiarch", "multiarch:latest");
    let reference = reg.image("multiarch:latest");
    let index_digest = reg.manifest_digest("multiarch:latest");
    assert_pulled(
        &pull_insecure(&host, &cfg, &reference),
        &reference,
        &index_digest,
        true,
    );
    let amd = image_inspect(&host, &reference);
    assert_eq!(
        amd["Architecture"], "amd64",
        "linux/amd64 by default: {amd}"
    );
    let marker = host
        .cli(&["run", "--rm", &reference, "cat", "/etc/berth-arch"])
        .ok();
    assert_eq!(marker, "amd64");
    let out = host.berth_cfg(
        &cfg,
        &[
            "pull",
            "--platform",
            "linux/arm64",
            "--tls-verify=false",
            &reference,
        ],
    );
    assert_pulled(&out, &reference, &index_digest, true);
    let arm = image_inspect(&host, &reference);
    assert_eq!(
        arm["Architecture"], "arm64",
        "--platform linux/arm64: {arm}"
    );
    assert_ne!(arm["Id"], amd["Id"], "another image");
    let err = host
        .berth_cfg(
            &cfg,
            &[
                "pull",
                "--platform",
                "linux/s390x",
                "--tls-verify=false",
                &reference,
            ],
        )
        .fails();
    assert!(
        err.contains("s390x"),
        "a platform the index lacks is named: {err}"
    );
}

#[test]
fn killed_pull_leaves_no_image_and_the_next_reuses_blobs() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let fx = registry_fixtures();
    let layers = fx.layers("big");
    let (big, small) = layers.split_last().expect("big has layers");
    // The big layer takes ~32 s at this rate: time for berth to store the small ones first.
    let slow = FakeRegistry::start(
        &host,
        FakeOptions {
            throttle: 2 << 20,
            ..FakeOptions::default()
        },
    );
    let reference = slow.image("big:big");
    let mut pull = host.spawn_berth(&cfg, &["pull", "--tls-verify=false", &reference]);
    // Kill once berth has stored every small blob while the big one is still on the wire.
    // `Download complete` is printed after the blob is stored under its digest (both digests
    // checked); the registry having sent a blob's last byte is not that point: berth may
    // still be unpacking that layer, seconds on a loaded machine.
    let stored =
        |out: &str, layer: &str| out.contains(&format!("{}: Download complete", short(layer)));
    let midway = berth_tests::wait_until(Duration::from_secs(60), || {
        let out = pull.output();
        slow.blob_gets().contains(big) && small.iter().all(|l| stored(&out, l))
    });
    assert!(
        midway,
        "berth never stored the small layers while fetching the big one:\n{}\nregistry log:\n{}",
        pull.output(),
        slow.log()
    );
    assert!(
        !slow.blobs_done().contains(big),
        "the big layer must still be downloading:\n{}",
        slow.log()
    );
    pull.process.signal(Signal::SIGKILL);
    assert!(
        pull.process.wait_timeout(Duration::from_secs(5)).is_some(),
        "pull killed"
    );
    assert!(
        !stored(&pull.output(), big),
        "the big layer was stored before the kill:\n{}",
        pull.output()
    );
    assert_no_image(&host, &reference);
    let port = slow.port();
    drop(slow);
    let fast = FakeRegistry::start_on(&host, port, FakeOptions::default());
    let digest = fx.field("big", "digest");
    // 64 MiB fetched, hashed twice and unpacked by a debug build: ~25 s on an idle 2-core
    // machine, over a minute under load; the deadline only guards against a hang.
    let out = host.berth_cfg_within(
        &cfg,
        &["pull", "--tls-verify=false", &reference],
        Duration::from_secs(300),
    );
    assert_pulled(&out, &reference, &digest, true);
    let refetched = fast.blob_gets();
    assert!(
        refetched.contains(big),
        "the big layer is fetched again:\n{}",
        fast.log()
    );
    for layer in small {
        assert!(
            !refetched.contains(layer),
            "completed blob {layer} reused, not fetched again:\n{}",
            fast.log()
        );
    }
    let size = host
        .cli(&["run", "--rm", &reference, "stat", "-c", "%s", "/big.bin"])
        .ok();
    assert_eq!(size, (64u64 << 20).to_string(), "the big file is whole");
}

#[test]
fn wrong_digest_fails_naming_both_and_leaves_no_image() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let fake = FakeRegistry::start(
        &host,
        FakeOptions {
            tamper: true,
            ..FakeOptions::default()
        },
    );
    let reference = fake.image("web:tampered");
    let out = pull_insecure(&host, &cfg, &reference);
    let err = out.fails();
    let expected = registry_fixtures()
        .layers("tampered")
        .pop()
        .expect("a layer");
    let log = fake.log();
    let served = log
        .lines()
        .find_map(|l| l.strip_prefix(&format!("tampered {expected} served=")))
        .unwrap_or_else(|| panic!("the fake never served the tampered layer:\n{log}"));
    assert!(
        err.contains(&expected) && err.contains(served),
        "the error names the expected {expected} and the actual {served}: {out}"
    );
    assert_no_image(&host, &reference);
    let again = pull_insecure(&host, &cfg, &reference);
    assert!(
        again.fails().contains(&expected),
        "the bad blob was not kept: {again}"
    );
}

#[test]
fn schema1_manifest_is_refused() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let fake = FakeRegistry::start(&host, FakeOptions::default());
    let reference = fake.image("web:schema1");
    let out = pull_insecure(&host, &cfg, &reference);
    assert!(
        mentions(
            &out.fails(),
            &["schema 1", "schema1", "schemaversion 1", "schema version 1"]
        ),
        "a clear refusal of schema 1: {out}"
    );
    assert_no_image(&host, &reference);
}

#[test]
fn unknown_tag_and_repo_are_clear_errors() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    for missing in [reg.image("web:nope"), reg.image("nosuch:latest")] {
        let out = pull_insecure(&host, &cfg, &missing);
        let err = out.fails();
        assert!(
            err.contains(&missing) && mentions(&err, &["not found", "unknown"]),
            "a clear message naming {missing}: {out}"
        );
    }
}

#[test]
fn run_pulls_missing_images_per_pull_policy() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_layout("multi", "multi:latest");
    let reference = reg.image("multi:latest");
    let cat = ["cat", "/etc/berth-layer1"];
    let never = [&["run", "--rm", "--pull", "never", &reference][..], &cat].concat();
    let out = host.berth_cfg(&cfg, &never);
    assert!(
        out.fails().contains(&reference),
        "--pull never of a missing image: {out}"
    );
    assert_no_image(&host, &reference);
    let run = [&["run", "--rm", "--tls-verify=false", &reference][..], &cat].concat();
    let out = host.berth_cfg(&cfg, &run);
    assert!(
        out.stderr
            .contains(&format!("Unable to find image '{reference}' locally")),
        "{out}"
    );
    assert!(out.ok().ends_with("layer one"), "{out}");
    let out = host.berth_cfg(&cfg, &never);
    assert_eq!(out.ok(), "layer one", "--pull never uses the local image");
    let manifests = || reg.log().matches("/v2/multi/manifests/").count();
    let before = manifests();
    let always = [
        &[
            "run",
            "--rm",
            "--pull",
            "always",
            "--tls-verify=false",
            &reference,
        ][..],
        &cat,
    ]
    .concat();
    let out = host.berth_cfg(&cfg, &always);
    assert!(out.ok().ends_with("layer one"), "{out}");
    assert!(
        manifests() > before,
        "--pull always asks the registry again"
    );
    let create = [
        "create",
        "--pull",
        "missing",
        "--name",
        "made",
        "--tls-verify=false",
        &reference,
    ];
    host.berth_cfg(&cfg, &create).ok();
}

#[test]
fn tag_save_and_load_back() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_layout("multi", "multi:latest");
    let reference = reg.image("multi:latest");
    pull_insecure(&host, &cfg, &reference).ok();
    host.cli(&["tag", &reference, "copy:v1"]).ok();
    let original = listed(&host, &reg.image("multi"), "latest").expect("pulled image listed");
    assert_eq!(
        listed(&host, "copy", "v1"),
        Some(original),
        "both names, one image"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("multi.tar");
    let archive_s = archive.to_str().expect("utf-8");
    host.cli(&["save", "-o", archive_s, &reference, "copy:v1"])
        .ok();
    let info = host_sh(
        &host,
        &format!("skopeo inspect docker-archive:{archive_s}:copy:v1"),
    );
    let info: serde_json::Value = serde_json::from_str(&info).expect("skopeo json");
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(3), "{info}");
    assert_eq!(info["Architecture"], "amd64", "{info}");
    let fresh = SandboxHost::new();
    let loaded = fresh.cli(&["load", "-i", archive_s]).ok();
    for name in [reference.as_str(), "copy:v1"] {
        assert!(
            loaded.contains(&format!("Loaded image: {name}")),
            "{loaded}"
        );
    }
    let out = fresh
        .cli(&["run", "--rm", "copy:v1", "cat", "/etc/berth-layer2"])
        .ok();
    assert_eq!(out, "layer two");
}

#[test]
fn image_prune_removes_unused_images() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    reg.push_layout("multi", "multi:latest");
    let (web, multi) = (reg.image("web:latest"), reg.image("multi:latest"));
    pull_insecure(&host, &cfg, &web).ok();
    pull_insecure(&host, &cfg, &multi).ok();
    host.cli(&["create", "--name", "keeper", &web]).ok();
    host.cli(&["image", "prune", "-f"]).ok();
    assert!(
        listed(&host, &reg.image("multi"), "latest").is_some(),
        "prune keeps tagged images"
    );
    host.cli(&["image", "prune", "-a", "-f"]).ok();
    assert_no_image(&host, &multi);
    assert!(
        listed(&host, &reg.image("web"), "latest").is_some(),
        "an image in use stays"
    );
    host.cli(&["rm", "keeper"]).ok();
    host.cli(&["image", "prune", "-a", "-f"]).ok();
    assert_no_image(&host, &web);
}

#[test]
fn digest_pulls_are_named_and_kept_by_prune() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    let digest = reg.manifest_digest("web:latest");
    let by_digest = format!("{}@{digest}", reg.image("web"));
    pull_insecure(&host, &cfg, &by_digest).ok();
    assert!(
        listed(&host, &reg.image("web"), "<none>").is_some(),
        "an image pulled by digest is listed under its repository"
    );
    host.cli(&["image", "prune", "-f"]).ok();
    host.cli(&["run", "--rm", "--pull", "never", &by_digest, "true"])
        .ok();
    // Without -f, prune asks even when stdin is a pipe: "n" keeps everything.
    let answer = host.sh(&format!(
        "echo n | {}",
        host.berth_shell_line(&["image", "prune", "-a"])
    ));
    assert!(answer.success(), "{answer}");
    host.cli(&["image", "inspect", &by_digest]).ok();
}

#[test]
fn explicit_platform_must_match_a_single_platform_image() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    let reference = reg.image("web:latest");
    let err = host
        .berth_cfg(
            &cfg,
            &[
                "pull",
                "--tls-verify=false",
                "--platform",
                "linux/arm64",
                &reference,
            ],
        )
        .fails();
    assert!(
        err.contains("wanted linux/arm64") && err.contains("linux/amd64"),
        "{err}"
    );
    assert_no_image(&host, &reference);
    host.berth_cfg(
        &cfg,
        &[
            "pull",
            "--tls-verify=false",
            "--platform",
            "linux/amd64",
            &reference,
        ],
    )
    .ok();
}

#[test]
fn new_tag_of_a_known_image_is_newer_and_save_merges_its_tags() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    reg.push_web("web:other");
    let (latest, other) = (reg.image("web:latest"), reg.image("web:other"));
    let digest = reg.manifest_digest("web:latest");
    pull_insecure(&host, &cfg, &latest).ok();
    assert_pulled(&pull_insecure(&host, &cfg, &other), &other, &digest, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("two.tar");
    let archive_s = archive.to_str().expect("utf-8");
    host.cli(&["save", "-o", archive_s, &latest, &other]).ok();
    let manifest = host_sh(&host, &format!("tar -xOf {archive_s} manifest.json"));
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    assert_eq!(manifest.as_array().map(Vec::len), Some(1), "{manifest}");
    assert_eq!(
        manifest[0]["RepoTags"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );
    host_sh(&host, &format!("skopeo inspect docker-archive:{archive_s}"));
    // A missing image writes nothing, not even to a pipe.
    let out = host.sh(&format!(
        "{} | wc -c",
        host.berth_shell_line(&["save", &reg.image("nosuch:1")])
    ));
    assert_eq!(out.stdout.trim(), "0", "{out}");
}

#[test]
fn broken_credentials_file_does_not_block_anonymous_pulls() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let reg = Registry::start(&host, RegistryAuth::Anonymous, false);
    reg.push_web("web:latest");
    let path = cfg.docker_config_json();
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&path, "{\"auths\": {").expect("write");
    let out = pull_insecure(&host, &cfg, &reg.image("web:latest"));
    out.ok();
    assert!(out.stderr.contains("without credentials"), "{out}");
}

#[test]
fn transient_cuts_are_retried_with_back_off() {
    require_root!();
    let host = SandboxHost::new();
    let cfg = ClientConfig::new();
    let fake = FakeRegistry::start(
        &host,
        FakeOptions {
            cut_first: 2,
            ..FakeOptions::default()
        },
    );
    let reference = fake.image("web:multi");
    let out = pull_insecure(&host, &cfg, &reference);
    let stdout = out.ok();
    assert!(
        stdout.contains("Retrying (attempt 2)") && stdout.contains("Retrying (attempt 3)"),
        "two cuts, two retries per layer: {out}"
    );
    let log = fake.log();
    assert!(
        log.contains(" cut bytes="),
        "the fake cut a download:\n{log}"
    );
    host.cli(&["run", "--rm", "--net", "none", &reference, "true"])
        .ok();
}
