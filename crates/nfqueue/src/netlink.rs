//! A small binding to the kernel's `nfnetlink_queue`: bind and configure a queue, receive
//! packets, send verdicts one at a time or as a batch (`NFQNL_MSG_VERDICT_BATCH`: one message
//! decides every packet up to an id). The `nfq` crate covers the first three but neither
//! batches nor exposes its socket, and a verdict must come from the socket bound to the
//! queue (the kernel checks the sender's netlink port id).
//!
//! Wire format: `linux/netfilter/nfnetlink_queue.h`. Netlink headers are in host order,
//! the nfnetlink payloads (ids, marks, lengths) in network order.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_PAYLOAD: u16 = 10;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_PACKET: u8 = 2;
/// `NFQA_CFG_F_FAIL_OPEN`: accept packets when the queue is full.
pub(crate) const F_FAIL_OPEN: u32 = 1;
/// `NFQA_CFG_F_GSO`: hand out GSO super-packets whole.
pub(crate) const F_GSO: u32 = 4;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;
/// nlmsghdr + nfgenmsg.
const HDRS: usize = NLMSG_HDRLEN + 4;

/// Receive buffer: a full 64 KiB packet (GSO super-packets, copy range 65535) and its
/// metadata; a datagram longer than this is reported truncated (`MSG_TRUNC`).
const RECV_BUF: usize = 65536 + 8192;

