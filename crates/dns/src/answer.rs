//! The answer logic: given a query that arrived on one network's gateway, either answer it
//! from berth's records or say it must be forwarded upstream.
//!
//! Rules (issue 3, "Embedded DNS"; Docker's embedded resolver behaves the same way):
//! - a name is berth's when an endpoint on *this* network has it as container name, 12-char
//!   short id or `--network-alias` (case-insensitive), optionally followed by `.<network>`;
//! - berth's names are answered at once for every record type (A and AAAA from the endpoint
//!   addresses, ANY with both, any other type NOERROR with no answers), never forwarded, so a
//!   slow upstream never delays them;
//! - reverse names (`in-addr.arpa`, `ip6.arpa`, RFC 1035 §3.5, RFC 3596 §2.5) of a full
//!   address inside one of the network's subnets are berth's too: PTR `<container>.<network>.`,
//!   or NXDOMAIN when no container holds the address (an upstream cannot know it either);
//! - everything else is forwarded.
//!
//! Responses copy RD and CD and the ID from the query (RFC 6895 §2), set AA and RA, and carry
//! an OPT record when the query had one (RFC 6891 §6.1.1).

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::records::{DnsNetwork, RecordsError, StoreRecords};

/// TTL of berth's records, in seconds. Zero (RFC 1035 §3.2.1: "should not be cached"): names
/// come and go with containers, and the server is one hop away.
pub const TTL: u32 = 0;

/// UDP payload size berth advertises in its OPT records (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// What to do with a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this response.
    Reply(Message),
    /// Not berth's: forward the query bytes upstream unchanged.
    Forward,
}

/// Decides how to answer `request`, which arrived on `network`'s gateway.
///
/// Errors: [`RecordsError`] when the store cannot be read (the caller answers SERVFAIL).
pub fn answer(
    records: &StoreRecords,
    network: &DnsNetwork,
    request: &Message,
) -> Result<Outcome, RecordsError> {
    answer_for(records, network, request, None)
}

/// [`answer`] for a query from `client`: a container attached to several networks also gets
/// the names of its other networks (as Docker's resolver answers for every network of the
/// asking container), the network the query arrived on first.
///
/// Errors: [`RecordsError`] when the store cannot be read.
pub fn answer_for(
    records: &StoreRecords,
    network: &DnsNetwork,
    request: &Message,
    client: Option<IpAddr>,
) -> Result<Outcome, RecordsError> {
    if request.metadata.message_type != MessageType::Query {
        // A response sent to a server is not answered (RFC 1035 §7.3: discard).
        return Ok(Outcome::Reply(reply(request, ResponseCode::FormErr)));
    }
    if request.metadata.op_code != OpCode::Query {
        return Ok(Outcome::Reply(reply(request, ResponseCode::NotImp)));
    }
    let [query] = request.queries.as_slice() else {
        return Ok(Outcome::Reply(reply(request, ResponseCode::FormErr)));
    };
    if query.query_class() != DNSClass::IN {
        return Ok(Outcome::Forward);
    }
    if let Some(addr) = reverse_address(query.name()) {
        if network.subnets.iter().any(|s| s.contains(&addr)) {
            let holder = records.container_at(&network.id, addr)?;
            return Ok(Outcome::Reply(reverse_reply(
                request, query, network, holder,
            )));
        }
        return Ok(Outcome::Forward);
    }
    if let Some(addrs) = owned_addresses(records, network, query.name())? {
        return Ok(Outcome::Reply(forward_reply(request, query, &addrs)));
    }
    if let Some(client) = client {
        for other in records.other_networks_of(&network.id, client)? {
            let bare = query.name().to_ascii().to_ascii_lowercase();
            let bare = bare.trim_end_matches('.');
            if bare.is_empty() {
                break;
            }
            if let Some(addrs) = records.addresses(&other, bare)? {
                return Ok(Outcome::Reply(forward_reply(request, query, &addrs)));
            }
        }
    }
    Ok(Outcome::Forward)
}

/// A response to `request` with `code` and no records (FORMERR, NOTIMP, SERVFAIL ...).
pub fn reply(request: &Message, code: ResponseCode) -> Message {
    let mut msg = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    msg.metadata = Metadata::response_from_request(&request.metadata);
    msg.metadata.response_code = code;
    msg.metadata.recursion_available = true;
    msg.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        msg.set_edns(edns);
    }
    msg
}

