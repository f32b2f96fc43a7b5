//! Host-port reservations for published ports: a bound, never listening socket per published
//! port, so the kernel itself is the allocation table. Nobody else can bind the port while it
//! is held (a second reservation fails with Docker's "port is already allocated"), port 0 takes
//! a free port from the kernel's ephemeral range (what current Docker does for `-P`), and
//! dropping the reservation frees the port.
//!
//! Traffic to a published port never reaches the socket: the nftables DNAT rules send it to the
//! container first. This module knows nothing of rules or containers.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use crate::firewall::Proto;
use crate::{NetworkError, Result};

/// A held host port. Dropping it frees the port.
#[derive(Debug)]
pub struct Reservation {
    proto: Proto,
    addr: SocketAddrV4,
    _socket: Socket,
}

impl Reservation {
    /// The reserved port (the kernel's choice when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The host address it is bound to (0.0.0.0 for all addresses).
    pub fn host_ip(&self) -> Ipv4Addr {
        *self.addr.ip()
    }

    /// The protocol it holds the port for.
    pub fn proto(&self) -> Proto {
        self.proto
    }
}

/// Holds `host_ip:port` (`None` = every host address, 0.0.0.0) for `proto`. Port 0 picks a free
/// port from the ephemeral range. A port already held (by berth or anyone else) gives
/// [`NetworkError::PortAllocated`].
pub fn reserve(proto: Proto, host_ip: Option<Ipv4Addr>, port: u16) -> Result<Reservation> {
    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let want = SocketAddrV4::new(ip, port);
    let (ty, protocol) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let io = |op: &'static str| {
        move |e: std::io::Error| {
            NetworkError::Invalid(format!("{op} {proto}4 {want}: {}", describe(&e)))
        }
    };
    // No SO_REUSEADDR: with it Linux would let a second non-listening socket share the port.
    let socket = Socket::new(Domain::IPV4, ty, Some(protocol)).map_err(io("socket"))?;
    if let Err(e) = socket.bind(&SocketAddr::V4(want).into()) {
        return Err(match e.raw_os_error() {
            Some(code) if code == linux::Errno::EADDRINUSE as i32 && port != 0 => {
                NetworkError::PortAllocated {
                    addr: want.to_string(),
                }
            }
            Some(code) if code == linux::Errno::EADDRINUSE as i32 => NetworkError::Exhausted(
                format!("no free {proto} port left on {ip} in the ephemeral range"),
            ),
            _ => io("listen")(e),
        });
    }
    if proto == Proto::Udp {
        // Nothing is ever read from it; keep what could queue there small.
        let _ = socket.set_recv_buffer_size(1);
    }
    let bound = socket
        .local_addr()
        .map_err(io("getsockname"))?
        .as_socket_ipv4()
        .unwrap_or(want);
    Ok(Reservation {
        proto,
        addr: bound,
        _socket: socket,
    })
}

/// The error text without Rust's " (os error N)" suffix, as Go prints it.
fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_is_allocated_for_a_second_reservation() {
        let first = reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), 0).expect("reserve");
        assert_ne!(first.port(), 0);
        let second = reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), first.port());
        match second {
            Err(e @ NetworkError::PortAllocated { .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "Bind for 127.0.0.1:{} failed: port is already allocated",
                    first.port()
                )
            ),
            other => panic!("expected PortAllocated, got {other:?}"),
        }
        let port = first.port();
        drop(first);
        let again = reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), port).expect("freed on drop");
        assert_eq!(again.port(), port);
    }

    #[test]
    fn the_wildcard_conflicts_with_a_specific_address_and_protocols_are_separate() {
        let all = reserve(Proto::Udp, None, 0).expect("reserve");
        assert_eq!(all.host_ip(), Ipv4Addr::UNSPECIFIED);
        let port = all.port();
        assert!(matches!(
            reserve(Proto::Udp, Some(Ipv4Addr::LOCALHOST), port),
            Err(NetworkError::PortAllocated { .. })
        ));
        assert!(matches!(
            reserve(Proto::Udp, None, port),
            Err(NetworkError::PortAllocated { addr }) if addr == format!("0.0.0.0:{port}")
        ));
        // TCP on the same number is a different port.
        if let Ok(tcp) = reserve(Proto::Tcp, None, port) {
            assert_eq!(tcp.proto(), Proto::Tcp);
        }
    }

    #[test]
    fn a_port_in_use_by_a_listener_is_allocated() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        assert!(matches!(
            reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), port),
            Err(NetworkError::PortAllocated { .. })
        ));
    }

    #[test]
    fn an_address_not_on_this_host_is_refused() {
        let err = reserve(Proto::Tcp, Some(Ipv4Addr::new(192, 0, 2, 1)), 0).expect_err("refused");
        assert!(
            err.to_string().contains("cannot assign requested address"),
            "{err}"
        );
    }
}
