//! Fetching one layer: download its blob while unpacking it, verify both digests, retry
//! transient failures.
//!
//! The blob streams into `blobs/sha256/.pull-<pid>-*` and, through a bounded channel, into a
//! blocking thread that decompresses and unpacks it into `layers/.tmp-<pid>-*`, so a layer is
//! unpacked by the time its last byte arrives. Only a blob whose digest checked out is renamed
//! to `blobs/sha256/<hex>`; a later pull that finds it there unpacks it without downloading
//! (an interrupted pull resumes at blob granularity). The pid in the temp names lets the
//! store's sweep remove what a killed pull left. Digests: OCI image spec `descriptor.md`
//! (blob digest) and `config.md` (`rootfs.diff_ids`, the digest of the uncompressed tar).

use std::io::{self, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::errors::{DigestError as OciDigestError, OciDistributionError};
use oci_client::manifest::OciDescriptor;
use tokio::sync::mpsc;

use super::client::{chain, is_transient, Session, BACKOFF, MAX_ATTEMPTS};
use super::progress::{LayerState, PullEvent, PullProgress};
use super::RegistryError;
use crate::compression::decompress;
use crate::digest::{Digest, HashingReader};
use crate::error::{io_err, ImageError};
use crate::store::ImageStore;
use crate::unpack::unpack_layer;

/// Chunks buffered between the download and the unpacking thread.
const CHANNEL_CHUNKS: usize = 64;
/// Progress is reported every this many bytes.
const PROGRESS_STEP: u64 = 256 * 1024;

/// A layer downloaded (or found as a blob) and unpacked into a temp directory, not yet
/// committed.
pub(crate) struct FetchedLayer {
    /// Verified sha256 of the uncompressed tar.
    pub(crate) diff_id: Digest,
    /// The blob's digest (stored under `blobs/sha256/`).
    pub(crate) blob: Digest,
    /// Regular-file bytes.
    pub(crate) size: u64,
    /// `layers/.tmp-<pid>-*`, renamed into place at commit.
    pub(crate) unpacked: tempfile::TempDir,
}

/// What one download attempt ended with.
enum AttemptError {
    /// Worth retrying (connection reset, timeout, 5xx, 429).
    Transient(String),
    /// Final.
    Fatal(ImageError),
}

/// One layer of a manifest and the diff_id its config declares.
pub(crate) struct LayerJob {
    pub(crate) descriptor: OciDescriptor,
    pub(crate) blob: Digest,
    pub(crate) diff_id: Digest,
}

/// Fetches and unpacks one layer, reusing a complete blob already in the store.
///
/// Errors: [`RegistryError::DigestMismatch`] (blob discarded), [`ImageError::DiffIdMismatch`],
/// [`ImageError::Unpack`], and the registry's errors after [`MAX_ATTEMPTS`] attempts.
pub(crate) async fn fetch_layer(
    session: &Session,
    store: &ImageStore,
    job: &LayerJob,
    progress: &dyn PullProgress,
) -> Result<FetchedLayer, ImageError> {
    let blob_path = store.blob_path(&job.blob);
    if blob_path.exists() {
        progress.event(layer_event(&job.blob, LayerState::AlreadyDownloaded));
        let file = std::fs::File::open(&blob_path).map_err(io_err("open blob", &blob_path))?;
        let unpacked = store.layer_tmp_dir()?;
        let dest = unpacked.path().to_path_buf();
        let (diff_id, size) = tokio::task::spawn_blocking(move || unpack_stream(file, dest))
            .await
            .map_err(|e| join_err(&blob_path, e))??;
        return finish(job, diff_id, size, unpacked, progress);
    }
    let mut attempt = 1;
    loop {
        match download_once(session, store, job, progress).await {
            Ok(layer) => return Ok(layer),
            Err(AttemptError::Fatal(e)) => return Err(e),
            Err(AttemptError::Transient(error)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(blob = %job.blob, attempt, %error, "transient download error");
                attempt += 1;
                progress.event(layer_event(
                    &job.blob,
                    LayerState::Retrying { attempt, error },
                ));
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 2)).await;
            }
            Err(AttemptError::Transient(error)) => {
                return Err(RegistryError::Other {
                    registry: session.registry.clone(),
                    detail: format!(
                        "download of blob {} failed {MAX_ATTEMPTS} times, last: {error}",
                        job.blob
                    ),
                }
                .into())
            }
        }
    }
}

/// One download of the blob into a temp file and the unpacker.
async fn download_once(
    session: &Session,
    store: &ImageStore,
    job: &LayerJob,
    progress: &dyn PullProgress,
) -> Result<FetchedLayer, AttemptError> {
    let fatal = |e: ImageError| AttemptError::Fatal(e);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".pull-{}-", std::process::id()))
        .tempfile_in(
            store
                .blob_path(&job.blob)
                .parent()
                .unwrap_or(std::path::Path::new(".")),
        )
        .map_err(|e| {
            fatal(io_err("create temp blob for", store.blob_path(&job.blob))(
                e,
            ))
        })?;
    let unpacked = store.layer_tmp_dir().map_err(fatal)?;
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let dest = unpacked.path().to_path_buf();
    let unpacker = tokio::task::spawn_blocking(move || unpack_stream(ChannelReader::new(rx), dest));
    let streamed = stream_blob(session, job, &mut tmp, tx, progress).await;
    // Always wait for the unpacker, even on error: it must not write into `unpacked` while
    // that temp dir is being removed (a half-removed `.tmp-*` would outlive the attempt).
    let unpack = unpacker.await;
    streamed?;
    let blob_path = store.blob_path(&job.blob);
    let unpack = unpack.map_err(|e| fatal(join_err(&blob_path, e)))?;
    let (diff_id, size) = unpack.map_err(fatal)?;
    tmp.persist(&blob_path)
        .map_err(|e| fatal(io_err("store blob", &blob_path)(e.error)))?;
    progress.event(layer_event(&job.blob, LayerState::DownloadComplete));
    finish(job, diff_id, size, unpacked, progress).map_err(fatal)
}

