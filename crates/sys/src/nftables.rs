//! Set and map elements of nf_tables over netlink (`NETLINK_NETFILTER`), for the one
//! operation on berth's start path: adding and removing a container's published-port
//! elements. Everything else (tables, chains, rules) goes through the `nft` tool; spawning it
//! costs 5–15 ms per call here, a batch sent directly well under a millisecond.
//!
//! Wire format (linux `include/uapi/linux/netfilter/nf_tables.h`, `nfnetlink.h`): a batch is
//! `NFNL_MSG_BATCH_BEGIN`, the element messages, `NFNL_MSG_BATCH_END`, each with a `nfgenmsg`
//! header; the kernel applies the batch as one transaction. An element's key and data are the
//! concatenation of its fields, each padded to a multiple of 4 bytes (nft's register layout).

use netlink_sys::{Socket, SocketAddr};

/// `NETLINK_NETFILTER` (linux/netlink.h).
const NETLINK_NETFILTER: isize = 12;
/// `NFNL_SUBSYS_NFTABLES` (nfnetlink.h).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_DATA_VALUE: u16 = 1;
/// libnftnl `NFTNL_UDATA_SET_ELEM_COMMENT`: how nft stores an element's comment.
const UDATA_SET_ELEM_COMMENT: u8 = 0;

/// `NFPROTO_INET` (netfilter.h): the family of `table inet ...`.
pub const NFPROTO_INET: u8 = 1;
/// `NFPROTO_BRIDGE` (netfilter.h): the family of `table bridge ...`.
pub const NFPROTO_BRIDGE: u8 = 7;

/// Errors of element batches.
#[derive(Debug, thiserror::Error)]
pub enum NftNetlinkError {
    /// The socket could not be opened or used.
    #[error("nf_tables netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel refused the batch (nothing was applied).
    #[error("nf_tables refused {what}: {source}")]
    Refused {
        /// Which element operation.
        what: String,
        /// The errno.
        source: std::io::Error,
    },
}

impl NftNetlinkError {
    /// The errno the kernel answered with (`EEXIST`: the key is mapped elsewhere; `ENOENT`:
    /// no such table, set or element).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Refused { source, .. } => source.raw_os_error(),
            Self::Socket(e) => e.raw_os_error(),
        }
    }
}

/// One element to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetElem {
    /// Add (`true`) or delete.
    pub add: bool,
    /// Table family, e.g. [`NFPROTO_INET`].
    pub family: u8,
    /// Table name.
    pub table: String,
    /// Set or map name.
    pub set: String,
    /// The key, fields concatenated with [`concat`].
    pub key: Vec<u8>,
    /// The mapped value for maps.
    pub data: Option<Vec<u8>>,
    /// The element's comment (shown by `nft list`).
    pub comment: Option<String>,
}

