//! Image commands: `load`, `import`, `images`, `rmi`, `image inspect|ls|rm`.

use std::io::Read;

use clap::{Args, Subcommand};

use berth_engine::Engine;
use berth_image::Reference;

use crate::cmd::ps::print_table;
use crate::CmdResult;

/// Flags of `load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read (default: stdin).
    #[arg(short = 'i', long)]
    input: Option<std::path::PathBuf>,
    /// Print nothing.
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Flags of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, WORKDIR, USER, LABEL).
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    /// Rootfs tarball, or - for stdin.
    file: String,
    /// Name for the image.
    reference: Option<String>,
}

/// Flags of `images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Flags of `rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image with several tags by id.
    #[arg(short = 'f', long)]
    force: bool,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// Flags of `tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image (name or id).
    source: String,
    /// The new name, NAME[:TAG].
    target: String,
}

/// Flags of `save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
    /// Images (names or ids).
    #[arg(required = true)]
    images: Vec<String>,
}

/// Flags of `image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show images as JSON.
    Inspect {
        /// Images.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List images.
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Import a rootfs tarball.
    Import(ImportArgs),
    /// Download an image from a registry.
    Pull(crate::cmd::pull::PullArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Write images to a docker-archive.
    Save(SaveArgs),
    /// Remove unused images.
    Prune(PruneArgs),
}

fn open_input(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Read>> {
    Ok(match path {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p.display()))?,
        )),
    })
}

pub fn load(mut engine: Engine, a: LoadArgs) -> CmdResult {
    let input = open_input(a.input.as_deref())?;
    let loaded = engine.images.load(&mut engine.store, input)?;
    if loaded.is_empty() {
        anyhow::bail!("the archive holds no image (its manifest lists none): nothing was loaded");
    }
    if !a.quiet {
        for img in loaded {
            if img.tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in img.tags {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(0)
}

pub fn import(mut engine: Engine, a: ImportArgs) -> CmdResult {
    let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
    let input = open_input(Some(std::path::Path::new(&a.file)))?;
    let img = engine
        .images
        .import(&mut engine.store, input, reference.as_ref(), &a.changes)?;
    println!("{}", img.id);
    Ok(0)
}

pub fn images(engine: Engine, a: ImagesArgs) -> CmdResult {
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for img in engine.images.list(&engine.store)? {
        let short = img.id.hex()[..12].to_string();
        if a.quiet {
            println!("{short}");
            continue;
        }
        let created = chrono::DateTime::parse_from_rfc3339(&img.created)
            .map(|t| {
                format!(
                    "{} ago",
                    berth_engine::status::human_duration(now - t.with_timezone(&chrono::Utc))
                )
            })
            .unwrap_or_else(|_| "N/A".into());
        let size = human_size(img.size);
        if img.tags.is_empty() {
            // Pulled by digest: Docker lists the repository with tag <none>.
            let digests = engine.images.repo_digests_of(&engine.store, &img.id)?;
            let mut repos: Vec<String> = digests
                .iter()
                .map(|d| d.split('@').next().unwrap_or(d).to_string())
                .collect();
            repos.dedup();
            if repos.is_empty() {
                repos.push("<none>".into());
            }
            for repo in repos {
                rows.push([
                    repo,
                    "<none>".into(),
                    short.clone(),
                    created.clone(),
                    size.clone(),
                ]);
            }
        }
        for t in img.tags {
            let name = t.familiar_name();
            let tag = t.tag().unwrap_or("<none>").to_string();
            rows.push([name, tag, short.clone(), created.clone(), size.clone()]);
        }
    }
    if !a.quiet {
        print_table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
    }
    Ok(0)
}

/// Docker's decimal sizes (go-units `HumanSize`): `4.2MB`.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{:.3}", v)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + units[i]
}

pub fn rmi(mut engine: Engine, a: RmiArgs) -> CmdResult {
    let mut code = 0;
    for name in &a.images {
        match remove_one(&mut engine, name, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("berth: {}", crate::error_text(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn remove_one(engine: &mut Engine, name: &str, force: bool) -> anyhow::Result<Vec<String>> {
    let id = engine.images.resolve(&engine.store, name)?;
    let users = berth_engine::state::using_image(engine.store.conn(), id.as_str())?;
    let tags = engine.images.tags_of(&engine.store, &id)?;
    let untag_only = tags.len() > 1 && Reference::parse(name).is_ok_and(|r| tags.contains(&r));
    if !users.is_empty() && !untag_only {
        anyhow::bail!(
            "cannot remove image {name}: it is used by container(s) {}; remove them first (berth rm)",
            users.join(", ")
        );
    }
    let actions = engine.images.remove(&mut engine.store, name, force)?;
    Ok(actions.iter().map(ToString::to_string).collect())
}

pub fn image(engine: Engine, c: ImageCommand) -> CmdResult {
    match c {
        ImageCommand::Inspect { images } => {
            let mut docs = Vec::new();
            let mut code = 0;
            for i in &images {
                match engine.images.inspect(&engine.store, i) {
                    Ok(d) => docs.push(serde_json::to_value(d)?),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&docs)?);
            Ok(code)
        }
        ImageCommand::Ls(a) => images(engine, a),
        ImageCommand::Rm(a) => rmi(engine, a),
        ImageCommand::Load(a) => load(engine, a),
        ImageCommand::Import(a) => import(engine, a),
        ImageCommand::Pull(a) => crate::cmd::pull::pull(engine, a),
        ImageCommand::Tag(a) => tag(engine, a),
        ImageCommand::Save(a) => save(engine, a),
        ImageCommand::Prune(a) => prune(engine, a),
    }
}

pub fn tag(mut engine: Engine, a: TagArgs) -> CmdResult {
    let target = Reference::parse(&a.target)?;
    engine.images.tag(&mut engine.store, &a.source, &target)?;
    Ok(0)
}

pub fn save(engine: Engine, a: SaveArgs) -> CmdResult {
    match &a.output {
        Some(path) => {
            // Write beside the target and rename: a failed save leaves no truncated archive.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".berth-save-")
                .tempfile_in(dir)
                .map_err(|e| {
                    // tempfile's error names its own random file; name the user's instead.
                    let e = std::io::Error::new(
                        e.kind(),
                        e.to_string()
                            .split(" at path")
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    anyhow::anyhow!("cannot write {}: {e}", path.display())
                })?;
            let writer = std::io::BufWriter::new(tmp.as_file());
            engine.images.save(&engine.store, &a.images, writer)?;
            tmp.persist(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "refusing to write an archive to a terminal; use -o FILE or redirect stdout"
                );
            }
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            engine.images.save(&engine.store, &a.images, out)?;
        }
    }
    Ok(0)
}

pub fn prune(mut engine: Engine, a: PruneArgs) -> CmdResult {
    if !a.force {
        // Like Docker, ask even when stdin is not a terminal (`echo y | berth image prune`).
        eprint!(
            "WARNING! This will remove all {} images.\nAre you sure you want to continue? [y/N] ",
            if a.all { "unused" } else { "dangling" }
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !line.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let in_use = berth_engine::state::image_ids_in_use(engine.store.conn())?
        .iter()
        .filter_map(|id| berth_image::Digest::parse(id).ok())
        .collect();
    let actions = engine.images.prune(&mut engine.store, a.all, &in_use)?;
    if !actions.is_empty() {
        println!("Deleted Images:");
    }
    for action in &actions {
        println!("{action}");
    }
    Ok(0)
}
