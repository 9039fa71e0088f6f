#!/usr/bin/env bash
# Makes tests/fixtures/captures/smtp/retransmit-rcpt.pcap: a real SMTP session in which the
# client's segment carrying `RCPT TO:<b@yahoo.example>` is lost once and TCP retransmits it,
# and beside it retransmit-rcpt.tshark.json (the envelope tshark's SMTP dissector sees, made by
# the same program as make-smtp-captures.sh, which is read out of that script).
#
# Why: an inline firewall that drops a segment (a `drop`/`reject` verdict) sees the sender's
# retransmission of it next. The engine must treat that copy as the same data, not as new
# data nor as a gap. This capture is a real retransmission made by the Linux stack.
#
# Two network namespaces joined by a veth pair, as in make-smtp-captures.sh: the client
# ("sender", 10.0.0.150/24) runs swaks without pipelining; the server (203.0.113.25/24) runs
# Postfix's smtp-sink. In the server namespace, iptables drops the first segment to port 25
# that contains `RCPT TO:<b@yahoo` (the `recent` module remembers it was seen, so the next
# copy is accepted): exactly one copy is lost. tcpdump runs on the server-side veth: AF_PACKET
# taps a received packet before the netfilter INPUT hook, so the dropped copy and the
# retransmitted one are both in the capture.
#
# Needs root and: iproute2 ethtool iptables (string and recent matches) tcpdump tshark postfix
# (smtp-sink) swaks python3.
# Usage: sudo scripts/captures/make-retransmit-capture.sh [OUTDIR]   (default tests/fixtures/captures/smtp)
# SEKISHO_KEEP_WORK=1 keeps the work directory (tcpdump and smtp-sink logs) for debugging.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/smtp}
mkdir -p "$out"
out=$(cd "$out" && pwd)
name=retransmit-rcpt

[ "$(id -u)" = 0 ] || { echo "make-retransmit-capture: needs root (network namespaces, iptables)" >&2; exit 2; }

ns_srv=sk-rtx-srv-$$
ns_cli=sk-rtx-cli-$$
veth_srv=vrs$$
veth_cli=vrc$$
work=$(mktemp -d /tmp/sekisho-retransmit-capture.XXXXXX)
chmod 755 "$work"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # Deleting a namespace removes its veth end (and so the pair) and its iptables rules.
    for ns in "$ns_srv" "$ns_cli"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "${SEKISHO_KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-retransmit-capture: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool iptables tcpdump tshark swaks python3; do need "$t"; done
sink=$(command -v smtp-sink || true)
for c in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do [ -z "$sink" ] && [ -x "$c" ] && sink=$c; done
[ -n "$sink" ] || { echo "make-retransmit-capture: smtp-sink not found (apt-get install postfix)" >&2; exit 2; }
smtp_script=$here/scripts/captures/make-smtp-captures.sh
[ -r "$smtp_script" ] || { echo "make-retransmit-capture: $smtp_script not found" >&2; exit 2; }

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "$veth_srv" type veth peer name "$veth_cli"
ip link set "$veth_srv" netns "$ns_srv"
ip link set "$veth_cli" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    # No IPv6: keeps router solicitations and MLD reports out of the fixture.
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
# Offloads off: wire-sized segments with correct checksums in the capture.
ip netns exec "$ns_srv" ethtool -K "$veth_srv" tso off gso off gro off tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "$veth_cli" tso off gso off gro off tx off rx off >/dev/null

srv() { ip netns exec "$ns_srv" "$@"; }
cli() { ip netns exec "$ns_cli" "$@"; }

# The loss: the first segment carrying the RCPT is recorded (`--set`) and dropped; a segment
# with it whose source is already recorded (the retransmission) is accepted by the rule before.
# The `recent` list is per namespace and starts empty, so exactly one copy is dropped.
rcpt='RCPT TO:<b@yahoo'
srv iptables -A INPUT -p tcp --dport 25 -m string --string "$rcpt" --algo bm \
    -m recent --name sk_rcpt --rcheck -j ACCEPT
