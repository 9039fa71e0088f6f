#!/usr/bin/env bash
# Makes tests/fixtures/captures/reorder/http-reorder.pcap: a real HTTP download whose data
# segments arrive reordered, with TCP timestamps (RFC 7323) on, as Linux negotiates them.
#
# Why: a segment that arrives ahead of a hole carries a newer TSval than the segments that
# later fill the hole. Those are valid (the receiver's TS.Recent only moves with in-order
# segments, RFC 7323 §4.3); a sensor that takes the early segment's TSval as the newest
# sees every hole-filling segment fail PAWS, and inline drops the whole flow as
# `stream_invalid`. Reordering is ordinary on real networks (multipath, LAG, Wi-Fi).
#
# Two network namespaces joined by a veth pair (server 10.97.0.1, client 10.97.0.2). The
# server's egress is an HTB with two classes: a fast default one and a slow one (2 Mbit/s)
# that a u32 filter gives every packet whose IP ID ends in binary 11 (one in four): those
# wait in their own queue while later segments leave through the fast one and overtake
# them. (netem would be the usual tool; this kernel has HTB and u32 but no netem.)
# python3 http.server serves a 96 KiB file; curl fetches it twice. tcpdump -s 0 runs on the
# client's veth, so the capture holds the segments in the order the client received them.
#
# Needs root and: iproute2 (tc: htb, u32) ethtool tcpdump curl python3.
# Usage: sudo scripts/captures/make-reorder-capture.sh [OUTDIR]  (default tests/fixtures/captures/reorder)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/reorder}
mkdir -p "$out"
out=$(cd "$out" && pwd)

ns_srv=sk-reord-srv-$$
ns_cli=sk-reord-cli-$$
work=$(mktemp -d /tmp/sekisho-reorder.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-reorder-capture: missing tool $1" >&2; exit 2; }; }
for t in ip tc ethtool tcpdump curl python3; do need "$t"; done

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "rs$$" type veth peer name "rc$$"
ip link set "rs$$" netns "$ns_srv"
ip link set "rc$$" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_timestamps=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 10.97.0.1/24 dev "rs$$"
ip netns exec "$ns_cli" ip addr add 10.97.0.2/24 dev "rc$$"
ip netns exec "$ns_srv" ip link set "rs$$" up
ip netns exec "$ns_cli" ip link set "rc$$" up
ip netns exec "$ns_srv" ethtool -K "rs$$" tso off gso off gro off tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "rc$$" tso off gso off gro off tx off rx off >/dev/null
tcs() { ip netns exec "$ns_srv" tc "$@"; }
tcs qdisc add dev "rs$$" root handle 1: htb default 10 r2q 100000
tcs class add dev "rs$$" parent 1: classid 1:10 htb rate 1gbit
tcs class add dev "rs$$" parent 1: classid 1:20 htb rate 2mbit ceil 2mbit
tcs filter add dev "rs$$" parent 1: protocol ip u32 match u16 0x0003 0x0003 at 4 flowid 1:20

mkdir -p "$work/www"
head -c $((96 * 1024)) /dev/urandom > "$work/www/file.bin"
(cd "$work/www" && exec ip netns exec "$ns_srv" python3 -m http.server 8080 --bind 10.97.0.1 >/dev/null 2>&1) &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$ns_srv" ss -ltn | grep -q ':8080' && break; sleep 0.1; done

ip netns exec "$ns_cli" tcpdump -i "rc$$" -s 0 -U -w "$work/cap.pcap" tcp 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" && break; sleep 0.1; done
sleep 0.3
for _ in 1 2; do
    ip netns exec "$ns_cli" curl -sS --retry 5 --retry-connrefused --retry-delay 1 -o /dev/null --max-time 20 -w "%{http_code} %{size_download}\n" http://10.97.0.1:8080/file.bin
done
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
cp "$work/cap.pcap" "$out/http-reorder.pcap"
echo "wrote $out/http-reorder.pcap ($(stat -c %s "$out/http-reorder.pcap") bytes)"
