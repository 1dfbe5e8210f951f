//! File descriptor plumbing the engine needs: taking ownership of an inherited descriptor,
//! passing descriptors over unix sockets (`SCM_RIGHTS`, unix(7)), opening a file with a
//! directory as the root of path resolution (openat2(2) `RESOLVE_IN_ROOT`), and the host's
//! open-files hard limit (getrlimit(2)).

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, openat2, FcntlArg, OFlag, OpenHow, ResolveFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

/// Takes ownership of descriptor `fd` that this process inherited from its parent (its number
/// given on the command line). Sets close-on-exec so it does not leak further.
///
/// Errors: `EBADF` if `fd` is not open (the only check possible: the caller must not own the
/// number elsewhere).
pub fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    fcntl(fd, FcntlArg::F_GETFD)?;
    // SAFETY: F_GETFD just proved `fd` is open; it was inherited across exec and nothing in
    // this process has wrapped it (callers take each inherited number exactly once).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(
        owned.as_raw_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(owned)
}

/// Sends `data` (at least one byte, as unix(7) requires for ancillary data) with `fd`
/// attached as `SCM_RIGHTS` when given.
pub fn send_with_fd(sock: &impl AsRawFd, data: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let fds = fd.map(|f| [f]);
    let cmsgs: Vec<ControlMessage<'_>> = fds
        .as_ref()
        .map(|f| vec![ControlMessage::ScmRights(f)])
        .unwrap_or_default();
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives up to `buf.len()` bytes and at most one `SCM_RIGHTS` descriptor (extra ones are
/// closed). Returns the byte count and the descriptor, owned, close-on-exec.
pub fn recv_with_fd(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut first = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel installed `f` in our table while receiving this message;
                // no other owner exists. Extra descriptors are dropped (closed) right away.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                if first.is_none() {
                    first = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, first))
}

/// Opens `path` read-only with `root` as the root of path resolution (openat2(2)
/// `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, Linux >= 5.6): absolute symlinks and `..` cannot
/// leave `root`. `Ok(None)` when it does not exist; an error when it is not a regular file.
pub fn open_in_root(root: &Path, path: &str) -> io::Result<Option<File>> {
    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let root_fd = unsafe { OwnedFd::from_raw_fd(root_fd) };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(root_fd.as_raw_fd(), path, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: `openat2` just returned this descriptor and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(Some(file))
}

/// The hard `RLIMIT_NOFILE` of this process (getrlimit(2)); root without CAP_SYS_RESOURCE
/// cannot give a container more.
pub fn nofile_hard_limit() -> io::Result<u64> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    Ok(hard)
}

/// Longest unix socket path the kernel takes: `sizeof(sun_path)` = 108 with its NUL (unix(7)).
pub const SUN_PATH_MAX: usize = 107;

/// A unix socket path short enough for `bind`/`connect` however deep its directory is.
///
/// When `dir/name` fits in [`SUN_PATH_MAX`] it is used as is. Otherwise the directory is
/// opened (`O_PATH`) and the path goes through its descriptor, `/proc/<pid>/fd/<n>/name`:
/// the kernel resolves that magic link to the directory, so the socket file is still
/// `dir/name`, and any process that may read this process's /proc entry (root here, e.g. the
/// OCI runtime connecting to a console socket) can use the same path while this value lives.
#[derive(Debug)]
pub struct SocketPath {
    path: std::path::PathBuf,
    _dir: Option<OwnedFd>,
}

impl SocketPath {
    /// Builds the path of socket `name` in `dir`.
    ///
    /// Errors: the directory cannot be opened (only tried when the path is too long).
    pub fn new(dir: &Path, name: &str) -> io::Result<Self> {
        let full = dir.join(name);
        if full.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(Self {
                path: full,
                _dir: None,
            });
        }
        let fd = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = format!("/proc/{}/fd/{}/{name}", std::process::id(), fd.as_raw_fd()).into();
        Ok(Self {
            path,
            _dir: Some(fd),
        })
    }

    /// The path to pass to `bind`/`connect`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn fds_pass_over_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut pr, pw) = UnixStream::pair().unwrap();
        send_with_fd(&a, b"x", Some(pw.as_raw_fd())).unwrap();
        drop(pw);
        let mut buf = [0u8; 4];
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(n, 1);
        let mut got = UnixStream::from(fd.expect("an fd"));
        got.write_all(b"ok").unwrap();
        let mut two = [0u8; 2];
        pr.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ok");
    }

    #[test]
    fn open_in_root_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("etc/escape")).unwrap();
        assert!(open_in_root(d.path(), "/etc/passwd").unwrap().is_some());
        // The absolute link resolves inside the root, where /etc/hostname does not exist.
        assert!(open_in_root(d.path(), "/etc/escape").unwrap().is_none());
        assert!(open_in_root(d.path(), "/nope").unwrap().is_none());
    }

    #[test]
    fn bad_fd_is_refused() {
        assert!(take_inherited(987_654).is_err());
    }

    #[test]
    fn nofile_limit_is_positive() {
        assert!(nofile_hard_limit().unwrap() > 0);
    }

    #[test]
    fn long_socket_paths_go_through_proc() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sp = SocketPath::new(&deep, "attach.sock").unwrap();
        assert!(sp.path().as_os_str().len() <= SUN_PATH_MAX);
        let l = std::os::unix::net::UnixListener::bind(sp.path()).unwrap();
        assert!(deep.join("attach.sock").exists());
        let _c =
            UnixStream::connect(SocketPath::new(&deep, "attach.sock").unwrap().path()).unwrap();
        assert!(l.accept().is_ok());
        let short = SocketPath::new(d.path(), "s").unwrap();
        assert_eq!(short.path(), d.path().join("s"));
    }
}
