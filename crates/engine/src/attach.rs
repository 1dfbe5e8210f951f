//! The attach protocol between a container's monitor and a CLI process (`run` without `-d`,
//! `start -a`), over the unix socket `<runroot>/containers/<id>/attach.sock`.
//!
//! Client → monitor: one byte of flags ([`WANT_STDIN`]).
//! Monitor → client: a hello frame carrying, as `SCM_RIGHTS` (unix(7)), the container's stdin
//! (the pty master with `-t`, else the write end of the stdin pipe, handed out once so the
//! container sees EOF when the client's input ends), then output frames until an exit frame.
//! A frame is `[kind: u8][len: u32 big-endian][payload]`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Client flag: the client wants the container's stdin.
pub const WANT_STDIN: u8 = 1;

/// Kinds of frame the monitor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// First frame; may carry the stdin fd.
    Hello = 0,
    /// Bytes the container wrote to stdout (or to its terminal).
    Stdout = 1,
    /// Bytes the container wrote to stderr.
    Stderr = 2,
    /// The container exited; payload is the exit code in decimal ASCII.
    Exit = 3,
}

impl FrameKind {
    fn from_u8(b: u8) -> io::Result<Self> {
        Ok(match b {
            0 => Self::Hello,
            1 => Self::Stdout,
            2 => Self::Stderr,
            3 => Self::Exit,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame kind")),
        })
    }
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind as u8);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(FrameKind, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let kind = FrameKind::from_u8(head[0])?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// Sends the hello frame, with `fd` attached as `SCM_RIGHTS` when given.
pub fn send_hello(sock: &UnixStream, fd: Option<RawFd>) -> io::Result<()> {
    berth_sys::fd::send_with_fd(sock, &[FrameKind::Hello as u8, 0, 0, 0, 0], fd)
}

/// Receives one `SCM_RIGHTS` fd along with up to `buf.len()` bytes. Used for the hello frame
/// and for the runtime's console socket (the OCI runtime sends the pty master this way:
/// runc `docs/terminals.md`).
pub fn recv_fd(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    berth_sys::fd::recv_with_fd(sock, buf)
}

/// Client side: connects, asks for stdin if wanted, and reads the hello. Returns the stream
/// (positioned after the hello) and the stdin fd the monitor handed over, if any.
pub fn connect(
    path: &std::path::Path,
    want_stdin: bool,
) -> io::Result<(UnixStream, Option<OwnedFd>)> {
    let mut sock = UnixStream::connect(path)?;
    sock.write_all(&[if want_stdin { WANT_STDIN } else { 0 }])?;
    let mut head = [0u8; 5];
    let (n, fd) = recv_fd(&sock, &mut head)?;
    if n != 5 || head[0] != FrameKind::Hello as u8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the container's monitor sent no hello on the attach socket",
        ));
    }
    Ok((sock, fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, FrameKind::Stdout, b"hello").unwrap();
        write_frame(&mut buf, FrameKind::Exit, b"3").unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((FrameKind::Stdout, b"hello".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((FrameKind::Exit, b"3".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn hello_carries_an_fd() {
        let (a, b) = UnixStream::pair().unwrap();
        let (pr, pw) = std::os::unix::net::UnixStream::pair().unwrap();
        send_hello(&a, Some(pw.as_raw_fd())).unwrap();
        let mut head = [0u8; 5];
        let (n, fd) = recv_fd(&b, &mut head).unwrap();
        assert_eq!(n, 5);
        let mut got = UnixStream::from(fd.expect("fd passed"));
        drop(pw);
        got.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        (&pr).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }
}