/// The addresses of `name` when it is berth's on `network`: the name as given, or with the
/// network name as last label stripped (`web.mynet`).
fn owned_addresses(
    records: &StoreRecords,
    network: &DnsNetwork,
    name: &Name,
) -> Result<Option<Vec<IpAddr>>, RecordsError> {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.ends_with('.') {
        text.pop();
    }
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(found) = records.addresses(&network.id, &text)? {
        return Ok(Some(found));
    }
    match text
        .strip_suffix(&network.name)
        .and_then(|t| t.strip_suffix('.'))
    {
        Some(short) if !short.is_empty() => records.addresses(&network.id, short),
        _ => Ok(None),
    }
}

/// The address a full-length reverse name stands for (`2.0.123.10.in-addr.arpa.`).
fn reverse_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

fn forward_reply(request: &Message, query: &Query, addrs: &[IpAddr]) -> Message {
    let mut msg = reply(request, ResponseCode::NoError);
    msg.metadata.authoritative = true;
    let qtype = query.query_type();
    for addr in addrs {
        let rdata = match (addr, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(*v4)),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(*v6)),
            _ => continue,
        };
        msg.add_answer(Record::from_rdata(query.name().clone(), TTL, rdata));
    }
    msg
}

fn reverse_reply(
    request: &Message,
    query: &Query,
    network: &DnsNetwork,
    holder: Option<String>,
) -> Message {
    let Some(container) = holder else {
        let mut msg = reply(request, ResponseCode::NXDomain);
        msg.metadata.authoritative = true;
        return msg;
    };
    let mut msg = reply(request, ResponseCode::NoError);
    msg.metadata.authoritative = true;
    if matches!(query.query_type(), RecordType::PTR | RecordType::ANY) {
        let target = Name::from_ascii(format!("{container}.{}.", network.name));
        match target {
            Ok(target) => {
                let rdata = RData::PTR(PTR(target));
                msg.add_answer(Record::from_rdata(query.name().clone(), TTL, rdata));
            }
            Err(e) => tracing::warn!(%container, error = %e, "container name is not a DNS name"),
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{fixture, id_of};

    struct Env {
        _dir: tempfile::TempDir,
        records: StoreRecords,
        front: DnsNetwork,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let records = StoreRecords::open(dir.path()).unwrap();
        let front = records
            .dns_networks()
            .unwrap()
            .into_iter()
            .find(|n| n.id == id_of("front"))
            .unwrap();
        Env {
            _dir: dir,
            records,
            front,
        }
    }

    fn ask(env: &Env, name: &str, qtype: RecordType) -> Outcome {
        let mut req = Message::query();
        req.metadata.recursion_desired = true;
        req.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        // Through the wire format, as the server sees it.
        let req = Message::from_vec(&req.to_vec().unwrap()).unwrap();
        answer(&env.records, &env.front, &req).unwrap()
    }

    fn rdata(out: &Outcome) -> (ResponseCode, Vec<String>) {
        let Outcome::Reply(msg) = out else {
            panic!("forwarded: {out:?}")
        };
        assert!(
            msg.metadata.authoritative,
            "berth's names are authoritative"
        );
        let mut data: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
        data.sort();
        (msg.metadata.response_code, data)
    }

    #[test]
    fn container_names_and_aliases_get_their_addresses() {
        let env = env();
        let ok = |v: &[&str]| {
            (
                ResponseCode::NoError,
                v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            rdata(&ask(&env, "web.", RecordType::A)),
            ok(&["10.123.0.2"])
        );
        assert_eq!(
            rdata(&ask(&env, "WWW.", RecordType::AAAA)),
            ok(&["fd12::2"])
        );
        assert_eq!(
            rdata(&ask(&env, "web.front.", RecordType::A)),
            ok(&["10.123.0.2"])
        );
        assert_eq!(
            rdata(&ask(&env, "web.", RecordType::ANY)),
            ok(&["10.123.0.2", "fd12::2"])
        );
        assert_eq!(
            rdata(&ask(&env, "lb.", RecordType::A)),
            ok(&["10.123.0.4", "10.123.0.5"])
        );
        let short = format!("{}.", &id_of("db")[..12]);
        assert_eq!(
            rdata(&ask(&env, &short, RecordType::A)),
            ok(&["10.123.0.3"])
        );
    }

    #[test]
    fn owned_names_never_go_upstream_whatever_the_type() {
        let env = env();
        for qtype in [
            RecordType::AAAA,
            RecordType::MX,
            RecordType::TXT,
            RecordType::SRV,
        ] {
            assert_eq!(
                rdata(&ask(&env, "db.", qtype)),
                (ResponseCode::NoError, vec![]),
                "{qtype}"
            );
        }
    }

    #[test]
    fn other_names_are_forwarded() {
        let env = env();
        assert_eq!(ask(&env, "example.test.", RecordType::A), Outcome::Forward);
        // Containers of other networks (with or without DNS) are not visible here.
        assert_eq!(ask(&env, "other.", RecordType::A), Outcome::Forward);
        assert_eq!(ask(&env, "hidden.", RecordType::A), Outcome::Forward);
        assert_eq!(ask(&env, "web.back.", RecordType::A), Outcome::Forward);
        assert_eq!(ask(&env, "front.", RecordType::A), Outcome::Forward);
        assert_eq!(ask(&env, ".", RecordType::NS), Outcome::Forward);
    }

    #[test]
    fn reverse_names_inside_the_subnets_are_answered() {
        let env = env();
        let ptr = |s: &str| (ResponseCode::NoError, vec![s.to_string()]);
        assert_eq!(
            rdata(&ask(&env, "2.0.123.10.in-addr.arpa.", RecordType::PTR)),
            ptr("web.front.")
        );
        let v6: IpAddr = "fd12::2".parse().unwrap();
        let v6name = Name::from(v6).to_ascii();
        assert_eq!(
            rdata(&ask(&env, &v6name, RecordType::PTR)),
            ptr("web.front.")
        );
        assert_eq!(
            rdata(&ask(&env, "99.0.123.10.in-addr.arpa.", RecordType::PTR)),
            (ResponseCode::NXDomain, vec![])
        );
        assert_eq!(
            rdata(&ask(&env, "2.0.123.10.in-addr.arpa.", RecordType::A)),
            (ResponseCode::NoError, vec![])
        );
        // Outside the network's subnets, or a partial reverse name: upstream's business.
        assert_eq!(
            ask(&env, "2.0.124.10.in-addr.arpa.", RecordType::PTR),
            Outcome::Forward
        );
        assert_eq!(
            ask(&env, "123.10.in-addr.arpa.", RecordType::PTR),
            Outcome::Forward
        );
    }

    #[test]
    fn response_header_follows_the_query() {
        let env = env();
        let mut req = Message::query();
        req.metadata.id = 4242;
        req.metadata.recursion_desired = true;
        req.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        req.set_edns(Edns::new());
        let Outcome::Reply(msg) = answer(&env.records, &env.front, &req).unwrap() else {
            panic!()
        };
        assert_eq!(msg.metadata.id, 4242);
        assert_eq!(msg.metadata.message_type, MessageType::Response);
        assert!(msg.metadata.recursion_desired && msg.metadata.recursion_available);
        assert_eq!(msg.queries, req.queries);
        assert_eq!(msg.edns.as_ref().map(Edns::max_payload), Some(EDNS_PAYLOAD));
        assert_eq!(msg.answers[0].ttl, TTL);
    }

    #[test]
    fn malformed_queries_get_errors() {
        let env = env();
        let mut two = Message::query();
        two.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        two.add_query(Query::query(
            Name::from_ascii("db.").unwrap(),
            RecordType::A,
        ));
        let code = |m: &Message| match answer(&env.records, &env.front, m).unwrap() {
            Outcome::Reply(r) => r.metadata.response_code,
            Outcome::Forward => panic!("forwarded"),
        };
        assert_eq!(code(&two), ResponseCode::FormErr);
        let mut update = Message::new(1, MessageType::Query, OpCode::Update);
        update.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        assert_eq!(code(&update), ResponseCode::NotImp);
    }
}
