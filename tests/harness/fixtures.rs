//! Fixture images, built once per `cargo test` run by `tests/fixtures/build-image.sh` and
//! cached under `target/berth-fixtures`, guarded by a file lock so that parallel test
//! processes (nextest runs one per test) never race on the build.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

/// Paths of the built fixture archives (all tagged/named `web:latest`).
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// Cache directory holding the archives.
    pub dir: PathBuf,
    /// `web.docker.tar`: docker-archive written by skopeo.
    pub docker_archive: PathBuf,
    /// `web.oci.tar`: oci-archive written by skopeo, ref `web:latest`.
    pub oci_archive: PathBuf,
    /// `rootfs.tar`: the flat root filesystem, for `berth import`.
    pub rootfs_tar: PathBuf,
}

/// The workspace root (parent of this package's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds (at most once per run, and only if the cache is missing or older than the build
/// script) and returns the fixture images. Panics with the script's output if the build fails.
pub fn fixture_images() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| build().unwrap_or_else(|e| panic!("fixture images: {e:#}")))
}

fn build() -> anyhow::Result<Fixtures> {
    let dir = target_dir().join("berth-fixtures");
    std::fs::create_dir_all(&dir)?;
    let fx = Fixtures {
        docker_archive: dir.join("web.docker.tar"),
        oci_archive: dir.join("web.oci.tar"),
        rootfs_tar: dir.join("rootfs.tar"),
        dir: dir.clone(),
    };
    let lock_file = File::create(dir.join(".lock"))?;
    // The exclusive lock serialises the check-and-build across test processes; it is
    // released when `_lock` drops.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", dir.display()))?;
    let script = workspace_root().join("tests/fixtures/build-image.sh");
    let stamp = dir.join(".stamp");
    if !is_fresh(&stamp, &script) {
        let out = Command::new("bash").arg(&script).arg(&dir).output()?;
        if !out.status.success() {
            anyhow::bail!(
                "{} failed: {}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(&stamp, b"built\n")?;
    }
    Ok(fx)
}

/// The stamp exists and is newer than the build script.
fn is_fresh(stamp: &Path, script: &Path) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((mtime(stamp), mtime(script)), (Some(s), Some(b)) if s >= b)
}
