#!/usr/bin/env python3
"""Injects one forged TCP segment with a bogus high timestamp for paws-ts.pcap
(make-exception-captures.sh).

Runs in the client namespace on the client-side veth (AF_PACKET, so it sees the client's own
outgoing frames). It waits for the client's segment starting with `MAIL FROM` and sends, from
the client's address and port to the server's, one pure ACK carrying the timestamps option
with TSval = that segment's TSval + 2^30 (TSecr unchanged) and seq = that segment's seq - 100000,
ack = that segment's ack.

The receiver (Linux) checks the sequence number before it takes a segment's TSval as its new
`ts_recent` (RFC 7323 §4.3): this one lies far below its window, so it is answered with a
duplicate ACK and forgotten, and the session goes on. A middlebox that takes the TSval of every
segment as the sender's newest would from then on see every genuine segment of the client
(TSvals 2^30 "older") fail PAWS (RFC 7323 §5). The server delays its MAIL reply
(smtp-sink -W mail:1), so the forged segment is on the wire before the client's RCPT TO.

Usage: exception-inject-ts.py IFACE   (prints `ready` once it listens, then what it sent;
exits 1 after 30 s without a MAIL FROM)
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
iface = sys.argv[1]


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def timestamps(opts):
    """(TSval, TSecr) of a TCP options block, or None."""
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        size = opts[i + 1]
        if kind == 8 and size == 10:
            return struct.unpack("!II", opts[i + 2:i + 10])
        i += size
    return None


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((iface, 0))
s.settimeout(1.0)
print("ready", flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    if len(frame) < 14 + 20 + 20 or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6:
        continue
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    payload = tcp[doff:]
    if dport != 25 or not payload.startswith(b"MAIL FROM"):
        continue
    ts = timestamps(tcp[20:doff])
    if ts is None:
        print("exception-inject-ts: the client sends no timestamps", file=sys.stderr)
        sys.exit(1)
    tsval, tsecr = ts
    bogus = (tsval + (1 << 30)) & 0xFFFFFFFF
    src, dst = ip[12:16], ip[16:20]
    fseq = (seq - 100000) & 0xFFFFFFFF
    # NOP, NOP, timestamps: 12 bytes of options, data offset 8 words.
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", bogus, tsecr)
    th = struct.pack("!HHIIBBHHH", sport, dport, fseq, ack, 8 << 4, 0x10, 502, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(th))
    th = th[:16] + struct.pack("!H", csum(pseudo + th)) + th[18:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0, 0x4000, 64, 6, 0, src, dst)
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    s.send(frame[:14] + iph + th)
    print(f"injected ACK seq={fseq} (MAIL FROM seq {seq} - 100000) ack={ack} "
          f"TSval={bogus} (client's {tsval} + 2^30) TSecr={tsecr}")
    sys.exit(0)
print("exception-inject-ts: no MAIL FROM segment seen", file=sys.stderr)
sys.exit(1)
