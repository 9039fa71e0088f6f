//! Sending the packets the sensor builds (reject answers) from raw sockets: whole IPv4 and
//! IPv6 packets, headers included, to the packet's own destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The raw sockets (IPv6 is optional: a host without IPv6 still rejects IPv4).
pub(crate) struct Sender {
    v4: Socket,
    v6: Option<Socket>,
}

fn raw_socket(domain: Domain) -> std::io::Result<Socket> {
    // IPPROTO_RAW: the packet carries its own IP header (IP_HDRINCL implied).
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(libc::IPPROTO_RAW)))?;
    // Marked, so a single host's OUTPUT rule can leave our own answers out of the queue.
    s.set_mark(crate::SENT_MARK)?;
    Ok(s)
}

impl Sender {
    /// Opens the sockets (needs CAP_NET_RAW).
    pub(crate) fn open() -> std::io::Result<Sender> {
        Ok(Sender {
            v4: raw_socket(Domain::IPV4)?,
            v6: raw_socket(Domain::IPV6).ok(),
        })
    }

    /// Sends one whole IP packet to its destination address.
    pub(crate) fn send(&self, packet: &[u8]) -> std::io::Result<()> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP packet");
        let (sock, dst) = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let a: [u8; 4] = packet
                    .get(16..20)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(bad)?;
                (&self.v4, IpAddr::V4(Ipv4Addr::from(a)))
            }
            Some(6) => {
                let a: [u8; 16] = packet
                    .get(24..40)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(bad)?;
                let s = self.v6.as_ref().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::Unsupported, "no IPv6 raw socket")
                })?;
                (s, IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => return Err(bad()),
        };
        let n = sock.send_to(packet, &SockAddr::from(SocketAddr::new(dst, 0)))?;
        if n != packet.len() {
            return Err(std::io::Error::other(format!(
                "sent {n} of {} bytes",
                packet.len()
            )));
        }
        Ok(())
    }
}