/// Streams the blob into `tmp` and, chunk by chunk, to the unpacker behind `tx` (dropped on
/// return, which ends the unpacker's input).
async fn stream_blob(
    session: &Session,
    job: &LayerJob,
    tmp: &mut tempfile::NamedTempFile,
    tx: mpsc::Sender<Bytes>,
    progress: &dyn PullProgress,
) -> Result<(), AttemptError> {
    let mut stream = session
        .client
        .pull_blob_stream(&session.oci_ref, &job.descriptor)
        .await
        .map_err(|e| attempt_error(session, e))?;
    let total = u64::try_from(job.descriptor.size).unwrap_or(0);
    let (mut done, mut reported) = (0u64, 0u64);
    progress.event(layer_event(
        &job.blob,
        LayerState::Downloading { done, total },
    ));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| stream_error(session, job, e))?;
        tmp.write_all(&chunk)
            .map_err(|e| AttemptError::Fatal(io_err("write blob", tmp.path())(e)))?;
        done += chunk.len() as u64;
        if done - reported >= PROGRESS_STEP {
            reported = done;
            progress.event(layer_event(
                &job.blob,
                LayerState::Downloading { done, total },
            ));
        }
        if tx.send(chunk).await.is_err() {
            break; // the unpacker stopped: its error is the one to report
        }
    }
    Ok(())
}

/// Checks the diff_id and reports the layer complete.
fn finish(
    job: &LayerJob,
    diff_id: Digest,
    size: u64,
    unpacked: tempfile::TempDir,
    progress: &dyn PullProgress,
) -> Result<FetchedLayer, ImageError> {
    if diff_id != job.diff_id {
        return Err(ImageError::DiffIdMismatch {
            expected: job.diff_id.to_string(),
            actual: diff_id.to_string(),
        });
    }
    progress.event(layer_event(&job.blob, LayerState::PullComplete));
    Ok(FetchedLayer {
        diff_id,
        blob: job.blob.clone(),
        size,
        unpacked,
    })
}

/// Classifies an error of the blob request (before any byte).
fn attempt_error(session: &Session, e: OciDistributionError) -> AttemptError {
    if is_transient(&e) {
        AttemptError::Transient(chain(&e))
    } else {
        AttemptError::Fatal(session.classify(e).into())
    }
}

/// Classifies an error in the middle of (or at the end of) the body: a digest mismatch is
/// final, anything else (connection cut) is retried.
fn stream_error(session: &Session, job: &LayerJob, e: io::Error) -> AttemptError {
    let mismatch = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<OciDigestError>());
    if let Some(OciDigestError::VerificationError { actual, .. }) = mismatch {
        return AttemptError::Fatal(
            RegistryError::DigestMismatch {
                registry: session.registry.clone(),
                expected: job.blob.to_string(),
                actual: actual.clone(),
            }
            .into(),
        );
    }
    AttemptError::Transient(chain(&e))
}

fn layer_event(digest: &Digest, state: LayerState) -> PullEvent {
    PullEvent::Layer {
        digest: digest.clone(),
        state,
    }
}

fn join_err(path: &std::path::Path, e: tokio::task::JoinError) -> ImageError {
    io_err("unpack layer blob", path)(io::Error::other(e.to_string()))
}

/// Decompresses and unpacks `reader` into `dest`; returns the diff_id and size. Reads the
/// input to its end so the sender never blocks on a reader that stopped at the tar trailer.
fn unpack_stream(mut reader: impl Read, dest: PathBuf) -> Result<(Digest, u64), ImageError> {
    let (tar, _) = decompress(&mut reader).map_err(io_err("read layer blob for", &dest))?;
    let mut hashing = HashingReader::new(tar);
    let stats = unpack_layer(&mut hashing, &dest)?;
    let (diff_id, _) = hashing
        .finish()
        .map_err(io_err("read layer blob for", &dest))?;
    io::copy(&mut reader, &mut io::sink()).map_err(io_err("read layer blob for", &dest))?;
    Ok((diff_id, stats.size))
}

/// A [`Read`] over the chunks of a channel; end of input when the sender is dropped.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_reader_concatenates_chunks_until_the_sender_goes() {
        let (tx, rx) = mpsc::channel(4);
        let feeder = std::thread::spawn(move || {
            for part in [&b"ab"[..], b"", b"cde"] {
                tx.blocking_send(Bytes::copy_from_slice(part)).unwrap();
            }
        });
        let mut out = String::new();
        ChannelReader::new(rx).read_to_string(&mut out).unwrap();
        feeder.join().unwrap();
        assert_eq!(out, "abcde");
    }
}
