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

/// The attributes of one `NEWSETELEM`/`DELSETELEM` message.
fn elem_payload(e: &SetElem) -> Vec<u8> {
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
    let list = nested(NFTA_LIST_ELEM, &elem);
    let mut out = Vec::new();
    put_attr(&mut out, NFTA_SET_ELEM_LIST_TABLE, &cstr(&e.table));
    put_attr(&mut out, NFTA_SET_ELEM_LIST_SET, &cstr(&e.set));
    out.extend(nested(NFTA_SET_ELEM_LIST_ELEMENTS, &list));
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

/// The whole batch for `ops`, sequence numbers from `seq0`.
pub fn batch_bytes(ops: &[SetElem], seq0: u32) -> Vec<u8> {
    let mut out = message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq0,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    );
    for (i, e) in ops.iter().enumerate() {
        // Only the last message asks for an acknowledgement: errors are reported for every
        // message anyway, and a thousand acks (one per published port) would overflow the
        // socket's receive buffer before we read them (ENOBUFS).
        let ack = if i + 1 == ops.len() { NLM_F_ACK } else { 0 };
        let (kind, flags) = if e.add {
            (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | ack | NLM_F_CREATE)
        } else {
            (NFT_MSG_DELSETELEM, NLM_F_REQUEST | ack)
        };
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        out.extend(message(
            kind,
            flags,
            seq0 + 1 + i as u32,
            e.family,
            0,
            &elem_payload(e),
        ));
    }
    out.extend(message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq0 + 1 + ops.len() as u32,
        0,
        NFNL_SUBSYS_NFTABLES,
        &[],
    ));
    out
}

/// Applies `ops` as one nf_tables transaction in the calling thread's network namespace.
///
/// Errors: [`NftNetlinkError::Refused`] with the first operation the kernel refused (then
/// none was applied), [`NftNetlinkError::Socket`].
pub fn apply_set_elements(ops: &[SetElem]) -> Result<(), NftNetlinkError> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut sock = Socket::new(NETLINK_NETFILTER).map_err(NftNetlinkError::Socket)?;
    // Acknowledgements without the echoed request (NETLINK_CAP_ACK, netlink(7)).
    let _ = sock.set_cap_ack(true);
    sock.bind_auto().map_err(NftNetlinkError::Socket)?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(NftNetlinkError::Socket)?;
    let seq0 = 1;
    let bytes = batch_bytes(ops, seq0);
    sock.send(&bytes, 0).map_err(NftNetlinkError::Socket)?;
    let last_seq = seq0 + ops.len() as u32;
    let mut done = false;
    let mut buf = vec![0u8; 65536];
    while !done {
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(NftNetlinkError::Socket)?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
            let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
            if len < 16 || off + len > n {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                if code != 0 {
                    let idx = (seq.saturating_sub(seq0 + 1)) as usize;
                    let what = ops
                        .get(idx)
                        .map(|e| {
                            format!(
                                "{} element of {}",
                                if e.add { "adding an" } else { "deleting an" },
                                e.set
                            )
                        })
                        .unwrap_or_else(|| "the batch".into());
                    return Err(NftNetlinkError::Refused {
                        what,
                        source: std::io::Error::from_raw_os_error(-code),
                    });
                }
                done |= seq == last_seq;
            }
            off += len.next_multiple_of(4);
        }
    }
    Ok(())
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

    #[test]
    fn only_the_last_element_asks_for_an_ack() {
        let e = |port: u16| SetElem {
            add: true,
            family: NFPROTO_INET,
            table: "berth".into(),
            set: "pub4_any".into(),
            key: concat(&[&[6], &port.to_be_bytes()]),
            data: None,
            comment: None,
        };
        let b = batch_bytes(&[e(1), e(2), e(3)], 1);
        let mut off = 0;
        let mut flags = Vec::new();
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            flags.push(u16::from_ne_bytes([b[off + 6], b[off + 7]]) & NLM_F_ACK != 0);
            off += len;
        }
        // begin, three elements, end: only the third element asks.
        assert_eq!(flags, vec![false, false, false, true, false]);
    }
}