/// Concatenates fields as nf_tables lays out a concatenated key: each padded to 4 bytes.
pub fn concat(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(f);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nested(kind: u16, inner: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_attr(&mut b, kind | NLA_F_NESTED, inner);
    b
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One element's `NFTA_LIST_ELEM` nest: key, data, comment (comments only on additions).
fn elem_nest(e: &SetElem) -> Vec<u8> {
    let mut elem = Vec::new();
    elem.extend(nested(NFTA_SET_ELEM_KEY, &value_attr(&e.key)));
    if let Some(d) = &e.data {
        elem.extend(nested(NFTA_SET_ELEM_DATA, &value_attr(d)));
    }
    if let (Some(c), true) = (&e.comment, e.add) {
        let text = cstr(c);
        let mut udata = vec![UDATA_SET_ELEM_COMMENT, text.len() as u8];
        udata.extend_from_slice(&text);
        put_attr(&mut elem, NFTA_SET_ELEM_USERDATA, &udata);
    }
    nested(NFTA_LIST_ELEM, &elem)
}

/// The attributes of one `NEWSETELEM`/`DELSETELEM` message carrying `elems` (already
/// [`elem_nest`]ed, all of one set and one operation).
fn elems_payload(table: &str, set: &str, elems: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_attr(&mut out, NFTA_SET_ELEM_LIST_TABLE, &cstr(table));
    put_attr(&mut out, NFTA_SET_ELEM_LIST_SET, &cstr(set));
    out.extend(nested(NFTA_SET_ELEM_LIST_ELEMENTS, elems));
    out
}

/// Most element bytes one message carries: the `NFTA_SET_ELEM_LIST_ELEMENTS` nest's length
/// is a `u16` (`struct nlattr`), so a message holds at most 64 KiB of elements (nft splits
/// its batches the same way).
const MAX_ELEMS_BYTES: usize = 60 * 1024;

/// One message of a batch: which operation, on which set, for [`NftNetlinkError::Refused`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    add: bool,
    family: u8,
    table: String,
    set: String,
    elems: Vec<u8>,
}

/// Groups consecutive operations of one kind on one set into messages of at most
/// [`MAX_ELEMS_BYTES`] of elements, keeping their order (a removal's add-then-delete pairs
/// become an add message and a delete message, applied in that order).
fn chunks(ops: &[SetElem]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for e in ops {
        let nest = elem_nest(e);
        match out.last_mut() {
            Some(c)
                if c.add == e.add
                    && c.family == e.family
                    && c.table == e.table
                    && c.set == e.set
                    && c.elems.len() + nest.len() <= MAX_ELEMS_BYTES =>
            {
                c.elems.extend(nest)
            }
            _ => out.push(Chunk {
                add: e.add,
                family: e.family,
                table: e.table.clone(),
                set: e.set.clone(),
                elems: nest,
            }),
        }
    }
    out
}

fn value_attr(bytes: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_attr(&mut b, NFTA_DATA_VALUE, bytes);
    b
}

/// One netlink message: header, `nfgenmsg` (family, version 0, res_id big-endian), payload.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, payload: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + payload.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(family);
    m.push(0);
    m.extend_from_slice(&res_id.to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// The whole batch for `ops`, sequence numbers from `seq0`: `BATCH_BEGIN`, one message per
/// [`chunks`] group, `BATCH_END`. Returns the bytes and the groups (message `i` has sequence
/// number `seq0 + 1 + i`).
fn batch(ops: &[SetElem], seq0: u32) -> (Vec<u8>, Vec<Chunk>) {
    let groups = chunks(ops);
    let mut out = message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq0,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    );
    for (i, c) in groups.iter().enumerate() {
        // Only the last message asks for an acknowledgement: errors are reported for every
        // message anyway, and an ack per message could overflow the socket's receive buffer
        // before we read them (ENOBUFS).
        let ack = if i + 1 == groups.len() { NLM_F_ACK } else { 0 };
        let (kind, flags) = if c.add {
            (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | ack | NLM_F_CREATE)
        } else {
            (NFT_MSG_DELSETELEM, NLM_F_REQUEST | ack)
        };
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        out.extend(message(
            kind,
            flags,
            seq0 + 1 + i as u32,
            c.family,
            0,
            &elems_payload(&c.table, &c.set, &c.elems),
        ));
    }
    out.extend(message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq0 + 1 + groups.len() as u32,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    ));
    (out, groups)
}

/// The whole batch for `ops` as bytes (see [`batch`]).
pub fn batch_bytes(ops: &[SetElem], seq0: u32) -> Vec<u8> {
    batch(ops, seq0).0
}

/// Applies `ops` as one nf_tables transaction in the calling thread's network namespace.
/// Any number of operations: elements are packed many to a message, and the socket's send
/// buffer is raised to the batch's size (`SO_SNDBUFFORCE`, as nft does: a netlink batch must
/// be one `sendmsg`, or the kernel would not apply it as one transaction).
///
/// Errors: [`NftNetlinkError::Refused`] with the first operation the kernel refused (then
/// none was applied), [`NftNetlinkError::Socket`].
pub fn apply_set_elements(ops: &[SetElem]) -> Result<(), NftNetlinkError> {
    if ops.is_empty() {
        return Ok(());
    }
    let sock = open_socket()?;
    let seq0 = 1;
    let (bytes, groups) = batch(ops, seq0);
    raise_sndbuf(&sock, bytes.len())?;
    sock.send(&bytes, 0).map_err(NftNetlinkError::Socket)?;
    let last_seq = seq0 + groups.len() as u32;
    let describe = |seq: u32| {
        let idx = seq.saturating_sub(seq0 + 1) as usize;
        groups
            .get(idx)
            .map(|c| {
                let verb = if c.add { "adding an" } else { "deleting an" };
                format!("{verb} element of {}", c.set)
            })
            .unwrap_or_else(|| "the batch".into())
    };
    wait_ack(&sock, last_seq, describe)
}

