//! `pull`, and the implicit pull of `run`/`create` (`--pull always|missing|never`), with
//! Docker's output: `TAG: Pulling from REPO`, a bar per layer on a terminal (plain lines
//! otherwise), then `Digest:` and `Status:` lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::sync::Mutex;

use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use berth_engine::Engine;
use berth_image::registry::{
    LayerState, NoProgress, Platform, PullEvent, PullProgress, RegistryOptions,
};
use berth_image::{Digest, ImageError, PullOptions, PullOutcome, Reference};

use crate::CmdResult;

/// Registry flags shared by `pull`, `run` and `create`.
#[derive(Clone, Debug, Args)]
pub struct RegistryFlags {
    /// Platform to pick from a multi-platform image (OS/ARCH[/VARIANT]; default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Verify the registry's TLS certificate (false also allows plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

impl RegistryFlags {
    /// The pull options these flags ask for.
    pub fn options(&self) -> anyhow::Result<PullOptions> {
        let platform = match &self.platform {
            Some(p) => Platform::from_str(p)?,
            None => Platform::host(),
        };
        Ok(PullOptions {
            platform,
            platform_explicit: self.platform.is_some(),
            registry: RegistryOptions::from_env(self.tls_verify),
        })
    }
}

/// Flags of `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Print only the image's name.
    #[arg(short = 'q', long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryFlags,
    /// Image: NAME[:TAG] or NAME@DIGEST.
    image: String,
}

/// `--pull` of `run`/`create`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull even if the image is present.
    Always,
    /// Pull only if the image is missing.
    #[default]
    Missing,
    /// Never pull; fail if missing.
    Never,
}

pub fn pull(mut engine: Engine, a: PullArgs) -> CmdResult {
    let reference = Reference::parse(&a.image)?;
    let opts = a.registry.options()?;
    let outcome = pull_with_output(&mut engine, &reference, &opts, a.quiet, Stream::Stdout)?;
    if a.quiet {
        println!("{}", reference.normalized());
    } else {
        print_status(&mut std::io::stdout(), &reference, &outcome)?;
    }
    Ok(0)
}

/// Makes sure the image of `run`/`create` is present as `policy` asks, pulling with progress on
/// stderr (stdout stays the container's). Returns nothing; the caller resolves the name.
pub fn ensure_image(
    engine: &mut Engine,
    image: &str,
    policy: PullPolicy,
    flags: &RegistryFlags,
) -> anyhow::Result<()> {
    let present = match engine.images.resolve(&engine.store, image) {
        Ok(_) => true,
        Err(ImageError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    let reference = match Reference::parse(image) {
        Ok(r) => r,
        Err(_) if present => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match (policy, present) {
        (PullPolicy::Never, false) => anyhow::bail!(
            "no such image: {image} (and --pull=never forbids pulling it); pull or load it first"
        ),
        (PullPolicy::Never, true) | (PullPolicy::Missing, true) => return Ok(()),
        (PullPolicy::Missing, false) => {
            eprintln!("Unable to find image '{reference}' locally");
        }
        (PullPolicy::Always, _) => {}
    }
    let opts = flags.options()?;
    let outcome = pull_with_output(engine, &reference, &opts, false, Stream::Stderr)?;
    print_status(&mut std::io::stderr(), &reference, &outcome)?;
    Ok(())
}

/// Where pull progress goes: `pull` prints on stdout, `run` on stderr.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn writer(self) -> Box<dyn Write + Send> {
        match self {
            Stream::Stdout => Box::new(std::io::stdout()),
            Stream::Stderr => Box::new(std::io::stderr()),
        }
    }

    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

fn pull_with_output(
    engine: &mut Engine,
    reference: &Reference,
    opts: &PullOptions,
    quiet: bool,
    stream: Stream,
) -> anyhow::Result<PullOutcome> {
    let mut out = stream.writer();
    if quiet {
        return Ok(engine
            .images
            .pull(&mut engine.store, reference, opts, &NoProgress)?);
    }
    let what = match (reference.tag(), reference.digest()) {
        (_, Some(d)) => d.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => "latest".into(),
    };
    writeln!(out, "{what}: Pulling from {}", reference.familiar_name())?;
    if stream.is_terminal() {
        let bars = Bars::new(stream);
        let result = engine
            .images
            .pull(&mut engine.store, reference, opts, &bars);
        // indicatif leaves the cursor at the end of the last bar's line.
        drop(bars);
        writeln!(out)?;
        return Ok(result?);
    }
    let lines = Lines::new(out);
    Ok(engine
        .images
        .pull(&mut engine.store, reference, opts, &lines)?)
}

fn print_status(
    out: &mut dyn Write,
    reference: &Reference,
    o: &PullOutcome,
) -> std::io::Result<()> {
    writeln!(out, "Digest: {}", o.manifest_digest)?;
    if o.up_to_date {
        writeln!(out, "Status: Image is up to date for {reference}")?;
    } else {
        writeln!(out, "Status: Downloaded newer image for {reference}")?;
    }
    writeln!(out, "{}", reference.normalized())
}

/// Docker's 12-hex short form of a layer digest.
fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// One line per layer state change (no bars): what `docker pull` prints when not on a terminal.
struct Lines {
    out: Mutex<Box<dyn Write + Send>>,
    downloading: Mutex<std::collections::HashSet<Digest>>,
}

impl Lines {
    fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            downloading: Mutex::default(),
        }
    }
}

