//! The embedded DNS server over real sockets: answers from the table over UDP and TCP, live
//! table and scope changes, forwarding to fake upstreams (UDP and TCP, failover, SERVFAIL),
//! stopping; and (root) a server bound to 127.0.0.11:53 inside a fresh network namespace that
//! forwards to an upstream on the host's loopback.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use network::dns::{self, Scope, Server, Table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

fn framed(q: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(q);
    out
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// Asks over UDP; `None` after a second without an answer.
async fn ask_udp(server: SocketAddr, q: &[u8]) -> Option<Message> {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(q, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), c.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

/// Asks several queries in turn on one TCP connection.
async fn ask_tcp(server: SocketAddr, queries: &[Vec<u8>]) -> Vec<Message> {
    let mut s = TcpStream::connect(server).await.unwrap();
    let mut out = Vec::new();
    for q in queries {
        s.write_all(&framed(q)).await.unwrap();
        let len = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).unwrap());
    }
    out
}

/// The answer a fake upstream gives: `UPSTREAM_IP` for any question, with `code`.
fn upstream_answer(packet: &[u8], code: ResponseCode) -> Vec<u8> {
    let q = Message::from_vec(packet).unwrap();
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .set_response_code(code);
    m.add_queries(q.queries().iter().cloned());
    if code == ResponseCode::NoError {
        let name = q.queries()[0].name().clone();
        m.add_answer(Record::from_rdata(name, 30, RData::A(A(UPSTREAM_IP))));
    }
    m.to_vec().unwrap()
}

/// A fake UDP upstream answering with `code`; returns its address.
async fn fake_udp_upstream(code: ResponseCode) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&upstream_answer(&buf[..n], code), peer).await;
        }
    });
    addr
}

/// A fake TCP upstream (one query per connection); returns its address.
async fn fake_tcp_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let len = s.read_u16().await.unwrap();
            let mut buf = vec![0u8; usize::from(len)];
            s.read_exact(&mut buf).await.unwrap();
            let a = upstream_answer(&buf, ResponseCode::NoError);
            s.write_all(&framed(&a)).await.unwrap();
        }
    });
    addr
}

/// A local UDP port nothing listens on (sends to it are refused at once).
fn closed_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

fn start(scope: &Scope, table: &Table, upstreams: Vec<SocketAddr>) -> Server {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    dns::serve(udp, Some(tcp), scope.clone(), table.clone(), upstreams).unwrap()
}

fn sample_table() -> Table {
    let t = Table::default();
    t.add(
        "appnet",
        "c1",
        vec!["web".into(), "frontend".into(), "0123456789ab".into()],
        Ipv4Addr::new(172, 30, 0, 2),
    );
    t.add(
        "appnet",
        "c2",
        vec!["db".into()],
        Ipv4Addr::new(172, 30, 0, 3),
    );
    t.add(
        "othernet",
        "c3",
        vec!["secret".into()],
        Ipv4Addr::new(172, 31, 0, 2),
    );
    t
}

