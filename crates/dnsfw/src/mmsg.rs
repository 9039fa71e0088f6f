//! Batched UDP I/O for the fast path ([`crate::udp`]): `recvmmsg` (whatever is queued, up to
//! [`BATCH`]) and `sendmmsg`, so a loaded server makes two system calls per batch instead of
//! two per query.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram. A larger query is dropped (no legitimate DNS query over UDP
/// comes near it: the question is at most 259 bytes, and EDNS options a few dozen).
pub const SLOT: usize = 4096;

/// Receive buffers for one thread.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    from: Vec<Option<SocketAddr>>,
    n: usize,
}

impl RecvBatch {
    /// Empty buffers for [`BATCH`] datagrams.
    pub fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![0u8; BATCH * SLOT],
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
            from: vec![None; BATCH],
            n: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams; returns how many. With `wait`, blocks (up to the
    /// socket's receive timeout) for the first; without, takes only what is queued
    /// (`WouldBlock` when nothing is).
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below points into `self`,
        // which outlives the call, with the lengths given.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iov[i].iov_base = self.bufs[i * SLOT..].as_mut_ptr().cast();
            iov[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: as above.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.n = 0;
            return Err(io::Error::last_os_error());
        }
        self.n = n as usize;
        for (i, h) in hdrs.iter().enumerate().take(self.n) {
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated { 0 } else { h.msg_len as usize };
            self.from[i] = from_storage(&self.addrs[i]);
        }
        Ok(self.n)
    }

    /// Datagram `i` of the last batch and its source; `None` for one cut by [`SLOT`] or from
    /// an address family we do not speak.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.n || self.lens[i] == 0 {
            return None;
        }
        Some((&self.bufs[i * SLOT..i * SLOT + self.lens[i]], self.from[i]?))
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(a: &SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match a {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let s =
                unsafe { &mut *(ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let s =
                unsafe { &mut *(ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Sends every `(datagram, destination)` of `out` with as few `sendmmsg` calls as it takes;
/// a datagram the kernel refuses is skipped (as a failed `sendto` would be). Clears `out`.
pub fn send_all(fd: RawFd, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
    let mut done = 0;
    while done < out.len() {
        let chunk = &out[done..out.len().min(done + BATCH)];
        // SAFETY: as in `RecvBatch::recv`; the pointers point into `chunk` and the local
        // arrays, all alive during the call. sendmmsg does not write through iov_base.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (d, to)) in chunk.iter().enumerate() {
            iov[i].iov_base = d.as_ptr() as *mut libc::c_void;
            iov[i].iov_len = d.len();
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_namelen = to_storage(to, &mut addrs[i]);
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        }
        // SAFETY: as above.
        let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), chunk.len() as libc::c_uint, 0) };
        // On an error for the first datagram, skip it; otherwise n were sent.
        done += if n <= 0 { 1 } else { n as usize };
    }
    out.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batches_round_trip_v4_and_v6() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 20], server.local_addr().unwrap())
                .unwrap();
        }
        // Too big for a slot: dropped, not cut.
        client
            .send_to(&vec![9u8; SLOT + 10], server.local_addr().unwrap())
            .unwrap();
        let mut b = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 6 {
            let n = b.recv(server.as_raw_fd(), true).unwrap();
            for i in 0..n {
                got.push(b.get(i).map(|(d, from)| (d.to_vec(), from)));
            }
        }
        assert_eq!(got.iter().filter(|g| g.is_none()).count(), 1);
        let mut out: Vec<(Vec<u8>, SocketAddr)> = got.into_iter().flatten().collect();
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|(_, f)| *f == client.local_addr().unwrap()));
        send_all(server.as_raw_fd(), &mut out);
        assert!(out.is_empty());
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 20]);
        }
        if let Ok(s6) = std::net::UdpSocket::bind("[::1]:0") {
            let c6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
            c6.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            s6.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            c6.send_to(b"six", s6.local_addr().unwrap()).unwrap();
            let n = b.recv(s6.as_raw_fd(), true).unwrap();
            assert_eq!(n, 1);
            let (d, from) = b.get(0).unwrap();
            assert_eq!((d, from), (&b"six"[..], c6.local_addr().unwrap()));
            let mut out = vec![(b"back".to_vec(), from)];
            send_all(s6.as_raw_fd(), &mut out);
            let (n, _) = c6.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"back");
        }
    }
}