srv iptables -A INPUT -p tcp --dport 25 -m string --string "$rcpt" --algo bm \
    -m recent --name sk_rcpt --set -j DROP

# Started directly (not through srv) so that $! is smtp-sink itself, not a subshell.
ip netns exec "$ns_srv" "$sink" -u postfix 203.0.113.25:25 100 >"$work/sink.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    srv ss -Hltn | awk '{print $4}' | grep -qx 203.0.113.25:25 && break
    sleep 0.1
done
srv ss -Hltn | awk '{print $4}' | grep -qx 203.0.113.25:25 || {
    echo "make-retransmit-capture: smtp-sink does not listen" >&2; exit 1; }

# --immediate-mode: without it packets wait in the kernel ring and a short session stopped
# soon after its end is lost.
ip netns exec "$ns_srv" tcpdump --immediate-mode -i "$veth_srv" -s 0 -U -w "$work/$name.pcap" 'tcp port 25' 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

# swaks in lock-step (no --pipeline): the RCPT goes alone in its own segment, so the dropped
# segment is exactly that command. b@yahoo.example is off examples/smtp/recipients.rules' list.
cli swaks --silent 2 --server 203.0.113.25 --ehlo client.example --from a@example.com \
    --to b@yahoo.example --header 'Subject: sekisho fixture' --body 'retransmitted RCPT' >/dev/null

# Let the last FIN/ACKs arrive: wait until no port-25 connection is left in the client.
for _ in $(seq 100); do
    cli ss -Htn state all '( dport = :25 )' | grep -qv TIME-WAIT || break
    sleep 0.1
done
sleep 0.5
kill -TERM "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true

# The DROP rule must have fired exactly once.
drops=$(srv iptables -L INPUT -v -x -n | awk '/DROP/ {print $1}')
[ "$drops" = 1 ] || { echo "make-retransmit-capture: DROP rule matched ${drops:-0} times, want 1" >&2; exit 1; }

# Checks on the capture: exactly two client segments carry the RCPT, with the same sequence
# number and payload, and tshark marks the second one a retransmission.
pcap=$work/$name.pcap
rows=$(tshark -r "$pcap" -Y "tcp.payload contains \"$rcpt\"" -T fields -E separator=' ' \
    -e frame.number -e tcp.seq_raw -e tcp.payload -e tcp.analysis.retransmission)
echo "$rows" | awk '{print "frame " $1 ": seq " $2 ($4 != "" ? " (retransmission)" : "")}'
[ "$(echo "$rows" | wc -l)" = 2 ] || { echo "make-retransmit-capture: want 2 RCPT segments" >&2; exit 1; }
read -r f1 s1 p1 r1 <<<"$(echo "$rows" | sed -n 1p)"
read -r f2 s2 p2 r2 <<<"$(echo "$rows" | sed -n 2p)"
[ "$s1" = "$s2" ] && [ "$p1" = "$p2" ] || { echo "make-retransmit-capture: copies differ" >&2; exit 1; }
[ -z "${r1:-}" ] && [ -n "${r2:-}" ] || {
    echo "make-retransmit-capture: tshark does not flag frame $f2 (only) as retransmission" >&2; exit 1; }
cp "$pcap" "$out/$name.pcap"

# The expected envelope, by the very program make-smtp-captures.sh uses (one definition).
sed -n "/^cat > \"\$work\/expect.py\" <<'PY'\$/,/^PY\$/p" "$smtp_script" | sed '1d;$d' >"$work/expect.py"
grep -q 'def sessions' "$work/expect.py" || {
    echo "make-retransmit-capture: could not read expect.py out of $smtp_script" >&2; exit 1; }
python3 "$work/expect.py" "$out/$name.pcap" >"$out/$name.tshark.json"
grep -q '"helo"' "$out/$name.tshark.json" || { echo "make-retransmit-capture: no SMTP in the capture" >&2; exit 1; }
ls -l "$out/$name.pcap" "$out/$name.tshark.json"
