#!/usr/bin/env bash
# Regenerates the real captures behind the exception-policy tests in
# tests/fixtures/captures/exceptions/ and, for each one, the envelope tshark's SMTP dissector
# sees (NAME.tshark.json, grouped as in make-smtp-captures.sh).
#
# The same setup as make-smtp-captures.sh: two network namespaces joined by a veth pair, the
# client 10.0.0.150/24 and the server 203.0.113.25/24, offloads and IPv6 off, tcpdump on the
# client-side veth (port 25 only), one pcap per session. Clients: swaks. Servers: Postfix's
# smtp-sink and, for bad-reply.pcap, a tiny scripted python3 server
# (exception-bad-reply-server.py). The forged RST is sent by exception-inject-rst.py (python3
# AF_PACKET socket in the client namespace).
#
#   midstream.pcap   swaks -> smtp-sink (greeting delayed 2 s by -W connect:2); tcpdump is
#                    started only once the client's connection is ESTABLISHED, so the capture
#                    holds no SYN, SYN-ACK or handshake ACK.
#   many-rcpts.pcap  swaks --pipeline, one message to r1..r1100@example.com and then
#                    b@yahoo.example (recipient 1,101).
#   bad-reply.pcap   swaks -> the scripted server, which answers MAIL FROM with `hello` (not a
#                    reply line) followed by `250 2.1.0 Ok`; swaks goes on with RCPT TO.
#   forged-rst.pcap  swaks -> smtp-sink (MAIL reply delayed 1 s by -W mail:1); after the
#                    client's MAIL FROM, a RST|ACK from the client with seq = next expected
#                    + 1000 is injected; the server answers it with a challenge ACK and the
#                    session goes on (RCPT, DATA, QUIT).
#   unknown-reply.pcap  swaks --to bob@example.org,b@yahoo.example -> the scripted server in
#                    mode 556, which answers bob's RCPT TO `556 5.1.10` (RFC 7504: a valid
#                    reply code outside Suricata's table) and b's `250`; swaks goes on with
#                    DATA and QUIT.
#   paws-ts.pcap     swaks -> smtp-sink (MAIL reply delayed 1 s by -W mail:1); after the
#                    client's MAIL FROM, a pure ACK from the client with TSval = its TSval
#                    + 2^30 and seq = that segment's seq - 100000 (far below the window) is
#                    injected by exception-inject-ts.py; the server answers it with a
#                    duplicate ACK, keeps its own PAWS state, and the session goes on.
#
# Needs root and: iproute2 ethtool tcpdump tshark postfix (smtp-sink) swaks python3.
# Usage: sudo scripts/captures/make-exception-captures.sh [OUTDIR [NAME...]]
#        (default tests/fixtures/captures/exceptions; NAMEs, e.g. `paws-ts`, make only those
#        captures, so adding one does not rewrite the others)
# SEKISHO_KEEP_WORK=1 keeps the work directory (server logs) for debugging.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
helpers=$here/scripts/captures
out=${1:-$here/tests/fixtures/captures/exceptions}
mkdir -p "$out"
out=$(cd "$out" && pwd)
all_names=(midstream many-rcpts bad-reply forged-rst unknown-reply paws-ts)
names=("${@:2}")
[ ${#names[@]} -gt 0 ] || names=("${all_names[@]}")
for n in "${names[@]}"; do
    [[ " ${all_names[*]} " == *" $n "* ]] || { echo "make-exception-captures: unknown capture $n (${all_names[*]})" >&2; exit 2; }
done
want() { [[ " ${names[*]} " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || { echo "make-exception-captures: needs root (network namespaces)" >&2; exit 2; }

ns_srv=sk-exc-srv-$$
ns_cli=sk-exc-cli-$$
veth_srv=ves$$
veth_cli=vec$$
work=$(mktemp -d /tmp/sekisho-exception-captures.XXXXXX)
chmod 755 "$work"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for ns in "$ns_srv" "$ns_cli"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "${SEKISHO_KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

die() { echo "make-exception-captures: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { echo "make-exception-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump tshark swaks python3 ss; do need "$t"; done
sink=$(command -v smtp-sink || true)
for c in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do [ -z "$sink" ] && [ -x "$c" ] && sink=$c; done
[ -n "$sink" ] || { echo "make-exception-captures: smtp-sink not found (apt-get install postfix)" >&2; exit 2; }

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "$veth_srv" type veth peer name "$veth_cli"
ip link set "$veth_srv" netns "$ns_srv"
ip link set "$veth_cli" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    # No IPv6: keeps router solicitations and MLD reports out of the fixtures.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 203.0.113.25/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip addr add 10.0.0.150/24 dev "$veth_cli"
ip netns exec "$ns_srv" ip link set "$veth_srv" up
ip netns exec "$ns_cli" ip link set "$veth_cli" up
ip netns exec "$ns_srv" ip route add 10.0.0.0/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip route add 203.0.113.0/24 dev "$veth_cli"
# Offloads off: the capture must hold wire-sized segments, not 64 KB GSO super-packets.
ip netns exec "$ns_srv" ethtool -K "$veth_srv" tso off gso off gro off tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "$veth_cli" tso off gso off gro off tx off rx off >/dev/null

cli() { ip netns exec "$ns_cli" "$@"; }

wait_listen() { # NS ADDR:PORT
    for _ in $(seq 100); do
        ip netns exec "$1" ss -Hltn | awk '{print $4}' | grep -qx "$2" && return 0
        sleep 0.1
    done
    die "nothing listens on $2"
}

# One server at a time on 203.0.113.25:25. Started directly (not through a function's
# subshell) so that $! is the server itself.
server_pid=
server_stop() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
sink_start() { # extra smtp-sink options...
    server_stop
    ip netns exec "$ns_srv" "$sink" -u postfix "$@" 203.0.113.25:25 100 >>"$work/sink.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_listen "$ns_srv" 203.0.113.25:25
}

# Capture helpers: one tcpdump per pcap, port 25 only, on the client-side veth.
tcpdump_pid=
cap_start() {
    rm -f "$work/tcpdump.log"
    # --immediate-mode: without it packets wait in the kernel ring for up to a second.
    ip netns exec "$ns_cli" tcpdump --immediate-mode -i "$veth_cli" -s 0 -U -w "$work/$1.pcap" 'tcp port 25' 2>"$work/tcpdump.log" &
    tcpdump_pid=$!
    pids+=("$tcpdump_pid")
    for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.3
}
cap_stop() {
    # Let the last FIN/ACKs arrive: wait until no port-25 connection is left in the client.
    for _ in $(seq 100); do
        cli ss -Htn state all '( dport = :25 )' | grep -qv TIME-WAIT || break
        sleep 0.1
    done
    sleep 0.5
    kill -TERM "$tcpdump_pid"
    wait "$tcpdump_pid" 2>/dev/null || true
    cp "$work/$1.pcap" "$out/$1.pcap"
}

swaks_to() { # TO [extra swaks options...]
    local to=$1; shift
    cli swaks --silent 2 --server 203.0.113.25 --ehlo client.example --from a@example.com \
        --to "$to" --header 'Subject: sekisho fixture' --body 'exception policy fixture' "$@" >/dev/null
}

# a. midstream.pcap: tcpdump starts after the handshake. smtp-sink holds its greeting for 2 s
# (-W connect:2); swaks connects, and once the client's socket is ESTABLISHED tcpdump starts.
if want midstream; then
sink_start -W connect:2
swaks_to b@yahoo.example &
swaks_pid=$!
pids+=("$swaks_pid")
for _ in $(seq 100); do
    cli ss -Htn state established '( dport = :25 )' | grep -q . && break
    sleep 0.02
done
cli ss -Htn state established '( dport = :25 )' | grep -q . || die "swaks did not connect"
cap_start midstream
wait "$swaks_pid" || die "swaks (midstream) failed"
cap_stop midstream
[ "$(tshark -r "$out/midstream.pcap" -Y 'tcp.flags.syn == 1' | wc -l)" = 0 ] \
    || die "midstream.pcap holds a SYN: tcpdump started too early"
fi

# b. many-rcpts.pcap: one message, 1,101 recipients, pipelined (keeps the capture small);
# smtp-sink accepts every recipient.
if want many-rcpts; then
sink_start
rcpts=$(seq -f 'r%g@example.com' 1 1100 | paste -sd, -),b@yahoo.example
cap_start many-rcpts
swaks_to "$rcpts" --pipeline
cap_stop many-rcpts
fi

# c. bad-reply.pcap: the scripted server answers MAIL FROM with `hello` + `250 2.1.0 Ok`.
if want bad-reply; then
server_stop
ip netns exec "$ns_srv" python3 "$helpers/exception-bad-reply-server.py" 203.0.113.25 25 \
    >"$work/bad-reply-server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_listen "$ns_srv" 203.0.113.25:25
cap_start bad-reply
swaks_to b@yahoo.example
cap_stop bad-reply
wait "$server_pid" || die "bad-reply server failed: $(cat "$work/bad-reply-server.log")"
server_pid=
fi

# d. forged-rst.pcap: smtp-sink holds its MAIL reply for 1 s; the injector sends the RST as
# soon as it sees the client's MAIL FROM go out.
if want forged-rst; then
sink_start -W mail:1
cap_start forged-rst
cli python3 "$helpers/exception-inject-rst.py" "$veth_cli" 1000 >"$work/inject.log" 2>&1 &
inject_pid=$!
pids+=("$inject_pid")
for _ in $(seq 100); do grep -q ready "$work/inject.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/inject.log" || die "RST injector did not start: $(cat "$work/inject.log")"
swaks_to b@yahoo.example
wait "$inject_pid" || die "RST injector failed: $(cat "$work/inject.log")"
cap_stop forged-rst
cat "$work/inject.log"
server_stop
fi

# e. unknown-reply.pcap: the scripted server answers bob's RCPT TO with 556.
if want unknown-reply; then
server_stop
ip netns exec "$ns_srv" python3 "$helpers/exception-bad-reply-server.py" 203.0.113.25 25 556 \
    >"$work/unknown-reply-server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_listen "$ns_srv" 203.0.113.25:25
cap_start unknown-reply
swaks_to bob@example.org,b@yahoo.example
cap_stop unknown-reply
wait "$server_pid" || die "unknown-reply server failed: $(cat "$work/unknown-reply-server.log")"
server_pid=
fi

# f. paws-ts.pcap: smtp-sink holds its MAIL reply for 1 s; the injector sends the forged
# timestamp as soon as it sees the client's MAIL FROM go out.
if want paws-ts; then
sink_start -W mail:1
cap_start paws-ts
cli python3 "$helpers/exception-inject-ts.py" "$veth_cli" >"$work/inject-ts.log" 2>&1 &
inject_pid=$!
pids+=("$inject_pid")
for _ in $(seq 100); do grep -q ready "$work/inject-ts.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/inject-ts.log" || die "TS injector did not start: $(cat "$work/inject-ts.log")"
swaks_to b@yahoo.example
wait "$inject_pid" || die "TS injector failed: $(cat "$work/inject-ts.log")"
cap_stop paws-ts
cat "$work/inject-ts.log"
server_stop
fi

# Expected data: the grouping program of make-smtp-captures.sh (one list per TCP stream, one
# object per transaction), taken from that script so both stay the same.
awk '/^cat > "\$work\/expect.py" <<'"'"'PY'"'"'$/ {on=1; next} on && /^PY$/ {exit} on' \
    "$helpers/make-smtp-captures.sh" > "$work/expect.py"
grep -q 'def sessions' "$work/expect.py" || die "could not take expect.py from make-smtp-captures.sh"
# forged-rst.pcap: tshark's sequence analysis takes the forged RST's seq as the client's next
# one and marks every later client segment a retransmission, which it does not hand to the SMTP
# dissector; the receiver (RFC 5961) did not move on, so that analysis is off for this file.
mkdir -p "$work/wireshark-noseq"
echo 'tcp.analyze_sequence_numbers: FALSE' > "$work/wireshark-noseq/preferences"
# many-rcpts.pcap: tshark's SMTP dissector drops the command lines that a segment boundary
# splits (it shows 909 of the 1,101 recipients), so its envelope comes from tshark's TCP
# reassembly instead (`-z follow,tcp,raw,0`: the client's byte stream), cut into lines up to
# the DATA command, with the same token rules as expect.py.
cat > "$work/follow.py" <<'PY'
import json, subprocess, sys

out = subprocess.run(["tshark", "-r", sys.argv[1], "-q", "-z", "follow,tcp,raw,0"],
                     check=True, capture_output=True, text=True).stdout
client = bytearray()
for row in out.split("\n"):
    # Client (first sender) data is flush left, server data indented by a tab.
    if not row or row.startswith(("\t", "=", "Follow:", "Filter:", "Node ")):
        continue
    try:
        client += bytes.fromhex(row.strip())
    except ValueError:
        continue


def token(line, skip):
    return line[skip + 1:].lstrip(" ").split(" ", 1)[0]


helo, mail_from, rcpt_to = None, None, []
for line in client.decode("ascii", "replace").split("\r\n"):
    verb = line.lower()
    if verb.startswith(("helo", "ehlo")) and helo is None:
        helo = token(line, 4)
    elif verb.startswith("mail from") and mail_from is None:
        mail_from = token(line, 9)
    elif verb.startswith("rcpt to"):
        rcpt_to.append(token(line, 7))
    elif verb.startswith("data"):
        break
json.dump([[{"helo": helo, "mail_from": mail_from, "rcpt_to": rcpt_to}]], sys.stdout, indent=2)
sys.stdout.write("\n")
PY
for n in "${names[@]}"; do
    if [ "$n" = many-rcpts ]; then
        python3 "$work/follow.py" "$out/$n.pcap" > "$out/$n.tshark.json"
        grep -q 'b@yahoo.example' "$out/$n.tshark.json" || die "no RCPT b@yahoo.example in $n.pcap"
        continue
    fi
    conf=
    [ "$n" = forged-rst ] && conf=$work/wireshark-noseq
    if [ -n "$conf" ]; then
        WIRESHARK_CONFIG_DIR=$conf python3 "$work/expect.py" "$out/$n.pcap" > "$out/$n.tshark.json"
    else
        python3 "$work/expect.py" "$out/$n.pcap" > "$out/$n.tshark.json"
    fi
    grep -q 'b@yahoo.example' "$out/$n.tshark.json" || die "no RCPT b@yahoo.example in $n.pcap"
done
ls -l "$out"
