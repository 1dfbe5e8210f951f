//! Transparent decompression of layers and archives, chosen by sniffing magic bytes:
//! gzip (`1f 8b`, RFC 1952), zstd (`28 b5 2f fd`, RFC 8878) or plain tar.

use std::io::{self, Cursor, Read};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The compression found at the start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip, possibly multi-member.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// Peeks at the first bytes of `reader` and returns a reader of its decompressed content,
/// with the compression found.
///
/// Errors: I/O errors of the first read, or of the zstd decoder's setup.
pub fn decompress<'a, R: Read + 'a>(
    mut reader: R,
) -> io::Result<(Box<dyn Read + 'a>, Compression)> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match reader.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &magic[..filled];
    let whole = Cursor::new(head.to_vec()).chain(reader);
    if head.starts_with(GZIP_MAGIC) {
        Ok((
            Box::new(flate2::read::MultiGzDecoder::new(whole)),
            Compression::Gzip,
        ))
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok((
            Box::new(zstd::stream::read::Decoder::new(whole)?),
            Compression::Zstd,
        ))
    } else {
        Ok((Box::new(whole), Compression::None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(data: &[u8]) -> (Vec<u8>, Compression) {
        let (mut r, c) = decompress(data).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (out, c)
    }

    #[test]
    fn sniffs_each_format() {
        let plain = b"hello layer".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        assert_eq!(roundtrip(&plain), (plain.clone(), Compression::None));
        assert_eq!(roundtrip(&gz), (plain.clone(), Compression::Gzip));
        assert_eq!(roundtrip(&zst), (plain.clone(), Compression::Zstd));
        assert_eq!(roundtrip(b"x"), (b"x".to_vec(), Compression::None));
    }
}
