//! Progress of a pull, as events a front end turns into bars or lines.
//!
//! The states mirror the lines of `docker pull` (`Pulling fs layer`, `Downloading`,
//! `Download complete`, `Extracting`, `Pull complete`, `Already exists`) so output reads the
//! same to a Docker user; the engine never prints, the CLI decides how.

use crate::digest::Digest;

/// Where one layer of a pull stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerState {
    /// The store already has the unpacked layer: nothing to fetch.
    AlreadyExists,
    /// Queued behind other downloads.
    Waiting,
    /// Bytes received so far of `total` (the manifest's size, bytes).
    Downloading {
        /// Bytes received.
        done: u64,
        /// Bytes expected.
        total: u64,
    },
    /// A transient error; the download restarts after a back-off.
    Retrying {
        /// 1-based attempt about to start.
        attempt: u32,
        /// What failed.
        error: String,
    },
    /// All bytes arrived and their digest checked out.
    DownloadComplete,
    /// The blob was already complete in the store (an earlier pull was interrupted after it).
    AlreadyDownloaded,
    /// The layer is unpacked and verified.
    PullComplete,
}

/// An event of a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// The manifest was resolved; layers follow in order, base first.
    Resolved {
        /// Layer blob digests, base first.
        layers: Vec<Digest>,
    },
    /// A layer changed state.
    Layer {
        /// The layer's blob digest (what `docker pull` shows, shortened).
        digest: Digest,
        /// Its new state.
        state: LayerState,
    },
}

/// Receives pull events; called from download tasks, so it must be thread-safe and quick.
pub trait PullProgress: Send + Sync {
    /// One event.
    fn event(&self, event: PullEvent);
}

/// Ignores every event (`pull -q`, tests).
#[derive(Debug, Default)]
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn event(&self, _: PullEvent) {}
}
