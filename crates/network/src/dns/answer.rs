//! Answering one DNS query from the name table, as Docker's embedded resolver does
//! (moby `libnetwork/resolver.go`): A from the table (TTL 600, recursion-available set),
//! AAAA and MX for a known name → NOERROR with no answers, PTR for a known address, and
//! everything else marked for forwarding. Malformed packets get FORMERR (or nothing when not
//! even the header can be read); replies never exceed the client's UDP size (answers are
//! dropped and TC set, as moby's `truncateResp`).
//!
//! Pure functions over bytes: no sockets, no tasks. Parsing and serialising is hickory-proto's.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::table::Table;

/// TTL of the answers from the table (moby's `respTTL`).
pub(crate) const TTL: u32 = 600;
/// The largest message over TCP (two-byte length prefix).
const MAX_TCP: usize = 65535;

/// How the query arrived (decides the reply size limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// What to do with one incoming packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Forward the query as it came to the upstreams; answer `fallback` (SERVFAIL) if none
    /// answers.
    Forward { fallback: Vec<u8> },
    /// Say nothing (not a query, or not even a DNS header).
    Drop,
}

/// Handles one packet asked by a container on `networks`. `rotate` turns the order of several
/// addresses for one name (Docker shuffles them; a rotating counter gives the same round robin).
pub(crate) fn handle(
    packet: &[u8],
    table: &Table,
    networks: &[String],
    transport: Transport,
    rotate: usize,
) -> Action {
    let mut decoder = BinDecoder::new(packet);
    let Ok(header) = Header::read(&mut decoder) else {
        return Action::Drop;
    };
    if header.message_type() != MessageType::Query {
        return Action::Drop;
    }
    let Ok(req) = Message::from_vec(packet) else {
        return error_reply(&header, ResponseCode::FormErr);
    };
    if req.op_code() != OpCode::Query {
        return error_reply(&header, ResponseCode::NotImp);
    }
    if req.queries().len() != 1 {
        return error_reply(&header, ResponseCode::FormErr);
    }
    let limit = match transport {
        Transport::Udp => usize::from(req.max_payload()),
        Transport::Tcp => MAX_TCP,
    };
    let q = &req.queries()[0];
    let forward = || {
        let mut m = reply_to(&req);
        m.set_response_code(ResponseCode::ServFail);
        match encode(m, limit, transport) {
            Some(fallback) => Action::Forward { fallback },
            None => Action::Drop,
        }
    };
    if q.query_class() != DNSClass::IN {
        return forward();
    }
    let name = q.name().to_ascii();
    let answer = match q.query_type() {
        RecordType::A => {
            let mut ips = table.lookup(networks, &name);
            if ips.is_empty() {
                return forward();
            }
            let n = ips.len();
            ips.rotate_left(rotate % n);
            let mut m = reply_to(&req);
            for ip in ips {
                m.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
            }
            m
        }
        // A known name without IPv6 (berth's networks are IPv4): NOERROR with no answers, so the
        // client doesn't ask the outside world; MX likewise ("implicit MX", RFC 5321 5.1).
        RecordType::AAAA | RecordType::MX => {
            if table.lookup(networks, &name).is_empty() {
                return forward();
            }
            reply_to(&req)
        }
        RecordType::PTR => {
            let Some(host) = ptr_addr(&name).and_then(|ip| table.lookup_ptr(networks, ip)) else {
                return forward();
            };
            let Ok(target) = Name::from_ascii(format!("{host}.")) else {
                return forward();
            };
            let mut m = reply_to(&req);
            m.add_answer(Record::from_rdata(
                q.name().clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
            m
        }
        _ => return forward(),
    };
    match encode(answer, limit, transport) {
        Some(bytes) => Action::Reply(bytes),
        None => error_reply(&header, ResponseCode::ServFail),
    }
}

/// The response skeleton for `req`: same id, question, RD and CD; RA set as moby does.
fn reply_to(req: &Message) -> Message {
    let mut header = Header::response_from_request(req.header());
    header.set_recursion_available(true);
    let mut m = Message::new();
    m.set_header(header);
    m.add_queries(req.queries().iter().cloned());
    if req.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(req.max_payload());
        m.set_edns(edns);
    }
    m
}

/// An error answer carrying only the header (the question may be what could not be read).
fn error_reply(req: &Header, code: ResponseCode) -> Action {
    let mut header = Header::response_from_request(req);
    header.set_recursion_available(true);
    header.set_response_code(code);
    let mut m = Message::new();
    m.set_header(header);
    match m.to_vec() {
        Ok(b) => Action::Reply(b),
        Err(_) => Action::Drop,
    }
}

/// Serialises `m`, dropping answers from the end until it fits `limit` (TC set over UDP).
fn encode(mut m: Message, limit: usize, transport: Transport) -> Option<Vec<u8>> {
    loop {
        let bytes = m.to_vec().ok()?;
        if bytes.len() <= limit || m.answers().is_empty() {
            return Some(bytes);
        }
        if transport == Transport::Udp {
            m.set_truncated(true);
        }
        m.answers_mut().pop();
    }
}

/// The IPv4 address of a `d.c.b.a.in-addr.arpa` name.
fn ptr_addr(name: &str) -> Option<Ipv4Addr> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let rev = lower.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let mut parts = rev.split('.');
    for o in octets.iter_mut().rev() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn table() -> Table {
        let t = Table::default();
        t.add(
            "mynet",
            "c1",
            vec!["web".into(), "www".into()],
            "172.20.0.2".parse().unwrap(),
        );
        t.add(
            "mynet",
            "c2",
            vec!["db".into(), "www".into()],
            "172.20.0.3".parse().unwrap(),
        );
        t
    }

    fn scope() -> Vec<String> {
        vec!["mynet".to_string()]
    }

    fn query(name: &str, rtype: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(0x1234)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        m
    }

    fn ask(m: &Message, transport: Transport) -> Action {
        handle(&m.to_vec().unwrap(), &table(), &scope(), transport, 0)
    }

    fn reply(a: Action) -> Message {
        match a {
            Action::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn fallback(a: Action) -> Message {
        match a {
            Action::Forward { fallback } => Message::from_vec(&fallback).unwrap(),
            other => panic!("expected forward, got {other:?}"),
        }
    }

    fn a_answers(m: &Message) -> Vec<Ipv4Addr> {
        m.answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_from_table() {
        let r = reply(ask(&query("WEB.", RecordType::A), Transport::Udp));
        assert_eq!(r.id(), 0x1234);
        assert_eq!(r.message_type(), MessageType::Response);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.recursion_desired() && r.recursion_available());
        assert_eq!(r.queries().len(), 1);
        assert_eq!(
            a_answers(&r),
            vec!["172.20.0.2".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(r.answers()[0].ttl(), TTL);
        // The answer's owner name is the question as asked.
        assert_eq!(r.answers()[0].name().to_ascii(), "WEB.");
        let r = reply(ask(&query("web.mynet", RecordType::A), Transport::Udp));
        assert_eq!(a_answers(&r).len(), 1);
    }

    #[test]
    fn shared_alias_round_robin() {
        let q = query("www.", RecordType::A).to_vec().unwrap();
        let first = |rot| match handle(&q, &table(), &scope(), Transport::Udp, rot) {
            Action::Reply(b) => a_answers(&Message::from_vec(&b).unwrap()),
            other => panic!("{other:?}"),
        };
        let r0 = first(0);
        let r1 = first(1);
        assert_eq!(r0.len(), 2);
        assert_eq!(r0[0], r1[1]);
        assert_eq!(r0[1], r1[0]);
    }

    #[test]
    fn aaaa_and_mx_for_known_names_are_empty_noerror() {
        for t in [RecordType::AAAA, RecordType::MX] {
            let r = reply(ask(&query("web.", t), Transport::Udp));
            assert_eq!(r.response_code(), ResponseCode::NoError);
            assert!(r.answers().is_empty());
        }
        // Unknown: forwarded.
        let f = fallback(ask(
            &query("example.com.", RecordType::AAAA),
            Transport::Udp,
        ));
        assert_eq!(f.response_code(), ResponseCode::ServFail);
        assert_eq!(f.id(), 0x1234);
    }

    #[test]
    fn ptr_for_known_addresses() {
        let r = reply(ask(
            &query("2.0.20.172.in-addr.arpa.", RecordType::PTR),
            Transport::Udp,
        ));
        match r.answers()[0].data() {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "web.mynet."),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.answers()[0].ttl(), TTL);
        // Unknown address or other forms: forwarded.
        fallback(ask(
            &query("9.0.20.172.in-addr.arpa.", RecordType::PTR),
            Transport::Udp,
        ));
        fallback(ask(&query("web.", RecordType::PTR), Transport::Udp));
    }

    #[test]
    fn other_names_types_and_classes_are_forwarded() {
        fallback(ask(&query("example.com.", RecordType::A), Transport::Udp));
        fallback(ask(&query("web.", RecordType::TXT), Transport::Udp));
        let mut q = query("web.", RecordType::A);
        q.queries_mut()[0].set_query_class(DNSClass::CH);
        fallback(ask(&q, Transport::Udp));
        // Not on the asking container's networks.
        let q = query("web.", RecordType::A).to_vec().unwrap();
        let a = handle(&q, &table(), &["other".to_string()], Transport::Udp, 0);
        fallback(a);
    }

    #[test]
    fn malformed_packets() {
        // Too short for a header: nothing.
        assert_eq!(
            handle(&[1, 2, 3], &table(), &scope(), Transport::Udp, 0),
            Action::Drop
        );
        assert_eq!(
            handle(&[], &table(), &scope(), Transport::Udp, 0),
            Action::Drop
        );
        // A header promising a question that is not there: FORMERR with the id.
        let mut bytes = query("web.", RecordType::A).to_vec().unwrap();
        bytes.truncate(14);
        let r = reply(handle(&bytes, &table(), &scope(), Transport::Udp, 0));
        assert_eq!(r.response_code(), ResponseCode::FormErr);
        assert_eq!(r.id(), 0x1234);
        // Responses are ignored.
        let mut m = query("web.", RecordType::A);
        m.set_message_type(MessageType::Response);
        assert_eq!(ask(&m, Transport::Udp), Action::Drop);
        // Two questions: FORMERR; other opcodes: NOTIMP.
        let mut m = query("web.", RecordType::A);
        m.add_query(Query::query(
            Name::from_ascii("db.").unwrap(),
            RecordType::A,
        ));
        assert_eq!(
            reply(ask(&m, Transport::Udp)).response_code(),
            ResponseCode::FormErr
        );
        let mut m = query("web.", RecordType::A);
        m.set_op_code(OpCode::Status);
        assert_eq!(
            reply(ask(&m, Transport::Udp)).response_code(),
            ResponseCode::NotImp
        );
        // Random bytes never panic.
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = handle(&buf, &table(), &scope(), Transport::Udp, 0);
        }
    }

    #[test]
    fn udp_answers_fit_512_bytes_with_tc() {
        let t = Table::default();
        for i in 0..60u8 {
            t.add(
                "n",
                &format!("c{i}"),
                vec!["many".into()],
                Ipv4Addr::new(10, 0, 1, i),
            );
        }
        let q = query("many.", RecordType::A).to_vec().unwrap();
        let n = vec!["n".to_string()];
        let Action::Reply(b) = handle(&q, &t, &n, Transport::Udp, 0) else {
            panic!()
        };
        assert!(b.len() <= 512);
        let r = Message::from_vec(&b).unwrap();
        assert!(r.truncated());
        assert!(!r.answers().is_empty() && r.answers().len() < 60);
        // Over TCP everything fits.
        let Action::Reply(b) = handle(&q, &t, &n, Transport::Tcp, 0) else {
            panic!()
        };
        let r = Message::from_vec(&b).unwrap();
        assert!(!r.truncated());
        assert_eq!(r.answers().len(), 60);
        // EDNS raises the UDP limit and is echoed.
        let mut m = query("many.", RecordType::A);
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
        let Action::Reply(b) = handle(&m.to_vec().unwrap(), &t, &n, Transport::Udp, 0) else {
            panic!()
        };
        let r = Message::from_vec(&b).unwrap();
        assert!(!r.truncated());
        assert_eq!(r.answers().len(), 60);
        assert_eq!(r.max_payload(), 4096);
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_addr("4.3.2.1.in-addr.arpa."),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(
            ptr_addr("4.3.2.1.IN-ADDR.ARPA"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(ptr_addr("3.2.1.in-addr.arpa."), None);
        assert_eq!(ptr_addr("5.4.3.2.1.in-addr.arpa."), None);
        assert_eq!(ptr_addr("256.3.2.1.in-addr.arpa."), None);
        assert_eq!(ptr_addr("+4.3.2.1.in-addr.arpa."), None);
        assert_eq!(ptr_addr("example.com."), None);
    }
}