/// Whether the element `key` is in set `set` of table `family`/`table` (`NFT_MSG_GETSETELEM`
/// for one key, nft's `get element`): one round trip, whatever the set's size. A missing
/// table or set counts as absent.
///
/// Errors: [`NftNetlinkError::Socket`]; [`NftNetlinkError::Refused`] for any answer but
/// success or `ENOENT`.
pub fn has_set_element(
    family: u8,
    table: &str,
    set: &str,
    key: &[u8],
) -> Result<bool, NftNetlinkError> {
    let sock = open_socket()?;
    let probe = SetElem {
        add: false,
        family,
        table: table.to_string(),
        set: set.to_string(),
        key: key.to_vec(),
        data: None,
        comment: None,
    };
    let payload = elems_payload(table, set, &elem_nest(&probe));
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM;
    let msg = message(kind, NLM_F_REQUEST | NLM_F_ACK, 1, family, 0, &payload);
    sock.send(&msg, 0).map_err(NftNetlinkError::Socket)?;
    match wait_ack(&sock, 1, |_| format!("looking up an element of {set}")) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

fn open_socket() -> Result<Socket, NftNetlinkError> {
    let mut sock = Socket::new(NETLINK_NETFILTER).map_err(NftNetlinkError::Socket)?;
    // Acknowledgements without the echoed request (NETLINK_CAP_ACK, netlink(7)).
    let _ = sock.set_cap_ack(true);
    sock.bind_auto().map_err(NftNetlinkError::Socket)?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(NftNetlinkError::Socket)?;
    Ok(sock)
}

/// Raises the send buffer so that `len` bytes fit in one `sendmsg` (netlink refuses a
/// message longer than the buffer with `EMSGSIZE`). `SO_SNDBUFFORCE` needs `CAP_NET_ADMIN`,
/// which changing nf_tables needs anyway; small batches keep the default buffer.
fn raise_sndbuf(sock: &Socket, len: usize) -> Result<(), NftNetlinkError> {
    const DEFAULT_FITS: usize = 128 * 1024;
    if len <= DEFAULT_FITS {
        return Ok(());
    }
    // The kernel doubles the value and keeps 32 bytes of overhead per message.
    let want = len + 4096;
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::SndBufForce, &want)
        .map_err(|e| NftNetlinkError::Socket(std::io::Error::from(e)))
}

