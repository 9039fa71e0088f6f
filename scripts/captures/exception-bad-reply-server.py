#!/usr/bin/env python3
"""A tiny scripted SMTP server for bad-reply.pcap and unknown-reply.pcap
(make-exception-captures.sh).

One session, then exit. It greets and answers EHLO properly; then, by MODE:

* `hello` (default, bad-reply.pcap): MAIL FROM is answered with a line that is not an SMTP
  reply (`hello`) followed by a real `250` line in the same write: swaks reads reply lines
  until one matches /^\\d\\d\\d / and accepts the reply if any line starts with `250 `, so
  it goes on with RCPT TO, DATA and QUIT, which get ordinary replies.
* `556` (unknown-reply.pcap): MAIL FROM gets `250`; the RCPT TO of bob@example.org is
  answered `556 5.1.10` (RFC 7504's code for a domain that accepts no mail: a valid reply
  code outside Suricata's table), every other RCPT TO `250`; swaks goes on with the accepted
  recipients.

Usage: exception-bad-reply-server.py ADDR PORT [MODE]
"""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "hello"
if mode not in ("hello", "556"):
    sys.exit(f"exception-bad-reply-server: unknown mode {mode!r} (hello, 556)")
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(1)
ls.settimeout(30)
conn, _ = ls.accept()
conn.settimeout(30)
f = conn.makefile("rb")


def send(text):
    conn.sendall(text.encode("ascii"))


send("220 bad-reply.test ESMTP sekisho fixture\r\n")
in_data = False
for raw in f:
    line = raw.rstrip(b"\r\n").decode("ascii", "replace")
    if in_data:
        if line == ".":
            in_data = False
            send("250 2.0.0 Ok: queued\r\n")
        continue
    verb = line.split(" ", 1)[0].upper()
    if verb in ("EHLO", "HELO"):
        send("250 bad-reply.test\r\n")
    elif line.upper().startswith("MAIL FROM"):
        if mode == "hello":
            # Not an SMTP reply line: no three-digit code.
            send("hello\r\n250 2.1.0 Ok\r\n")
        else:
            send("250 2.1.0 Ok\r\n")
    elif line.upper().startswith("RCPT TO"):
        if mode == "556" and "<bob@example.org>" in line.lower():
            send("556 5.1.10 <bob@example.org>: Recipient address rejected: "
                 "domain does not accept mail\r\n")
        else:
            send("250 2.1.5 Ok\r\n")
    elif verb == "DATA":
        in_data = True
        send("354 End data with <CR><LF>.<CR><LF>\r\n")
    elif verb == "QUIT":
        send("221 2.0.0 Bye\r\n")
        break
    else:
        send("502 5.5.2 Error: command not recognized\r\n")
conn.close()
ls.close()