#[tokio::test]
async fn answers_from_the_table_over_udp_and_tcp() {
    let table = sample_table();
    let scope = Scope::new(vec!["appnet".into()]);
    let server = start(&scope, &table, Vec::new());
    let addr = server.udp_addr();

    for name in ["web.", "WEB", "frontend.", "0123456789ab.", "web.appnet."] {
        let r = ask_udp(addr, &query(7, name, RecordType::A)).await.unwrap();
        assert_eq!(r.id(), 7);
        assert_eq!(r.response_code(), ResponseCode::NoError, "{name}");
        assert_eq!(a_records(&r), vec![Ipv4Addr::new(172, 30, 0, 2)], "{name}");
        assert_eq!(r.answers()[0].ttl(), 600);
    }
    let r = ask_udp(addr, &query(8, "web.", RecordType::AAAA))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.answers().is_empty());
    let r = ask_udp(addr, &query(9, "3.0.30.172.in-addr.arpa.", RecordType::PTR))
        .await
        .unwrap();
    match r.answers()[0].data() {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "db.appnet."),
        other => panic!("{other:?}"),
    }
    // Another network's names are not visible, and with no upstream that is SERVFAIL.
    let r = ask_udp(addr, &query(10, "secret.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    assert_eq!(r.id(), 10);

    // TCP, several queries on one connection.
    let rs = ask_tcp(
        server.tcp_addr().unwrap(),
        &[
            query(11, "db", RecordType::A),
            query(12, "nothing.example.", RecordType::A),
        ],
    )
    .await;
    assert_eq!(a_records(&rs[0]), vec![Ipv4Addr::new(172, 30, 0, 3)]);
    assert_eq!(rs[0].id(), 11);
    assert_eq!(rs[1].response_code(), ResponseCode::ServFail);

    // Garbage gets FORMERR or nothing, and the server keeps serving.
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"\x00\x01\x00\x00\x00\x01", addr).await.unwrap();
    let mut bad = query(13, "web.", RecordType::A);
    bad.truncate(15);
    let r = ask_udp(addr, &bad).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::FormErr);
    assert!(
        ask_udp(addr, &query(14, "web.", RecordType::A))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn table_and_scope_changes_are_live() {
    let table = sample_table();
    let scope = Scope::new(vec!["appnet".into()]);
    let server = start(&scope, &table, Vec::new());
    let addr = server.udp_addr();

    scope.set(vec!["othernet".into(), "appnet".into()]);
    let r = ask_udp(addr, &query(1, "secret.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(a_records(&r), vec![Ipv4Addr::new(172, 31, 0, 2)]);

    table.add(
        "appnet",
        "c4",
        vec!["late".into()],
        Ipv4Addr::new(172, 30, 0, 4),
    );
    let r = ask_udp(addr, &query(2, "late.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(a_records(&r), vec![Ipv4Addr::new(172, 30, 0, 4)]);
    table.remove("appnet", "c4");
    let r = ask_udp(addr, &query(3, "late.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::ServFail);
}

#[tokio::test]
async fn forwards_unknown_names_to_upstreams() {
    let table = sample_table();
    let scope = Scope::new(vec!["appnet".into()]);
    let refusing = fake_udp_upstream(ResponseCode::Refused).await;
    let good = fake_udp_upstream(ResponseCode::NoError).await;
    // A dead upstream and a refusing one are skipped; the third answers.
    let server = start(&scope, &table, vec![closed_port(), refusing, good]);
    let r = ask_udp(
        server.udp_addr(),
        &query(0x4242, "example.org.", RecordType::A),
    )
    .await
    .unwrap();
    assert_eq!(r.id(), 0x4242);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(a_records(&r), vec![UPSTREAM_IP]);
    // Known names are still answered locally.
    let r = ask_udp(server.udp_addr(), &query(5, "web.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(a_records(&r), vec![Ipv4Addr::new(172, 30, 0, 2)]);
    drop(server);

    // Only refusing upstreams: their answer is passed on.
    let server = start(&scope, &table, vec![refusing]);
    let r = ask_udp(server.udp_addr(), &query(6, "example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::Refused);
    drop(server);

    // Only dead upstreams: SERVFAIL.
    let server = start(&scope, &table, vec![closed_port()]);
    let r = ask_udp(server.udp_addr(), &query(7, "example.org.", RecordType::A))
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    assert_eq!(r.id(), 7);
}

#[tokio::test]
async fn tcp_queries_are_forwarded_over_tcp() {
    let table = sample_table();
    let scope = Scope::new(vec!["appnet".into()]);
    let up = fake_tcp_upstream().await;
    let server = start(&scope, &table, vec![up]);
    let rs = ask_tcp(
        server.tcp_addr().unwrap(),
        &[
            query(21, "example.net.", RecordType::A),
            query(22, "web.", RecordType::A),
        ],
    )
    .await;
    assert_eq!(rs[0].id(), 21);
    assert_eq!(a_records(&rs[0]), vec![UPSTREAM_IP]);
    assert_eq!(a_records(&rs[1]), vec![Ipv4Addr::new(172, 30, 0, 2)]);
}

#[tokio::test]
async fn stop_closes_the_sockets() {
    let table = sample_table();
    let scope = Scope::new(vec!["appnet".into()]);
    let server = start(&scope, &table, Vec::new());
    let addr = server.udp_addr();
    assert!(
        ask_udp(addr, &query(1, "web.", RecordType::A))
            .await
            .is_some()
    );
    server.stop();
    let mut rebound = false;
    for _ in 0..50 {
        if std::net::UdpSocket::bind(addr).is_ok() {
            rebound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound, "the server's UDP port was not released");
}

#[test]
fn serve_outside_a_runtime_is_an_error() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = dns::serve(udp, None, Scope::default(), Table::default(), Vec::new());
    assert!(r.is_err());
}

/// A server on 127.0.0.11:53 inside a fresh network namespace (as the engine sets it up for a
/// container), queried from inside that namespace; forwarding reaches an upstream on the
/// host's loopback, which only works because forwarding happens from our own namespace.
#[test]
fn serves_inside_a_network_namespace() {
    test_support::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("netns");
    linux::netns::create(&ns).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let listen = SocketAddr::from((dns::NAMESERVER, 53));
        let (udp, tcp) = dns::bind_in_netns(&ns, listen).unwrap();
        let upstream = rt.block_on(fake_udp_upstream(ResponseCode::NoError));
        let server = {
            let _g = rt.enter();
            let scope = Scope::new(vec!["appnet".into()]);
            dns::serve(udp, Some(tcp), scope, sample_table(), vec![upstream]).unwrap()
        };
        assert_eq!(server.udp_addr(), listen);
        // The clients live in the namespace too; the host's loopback can't reach the server.
        let client = linux::netns::run_in(&ns, || std::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap()
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(6)))
            .unwrap();
        let mut buf = vec![0u8; 65535];
        for (id, name, want) in [
            (1u16, "web.", Ipv4Addr::new(172, 30, 0, 2)),
            (2, "www.example.com.", UPSTREAM_IP),
        ] {
            client
                .send_to(&query(id, name, RecordType::A), listen)
                .unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            let r = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(r.id(), id);
            assert_eq!(a_records(&r), vec![want], "{name}");
        }
        let mut tcp_client = linux::netns::run_in(&ns, || std::net::TcpStream::connect(listen))
            .unwrap()
            .unwrap();
        tcp_client
            .set_read_timeout(Some(Duration::from_secs(6)))
            .unwrap();
        tcp_client
            .write_all(&framed(&query(3, "db.", RecordType::A)))
            .unwrap();
        let mut len = [0u8; 2];
        tcp_client.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp_client.read_exact(&mut body).unwrap();
        let r = Message::from_vec(&body).unwrap();
        assert_eq!(a_records(&r), vec![Ipv4Addr::new(172, 30, 0, 3)]);
        // A real resolver client, when the host has one.
        if let Some(out) = busybox_nslookup(&ns, "frontend") {
            assert!(out.contains("172.30.0.2"), "{out}");
        }
        if let Some(out) = busybox_nslookup(&ns, "www.example.com") {
            assert!(out.contains(&UPSTREAM_IP.to_string()), "{out}");
        }
        drop(server);
    }));
    drop(rt);
    linux::netns::remove(&ns).unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// `busybox nslookup NAME 127.0.0.11` run inside the namespace (`nsenter`); `None` when either
/// tool is missing.
fn busybox_nslookup(ns: &std::path::Path, name: &str) -> Option<String> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args([busybox, "nslookup", name, "127.0.0.11"])
        .output()
        .ok()?;
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