impl PullProgress for Lines {
    fn event(&self, event: PullEvent) {
        let PullEvent::Layer { digest, state } = event else {
            return;
        };
        let text = match state {
            LayerState::Downloading { total, .. } => {
                let first = self
                    .downloading
                    .lock()
                    .map(|mut s| s.insert(digest.clone()))
                    .unwrap_or(false);
                if !first {
                    return;
                }
                format!("Downloading ({total} bytes)")
            }
            other => state_text(&other),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}: {text}", short(&digest));
        }
    }
}

fn state_text(state: &LayerState) -> String {
    match state {
        LayerState::AlreadyExists => "Already exists".into(),
        LayerState::Waiting => "Pulling fs layer".into(),
        LayerState::Downloading { .. } => "Downloading".into(),
        LayerState::Retrying { attempt, error } => {
            format!("Retrying (attempt {attempt}) after: {error}")
        }
        LayerState::DownloadComplete => "Download complete".into(),
        LayerState::AlreadyDownloaded => "Already downloaded, extracting".into(),
        LayerState::PullComplete => "Pull complete".into(),
    }
}

/// A bar per layer (size, rate, ETA) on a terminal.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    fn new(stream: Stream) -> Self {
        let target = match stream {
            Stream::Stdout => ProgressDrawTarget::stdout(),
            Stream::Stderr => ProgressDrawTarget::stderr(),
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::default(),
        }
    }

    fn bar(&self, digest: &Digest) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(digest.clone())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<16} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(short(digest));
                bar
            })
            .clone()
    }
}

impl PullProgress for Bars {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved { layers } => layers.iter().for_each(|d| {
                self.bar(d).set_message("Waiting");
            }),
            PullEvent::Layer { digest, state } => {
                let bar = self.bar(&digest);
                match state {
                    LayerState::Downloading { done, total } => {
                        bar.set_length(total);
                        bar.set_position(done);
                        bar.set_message("Downloading");
                    }
                    LayerState::PullComplete | LayerState::AlreadyExists => {
                        // Finished lines read like Docker's: no bar, rate or ETA.
                        if let Ok(style) = ProgressStyle::with_template("{prefix}: {msg}") {
                            bar.set_style(style);
                        }
                        bar.finish_with_message(state_text(&state));
                    }
                    LayerState::DownloadComplete => {
                        if let Some(len) = bar.length() {
                            bar.set_position(len);
                        }
                        bar.set_message(state_text(&state));
                    }
                    other => bar.set_message(state_text(&other)),
                }
            }
        }
    }
}