/// Reads answers until the acknowledgement of `last_seq`; the first error answer is returned
/// as [`NftNetlinkError::Refused`] with `describe(seq)`.
fn wait_ack(
    sock: &Socket,
    last_seq: u32,
    describe: impl Fn(u32) -> String,
) -> Result<(), NftNetlinkError> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(NftNetlinkError::Socket)?;
        let mut off = 0;
        while off + 16 <= n {
            let word = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
            let len = word(off) as usize;
            let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
            let seq = word(off + 8);
            if len < 16 || off + len > n {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let code = word(off + 16) as i32;
                if code != 0 {
                    return Err(NftNetlinkError::Refused {
                        what: describe(seq),
                        source: std::io::Error::from_raw_os_error(-code),
                    });
                }
                if seq == last_seq {
                    return Ok(());
                }
            }
            off += len.next_multiple_of(4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_per_field() {
        let k = concat(&[&[6], &8080u16.to_be_bytes()]);
        assert_eq!(k, vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        let v = concat(&[&[172, 18, 0, 2], &80u16.to_be_bytes()]);
        assert_eq!(v, vec![172, 18, 0, 2, 0, 80, 0, 0]);
    }

    #[test]
    fn a_batch_is_framed_with_begin_and_end() {
        let e = SetElem {
            add: true,
            family: NFPROTO_INET,
            table: "berth".into(),
            set: "pub4_any".into(),
            key: concat(&[&[6], &8080u16.to_be_bytes()]),
            data: Some(concat(&[&[10, 0, 0, 2], &80u16.to_be_bytes()])),
            comment: Some("ctr x".into()),
        };
        let b = batch_bytes(&[e], 1);
        // BEGIN (20 bytes), then the element message, then END (20 bytes).
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), NFNL_MSG_BATCH_BEGIN);
        assert_eq!(u16::from_ne_bytes([b[20 + 4], b[20 + 5]]), (10 << 8) | 12);
        let tail = &b[b.len() - 20..];
        assert_eq!(u16::from_ne_bytes([tail[4], tail[5]]), NFNL_MSG_BATCH_END);
        // Every message length is what it says, and they tile the buffer.
        let mut off = 0;
        let mut count = 0;
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            off += len;
            count += 1;
        }
        assert_eq!((off, count), (b.len(), 3));
    }

    fn elem(set: &str, add: bool, port: u16) -> SetElem {
        SetElem {
            add,
            family: NFPROTO_INET,
            table: "berth".into(),
            set: set.into(),
            key: concat(&[&[6], &port.to_be_bytes()]),
            data: add.then(|| concat(&[&[10, 0, 0, 2], &80u16.to_be_bytes()])),
            comment: add.then(|| "ctr 0123456789ab net web".into()),
        }
    }

    /// (kind, flags, elements) of every message of a batch.
    fn messages(b: &[u8]) -> Vec<(u16, u16, usize)> {
        let mut off = 0;
        let mut out = Vec::new();
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes([b[off + 4], b[off + 5]]);
            let flags = u16::from_ne_bytes([b[off + 6], b[off + 7]]);
            // Count NFTA_LIST_ELEM nests: walk the ELEMENTS attribute's children.
            let mut count = 0;
            let mut a = off + 20;
            while a + 4 <= off + len {
                let alen = u16::from_ne_bytes([b[a], b[a + 1]]) as usize;
                let akind = u16::from_ne_bytes([b[a + 2], b[a + 3]]) & !NLA_F_NESTED;
                if akind == NFTA_SET_ELEM_LIST_ELEMENTS {
                    let mut c = a + 4;
                    while c + 4 <= a + alen {
                        count += 1;
                        c += (u16::from_ne_bytes([b[c], b[c + 1]]) as usize).next_multiple_of(4);
                    }
                }
                a += alen.next_multiple_of(4);
            }
            out.push((kind, flags, count));
            off += len;
        }
        out
    }

    #[test]
    fn only_the_last_message_asks_for_an_ack() {
        let ops = [
            elem("pub4_any", true, 1),
            elem("pub4_addr", true, 2),
            elem("pub6_any", true, 3),
        ];
        let acks: Vec<bool> = messages(&batch_bytes(&ops, 1))
            .iter()
            .map(|(_, f, _)| f & NLM_F_ACK != 0)
            .collect();
        // begin, three messages (three sets), end: only the third asks.
        assert_eq!(acks, vec![false, false, false, true, false]);
    }

    #[test]
    fn elements_of_one_set_share_messages_below_the_attribute_limit() {
        // A removal of 3000 ports: add-then-delete of each, as the firewall sends it.
        let mut ops: Vec<SetElem> = (0..3000).map(|p| elem("pub4_any", true, p)).collect();
        ops.extend((0..3000).map(|p| elem("pub4_any", false, p)));
        let b = batch_bytes(&ops, 1);
        let msgs = messages(&b);
        let new = (10 << 8) | NFT_MSG_NEWSETELEM;
        let del = (10 << 8) | NFT_MSG_DELSETELEM;
        let adds: usize = msgs.iter().filter(|m| m.0 == new).map(|m| m.2).sum();
        let dels: usize = msgs.iter().filter(|m| m.0 == del).map(|m| m.2).sum();
        assert_eq!((adds, dels), (3000, 3000));
        // Every addition comes before every deletion, and no nest overflows its u16 length.
        let first_del = msgs.iter().position(|m| m.0 == del).unwrap();
        assert!(msgs[..first_del].iter().skip(1).all(|m| m.0 == new));
        assert!(msgs.len() < 40, "{} messages", msgs.len());
        let mut off = 0;
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            assert!(len < 65536 + 200);
            off += len;
        }
    }
}
