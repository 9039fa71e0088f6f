#!/usr/bin/env python3
"""Injects one forged TCP RST for forged-rst.pcap (make-exception-captures.sh).

Runs in the client namespace on the client-side veth (AF_PACKET, so it sees the client's own
outgoing frames). It waits for the client's segment starting with `MAIL FROM`, then sends, from
the client's address and port to the server's, one RST|ACK whose sequence number is the
client's next sequence number (that segment's seq + its length) + OFFSET, ack = that segment's
ack. The server (Linux, RFC 5961 3.2) does not reset on an in-window RST that is not exactly
the next expected sequence number: it answers with a challenge ACK and the session goes on.
The server delays its MAIL reply (smtp-sink -W mail:1), so the RST is on the wire before the
client's RCPT TO.

Usage: exception-inject-rst.py IFACE OFFSET   (prints `ready` once it listens, then what it
sent; exits 1 after 30 s without a MAIL FROM)
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
iface, offset = sys.argv[1], int(sys.argv[2])


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


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
    src, dst = ip[12:16], ip[16:20]
    rst_seq = (seq + len(payload) + offset) & 0xFFFFFFFF
    th = struct.pack("!HHIIBBHHH", sport, dport, rst_seq, ack, 5 << 4, 0x14, 0, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(th))
    th = th[:16] + struct.pack("!H", csum(pseudo + th)) + th[18:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), 0, 0x4000, 64, 6, 0, src, dst)
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    s.send(frame[:14] + iph + th)
    print(f"injected RST|ACK seq={rst_seq} (next expected {seq + len(payload)} + {offset}) ack={ack}")
    sys.exit(0)
print("exception-inject-rst: no MAIL FROM segment seen", file=sys.stderr)
sys.exit(1)
