//! Content digests (`sha256:<64 hex>`) and a reader that hashes what passes through it.
//!
//! Only sha256 is accepted: it is what Docker and the OCI image spec (`descriptor.md`,
//! "Digests") require of image ids, diff_ids and blobs in practice.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Errors of digest parsing.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The text is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {input:?}: expected sha256:<64 lowercase hex digits>")]
    Invalid {
        /// What was given.
        input: String,
    },
}

/// A validated sha256 content digest, rendered `sha256:<64 hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    ///
    /// Errors: [`DigestError::Invalid`] for any other algorithm or a malformed hex part.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        match input.strip_prefix("sha256:") {
            Some(hex) if is_sha256_hex(hex) => Ok(Self(input.to_string())),
            _ => Err(DigestError::Invalid {
                input: input.to_string(),
            }),
        }
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The 64 hex digits, without the algorithm prefix (used as file names).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True if `hex` is exactly 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A reader that computes the sha256 and byte count of everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads whatever is left (tar readers stop before the trailing padding), then returns
    /// the digest of the whole stream and its length in bytes.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.finalize());
        Ok((Digest(format!("sha256:{hex}")), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hashes() {
        let d = Digest::of_bytes(b"abc");
        assert_eq!(
            d.as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.hex().len(), 64);
        assert!(Digest::parse("sha512:ab").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase()).is_err());
        assert!(Digest::parse("sha256:../../etc").is_err());
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.finish().unwrap(), (d, 3));
    }
}
