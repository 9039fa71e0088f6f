#!/usr/bin/env python3
"""Crafted captures that attack the packet decoder (see tests/fixtures/captures/crafted/README.md).

Usage: python3 crafted.py OUTDIR

Plain `struct`, no third-party modules: every byte is decided here, so runs are byte-identical
(fixed timestamps, addresses, ports, sequence numbers, IP identifications). Each file is one SMTP
session modelled on tests/fixtures/captures/smtp/swaks-plain-disallowed.pcap (smtp-sink server:
220 banner, EHLO with a non-final PIPELINING line, MAIL FROM, RCPT TO, DATA, QUIT), with a full
three-way handshake, TCP timestamps on every segment, consistent sequence and acknowledgment
numbers and correct IP/TCP checksums, so that a TCP reassembler delivers it. What differs between
files is how the packets are put on the wire.
"""

import os
import struct
import sys

T0 = 1_700_000_000  # pcap timestamps: seconds, then 100 microseconds per packet

CLIENT4 = bytes([10, 0, 0, 150])
SERVER4 = bytes([203, 0, 113, 25])
CLIENT6 = bytes.fromhex("fd000000000000000000000000000150")
SERVER6 = bytes.fromhex("fd000000000000000000000000000025")
CLIENT_MAC = bytes.fromhex("020000000150")
SERVER_MAC = bytes.fromhex("020000000025")
CPORT, SPORT = 50428, 25
CISN, SISN = 0x1A2B3C4D, 0x5E6F7081

RCPT = b"RCPT TO:<b@yahoo.example>\r\n"