/// A kernel verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `NF_DROP`.
    Drop,
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_REPEAT`: run the packet through the hook again (with the mark given).
    Repeat,
}

impl Verdict {
    fn code(self) -> u32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Repeat => 4,
        }
    }
}

/// One queued packet: its id (verdicts name it), its mark, where its bytes are in the
/// queue's receive buffer ([`Queue::payload`]).
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    /// The kernel's packet id (increasing per queue).
    pub(crate) id: u32,
    /// The packet's mark (`skb->mark`) as it was queued.
    pub(crate) mark: u32,
    payload: Range<usize>,
}

/// One bound queue on its own netlink socket.
pub(crate) struct Queue {
    fd: OwnedFd,
    num: u16,
    buf: Vec<u8>,
    /// Packets of the last datagram not handed out yet.
    pending: VecDeque<Packet>,
    /// Scratch for outgoing messages.
    out: Vec<u8>,
    seq: u32,
}

fn put_attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

impl Queue {
    /// Opens a netlink socket and binds queue `num` (copy range 65535: whole packets).
    pub(crate) fn open(num: u16) -> io::Result<Queue> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl is valid (pid 0: the kernel assigns one).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // A full socket buffer drops packets (counted by the kernel as user drops) instead of
        // reporting ENOBUFS on every recv.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_NO_ENOBUFS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let mut q = Queue {
            fd,
            num,
            buf: vec![0; RECV_BUF],
            pending: VecDeque::new(),
            out: Vec::with_capacity(256),
            seq: 0,
        };
        q.config(|o| put_attr(o, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]))?;
        let mut params = 65535u32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        q.config(|o| put_attr(o, NFQA_CFG_PARAMS, &params))?;
        Ok(q)
    }

    /// The kernel queue length (packets waiting for a verdict).
    pub(crate) fn set_maxlen(&mut self, len: u32) -> io::Result<()> {
        self.config(|o| put_attr(o, NFQA_CFG_QUEUE_MAXLEN, &len.to_be_bytes()))
    }

    /// Sets (`on`) or clears one `NFQA_CFG_F_*` flag.
    pub(crate) fn set_flag(&mut self, flag: u32, on: bool) -> io::Result<()> {
        self.config(|o| {
            put_attr(o, NFQA_CFG_MASK, &flag.to_be_bytes());
            put_attr(
                o,
                NFQA_CFG_FLAGS,
                &(if on { flag } else { 0 }).to_be_bytes(),
            );
        })
    }

    /// Unbinds the queue (the kernel stops queueing to this socket).
    pub(crate) fn unbind(&mut self) -> io::Result<()> {
        self.config(|o| put_attr(o, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_UNBIND, 0, 0, 0]))
    }

    /// Starts a message of `msg` type in `self.out` (headers; length filled by `send`).
    fn begin(&mut self, msg: u16, flags: u16) {
        self.seq = self.seq.wrapping_add(1);
        self.out.clear();
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        self.out
            .extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg).to_ne_bytes());
        self.out.extend_from_slice(&flags.to_ne_bytes());
        self.out.extend_from_slice(&self.seq.to_ne_bytes());
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family AF_UNSPEC, version 0, the queue number.
        self.out.extend_from_slice(&[0, 0]);
        self.out.extend_from_slice(&self.num.to_be_bytes());
    }

    fn send(&mut self) -> io::Result<()> {
        let len = self.out.len() as u32;
        self.out[..4].copy_from_slice(&len.to_ne_bytes());
        // SAFETY: sending an initialised buffer of its own length (the kernel is the
        // default destination of a netlink socket).
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                self.out.as_ptr().cast(),
                self.out.len(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// A config message with `attrs`, acknowledged (an error answer is returned).
    fn config(&mut self, attrs: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.begin(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK);
        attrs(&mut self.out);
        self.send()?;
        let seq = self.seq;
        let mut stray = Vec::new();
        let r = 'answer: loop {
            let n = self.recv_datagram(0)?;
            let mut at = 0;
            while at + NLMSG_HDRLEN <= n {
                let len =
                    u32::from_ne_bytes(self.buf[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
                let ty = u16::from_ne_bytes([self.buf[at + 4], self.buf[at + 5]]);
                let s = u32::from_ne_bytes(self.buf[at + 8..at + 12].try_into().unwrap_or([0; 4]));
                if len < NLMSG_HDRLEN || at + len > n {
                    break;
                }
                if ty == NLMSG_ERROR && s == seq && len >= NLMSG_HDRLEN + 4 {
                    let code = i32::from_ne_bytes(
                        self.buf[at + NLMSG_HDRLEN..at + NLMSG_HDRLEN + 4]
                            .try_into()
                            .unwrap_or([0; 4]),
                    );
                    break 'answer if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                // A packet queued while the queue is being set up (the next datagram
                // overwrites its bytes, so it cannot be kept for inspection).
                if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                    if let Some(p) = parse_packet(&self.buf[at..at + len], at) {
                        stray.push(p.id);
                    }
                }
                at += len.next_multiple_of(4);
            }
        };
        // Fail closed: dropped, as a full queue would (TCP retransmits).
        for id in stray {
            self.verdict(id, Verdict::Drop, None)?;
        }
        r
    }

    fn recv_datagram(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: receiving into our own buffer of its length.
        let r = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                flags | libc::MSG_TRUNC,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        if n > self.buf.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(n)
    }

    /// The next packet: one already received, else from the socket (blocking unless
    /// `nonblocking`: then `WouldBlock` when none waits). `Interrupted` on a signal.
    pub(crate) fn recv(&mut self, nonblocking: bool) -> io::Result<Packet> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(p);
            }
            let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
            let n = self.recv_datagram(flags)?;
            let mut at = 0;
            while at + NLMSG_HDRLEN <= n {
                let len =
                    u32::from_ne_bytes(self.buf[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
                let ty = u16::from_ne_bytes([self.buf[at + 4], self.buf[at + 5]]);
                if len < NLMSG_HDRLEN || at + len > n {
                    break;
                }
                if ty == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 {
                    let code = i32::from_ne_bytes(
                        self.buf[at + NLMSG_HDRLEN..at + NLMSG_HDRLEN + 4]
                            .try_into()
                            .unwrap_or([0; 4]),
                    );
                    if code != 0 {
                        // An error answer to a verdict (e.g. an id the kernel no longer
                        // holds): report it.
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                } else if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                    if let Some(p) = parse_packet(&self.buf[at..at + len], at) {
                        self.pending.push_back(p);
                    }
                }
                // Anything else (NLMSG_NOOP, NLMSG_DONE, overrun notices) carries nothing.
                at += len.next_multiple_of(4);
            }
        }
    }

    /// The bytes of `p` (an IP packet). Valid until the next datagram is received, i.e. use
    /// it before calling [`Queue::recv`] again.
    pub(crate) fn payload(&self, p: &Packet) -> &[u8] {
        self.buf.get(p.payload.clone()).unwrap_or(&[])
    }

    /// The verdict for packet `id`, with a new mark when `mark` is given.
    pub(crate) fn verdict(&mut self, id: u32, v: Verdict, mark: Option<u32>) -> io::Result<()> {
        self.begin(NFQNL_MSG_VERDICT, NLM_F_REQUEST);
        self.verdict_attrs(id, v, mark);
        self.send()
    }

    /// One verdict for every packet of the queue up to and including `id` still waiting
    /// (`NFQNL_MSG_VERDICT_BATCH`).
    pub(crate) fn verdict_batch(&mut self, id: u32, v: Verdict) -> io::Result<()> {
        self.begin(NFQNL_MSG_VERDICT_BATCH, NLM_F_REQUEST);
        self.verdict_attrs(id, v, None);
        self.send()
    }

    fn verdict_attrs(&mut self, id: u32, v: Verdict, mark: Option<u32>) {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&v.code().to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        put_attr(&mut self.out, NFQA_VERDICT_HDR, &hdr);
        if let Some(m) = mark {
            put_attr(&mut self.out, NFQA_MARK, &m.to_be_bytes());
        }
    }
}

/// A packet message (`msg` from its netlink header on, at offset `base` in the buffer):
/// id, mark and payload range; `None` without a packet header.
fn parse_packet(msg: &[u8], base: usize) -> Option<Packet> {
    let mut at = HDRS;
    let (mut id, mut mark, mut payload) = (None, 0, 0..0);
    while at + 4 <= msg.len() {
        let len = usize::from(u16::from_ne_bytes([msg[at], msg[at + 1]]));
        let ty = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]) & 0x3fff;
        if len < 4 || at + len > msg.len() {
            break;
        }
        let data = &msg[at + 4..at + len];
        match ty {
            NFQA_PACKET_HDR if data.len() >= 4 => {
                id = Some(u32::from_be_bytes(data[..4].try_into().ok()?));
            }
            NFQA_MARK if data.len() >= 4 => {
                mark = u32::from_be_bytes(data[..4].try_into().ok()?);
            }
            NFQA_PAYLOAD => payload = base + at + 4..base + at + len,
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    Some(Packet {
        id: id?,
        mark,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_messages_parse() {
        // nlmsghdr + nfgenmsg, then PACKET_HDR (id 7), MARK 0x5, PAYLOAD of 3 bytes.
        let mut m = vec![0u8; HDRS];
        put_attr(&mut m, NFQA_PACKET_HDR, &[0, 0, 0, 7, 0x08, 0x00, 3]);
        put_attr(&mut m, NFQA_MARK, &[0, 0, 0, 5]);
        put_attr(&mut m, NFQA_PAYLOAD, &[0x45, 1, 2]);
        let p = parse_packet(&m, 100).unwrap();
        assert_eq!((p.id, p.mark), (7, 5));
        assert_eq!(p.payload, 100 + HDRS + 12 + 8 + 4..100 + HDRS + 12 + 8 + 7);
        // No packet header: not a packet.
        let mut m = vec![0u8; HDRS];
        put_attr(&mut m, NFQA_PAYLOAD, &[1]);
        assert!(parse_packet(&m, 0).is_none());
        // A truncated attribute ends parsing without reading past the message.
        let mut m = vec![0u8; HDRS];
        put_attr(&mut m, NFQA_PACKET_HDR, &[0, 0, 0, 9]);
        m.extend_from_slice(&[200, 0, 10, 0]);
        assert_eq!(parse_packet(&m, 0).unwrap().id, 9);
    }
}