def csum(data: bytes) -> int:
    """Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ones_sum(data: bytes) -> int:
    """Ones-complement sum (not inverted) of 16-bit big-endian words."""
    return ~csum(data) & 0xFFFF


# --- the session -------------------------------------------------------------------------------

class Seg:
    """One TCP segment: direction ('c' client to server, 's' back), flags, payload, seq, ack."""

    def __init__(self, d, flags, payload=b""):
        self.d, self.flags, self.payload = d, flags, payload
        self.seq = self.ack = 0
        self.tag = None


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def smtp_session(rcpt=RCPT):
    """The segments of one SMTP session, seq/ack filled in. The RCPT segment is tagged 'rcpt'."""
    segs = [
        Seg("c", SYN),
        Seg("s", SYN | ACK),
        Seg("c", ACK),
        Seg("s", PSH | ACK, b"220 smtp-sink ESMTP\r\n"),
        Seg("c", PSH | ACK, b"EHLO client.example\r\n"),
        Seg("s", PSH | ACK, b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 DSN\r\n"),
        Seg("c", PSH | ACK, b"MAIL FROM:<a@example.com>\r\n"),
        Seg("s", PSH | ACK, b"250 2.1.0 Ok\r\n"),
        Seg("c", PSH | ACK, rcpt),
        Seg("s", PSH | ACK, b"250 2.1.5 Ok\r\n"),
        Seg("c", PSH | ACK, b"DATA\r\n"),
        Seg("s", PSH | ACK, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        # The body names no recipient: only the RCPT command carries it.
        Seg("c", PSH | ACK, b"From: a@example.com\r\nTo: undisclosed-recipients:;\r\n"
            b"Subject: sekisho crafted capture\r\n\r\nhello\r\n.\r\n"),
        Seg("s", PSH | ACK, b"250 2.0.0 Ok: queued\r\n"),
        Seg("c", PSH | ACK, b"QUIT\r\n"),
        Seg("s", PSH | ACK, b"221 2.0.0 Bye\r\n"),
        Seg("s", FIN | ACK),
        Seg("c", FIN | ACK),
        Seg("s", ACK),
    ]
    segs[8].tag = "rcpt"
    nxt = {"c": CISN, "s": SISN}
    ts = {"c": 0, "s": 0}
    for n, s in enumerate(segs):
        other = "s" if s.d == "c" else "c"
        # TSval grows by one per packet; TSecr echoes the peer's latest (0 before it sent any).
        ts[s.d] = (162_134_495 if s.d == "s" else 1_628_659_206) + n
        s.tsval, s.tsecr = ts[s.d], ts[other]
        s.seq = nxt[s.d]
        s.ack = nxt[other] if s.flags & ACK else 0
        nxt[s.d] = (nxt[s.d] + len(s.payload) + (1 if s.flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
    return segs


def tcp_bytes(seg, src, dst):
    """The TCP segment with options (SYN: MSS, SACK-permitted, timestamps, window scale; else
    NOP NOP timestamps: a 32-byte header) and its checksum over the IPv4/IPv6 pseudo header."""
    tsval, tsecr = seg.tsval, seg.tsecr
    if seg.flags & SYN:
        opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, tsval, tsecr) \
            + b"\x01" + struct.pack("!BBB", 3, 3, 10)
    else:
        opts = b"\x01\x01" + struct.pack("!BBII", 8, 10, tsval, tsecr)
    hlen = 20 + len(opts)
    sport, dport = (CPORT, SPORT) if seg.d == "c" else (SPORT, CPORT)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seg.seq, seg.ack, (hlen // 4) << 4, seg.flags,
                      502 if not seg.flags & SYN else 64240, 0, 0) + opts
    seg_bytes = hdr + seg.payload
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(seg_bytes))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg_bytes), 6)
    c = csum(pseudo + seg_bytes)
    return seg_bytes[:16] + struct.pack("!H", c) + seg_bytes[18:]


def ipv4(src, dst, proto, payload, ident, off=0, more=False):
    """An IPv4 packet; `off` is the fragment offset in bytes (a multiple of 8)."""
    flags_off = (off // 8) | (0x2000 if more else 0) | (0x4000 if (off == 0 and not more) else 0)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_off, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6(src, dst, next_header, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64) + src + dst + payload


def eth(src_mac, dst_mac, ethertype, payload):
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def eth_for(d, ethertype, payload):
    if d == "c":
        return eth(CLIENT_MAC, SERVER_MAC, ethertype, payload)
    return eth(SERVER_MAC, CLIENT_MAC, ethertype, payload)


def v4_frames(segs, rewrite=None):
    """IPv4 frames of the session; `rewrite(seg, tcp, ident)` may return the frames for a segment
    instead (a list of IP packets)."""
    out = []
    ident = {"c": 0x1000, "s": 0x8000}
    for n, s in enumerate(segs):
        src, dst = (CLIENT4, SERVER4) if s.d == "c" else (SERVER4, CLIENT4)
        tcp = tcp_bytes(s, src, dst)
        ident[s.d] += 1
        ips = rewrite(s, tcp, ident[s.d]) if rewrite else None
        if ips is None:
            ips = [ipv4(src, dst, 6, tcp, ident[s.d])]
        out.extend(eth_for(s.d, 0x0800, ip) for ip in ips)
    return out


# --- the captures ------------------------------------------------------------------------------

def frag_beyond_end():
    """(a) The RCPT segment (32-byte TCP header + 27 bytes: 59 bytes of IP payload) as IPv4
    fragments out of order: [0,40) "...RCPT TO:", then [64,72) and [56,64) which lie beyond the
    datagram's end, then the last fragment [40,59) (MF=0) that sets the length to 59. A
    reassembler that checked only the arriving fragment against the end saw every byte covered
    and copied the fragment at 64 into a 59-byte buffer (slice index panic)."""
    def rewrite(s, tcp, ident):
        if s.tag != "rcpt":
            return None
        assert len(tcp) == 59
        junk = b"XXXXXXXX"
        return [
            ipv4(CLIENT4, SERVER4, 6, tcp[0:40], ident, 0, True),
            ipv4(CLIENT4, SERVER4, 6, junk, ident, 64, True),
            ipv4(CLIENT4, SERVER4, 6, junk, ident, 56, True),
            ipv4(CLIENT4, SERVER4, 6, tcp[40:], ident, 40, False),
        ]
    return v4_frames(smtp_session(), rewrite)


def harmless_twin(evil: bytes, prefix: bytes) -> bytes:
    """Bytes as long as `evil`, starting with `prefix`, ending in CRLF, whose ones-complement sum
    equals evil's: the TCP checksum is right whichever copy a reassembler keeps. `evil` starts
    at an even offset of the segment."""
    fill_len = len(evil) - len(prefix) - 2
    base = bytearray(prefix + b"-" * fill_len + b"\r\n")
    # Four adjustable 16-bit words at even positions inside the filler: three equal ones and a
    # fourth that makes up what the rest lacks (ones-complement sums add modulo 65535).
    p = (len(prefix) + 1) // 2 * 2
    base[p:p + 8] = bytes(8)
    need = (ones_sum(evil) - ones_sum(bytes(base))) % 0xFFFF
    alnum = [c for c in range(0x30, 0x7B) if chr(c).isalnum()]
    words = [a << 8 | b for a in alnum for b in alnum]
    for w in words:
        last = (need - 3 * w) % 0xFFFF
        if (last >> 8) in alnum and (last & 0xFF) in alnum:
            base[p:p + 8] = struct.pack("!HHHH", w, w, w, last)
            assert ones_sum(bytes(base)) == ones_sum(evil)
            return bytes(base)
    raise SystemExit("no checksum twin found")


def frag_overlap_rcpt():
    """(b) The RCPT segment as IPv4 fragments, sent so that the datagram stays incomplete until
    both copies are in: first [32,59) a harmless "NOOP ..." (MF=0); then a second copy [24,59)
    (MF=0) overlapping it with different bytes, the recipient (and the end of the TCP header with
    the same bytes); then [0,32), the TCP header (MF=1). Both readings have a valid TCP checksum.
    First-wins reassembly (the old decoder) saw a NOOP and passed; a last-wins host receives
    RCPT TO:<b@yahoo.example>. Linux and RFC 5722 discard the datagram; so must the firewall."""
    def rewrite(s, tcp, ident):
        if s.tag != "rcpt":
            return None
        evil = tcp[32:]
        assert evil == RCPT
        harmless = harmless_twin(evil, b"NOOP ")
        assert len(harmless) == len(evil) and harmless != evil
        return [
            ipv4(CLIENT4, SERVER4, 6, harmless, ident, 32, False),
            ipv4(CLIENT4, SERVER4, 6, tcp[24:], ident, 24, False),
            ipv4(CLIENT4, SERVER4, 6, tcp[0:32], ident, 0, True),
        ]
    return v4_frames(smtp_session(), rewrite)


def ipv6_frag_dstopts():
    """(c) IPv6 SMTP session; every client packet is Fragment header + [Destination Options
    (PadN) + TCP] split in two fragments (the first 16 bytes: the options header and the first 8
    bytes of the TCP header). After reassembly the fragment header's next header is 60, not 6: a
    decoder that took it as the transport never saw TCP/25 and the recipient policy never ran."""
    out = []
    segs = smtp_session()
    for n, s in enumerate(segs):
        src, dst = (CLIENT6, SERVER6) if s.d == "c" else (SERVER6, CLIENT6)
        tcp = tcp_bytes(s, src, dst)
        if s.d == "s":
            out.append(eth_for("s", 0x86DD, ipv6(src, dst, 6, tcp)))
            continue
        dstopts = bytes([6, 0, 1, 4, 0, 0, 0, 0])
        part = dstopts + tcp
        ident = 0x5E150000 + n
        for off, more, data in [(0, True, part[:16]), (16, False, part[16:])]:
            fh = struct.pack("!BBHI", 60, 0, off | (1 if more else 0), ident)
            out.append(eth_for("c", 0x86DD, ipv6(src, dst, 44, fh + data)))
    return out


OUTER_A = bytes([192, 0, 2, 1])
OUTER_B = bytes([192, 0, 2, 2])


def udp4(src, dst, sport, dport, payload, ident):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum 0: none
    return ipv4(src, dst, 17, udp, ident)


def tunnel(inner_frames, kind):
    """Wraps Ethernet frames in VXLAN (UDP 4789, I flag, VNI 42) or GENEVE (UDP 6081, protocol
    0x6558 Ethernet, VNI 42) between two tunnel endpoints; direction from the inner source MAC."""
    out = []
    for i, f in enumerate(inner_frames):
        if kind == "vxlan":
            hdr, port = struct.pack("!BxxxI", 0x08, 42 << 8), 4789
        else:
            hdr, port = struct.pack("!BBHI", 0, 0, 0x6558, 42 << 8), 6081
        from_client = f[6:12] == CLIENT_MAC
        src, dst = (OUTER_A, OUTER_B) if from_client else (OUTER_B, OUTER_A)
        ip = udp4(src, dst, 49152 + (7 if from_client else 9), port, hdr + f, 0x100 + i)
        out.append(eth(b"\x02\x00\x00\x00\x00\x0a" if from_client else b"\x02\x00\x00\x00\x00\x0b",
                       b"\x02\x00\x00\x00\x00\x0b" if from_client else b"\x02\x00\x00\x00\x00\x0a",
                       0x0800, ip))
    return out


def malformed_inner():
    """Inner frames that must not decode: the client's SYN with its IPv4 header cut after 10 bytes
    (Ethernet + 10 bytes), and the client's RCPT segment whose IPv4 total length claims 200 bytes
    more than are there."""
    frames = v4_frames(smtp_session())
    syn, rcpt = frames[0], frames[8]
    cut = syn[:14 + 10]
    ip = bytearray(rcpt[14:])
    struct.pack_into("!H", ip, 2, len(ip) + 200)
    struct.pack_into("!H", ip, 10, 0)
    struct.pack_into("!H", ip, 10, csum(bytes(ip[:20])))
    return [cut, rcpt[:14] + bytes(ip)]


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            us = i * 100
            f.write(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(fr), len(fr)))
            f.write(fr)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    files = {
        "ipv4-frag-beyond-end.pcap": frag_beyond_end(),
        "ipv4-frag-overlap-rcpt.pcap": frag_overlap_rcpt(),
        "ipv6-frag-dstopts-smtp.pcap": ipv6_frag_dstopts(),
        "vxlan-smtp.pcap": tunnel(v4_frames(smtp_session()), "vxlan"),
        "geneve-smtp.pcap": tunnel(v4_frames(smtp_session()), "geneve"),
        "vxlan-malformed-inner.pcap": tunnel(malformed_inner(), "vxlan"),
        "geneve-malformed-inner.pcap": tunnel(malformed_inner(), "geneve"),
    }
    for name, frames in files.items():
        write_pcap(os.path.join(out, name), frames)
        print(f"{name}: {len(frames)} packets")


if __name__ == "__main__":
    main()
