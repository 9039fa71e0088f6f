#!/usr/bin/env bash
# Regenerates the real-traffic captures in tests/fixtures/captures/.
#
# Two network namespaces joined by a veth pair (server 10.99.0.1, client 10.99.0.2); servers in
# one (python3 http.server, dnsmasq serving the zone example.test, Postfix's smtp-sink), clients
# in the other (curl, wget, dig over UDP and TCP, swaks). Two captures of the same traffic are
# taken in the client namespace: one on the veth (Ethernet) and one with `tcpdump -i any`
# (Linux cooked capture v2). Copies are written as pcapng and gzip-compressed pcapng so every
# reader path sees real data.
#
# Needs root and: iproute2 ethtool tcpdump python3 dnsmasq dnsutils postfix swaks curl wget
# wireshark-common (editcap) gzip.
# Usage: sudo scripts/captures/make-captures.sh [OUTDIR]   (default tests/fixtures/captures)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures}
mkdir -p "$out"
out=$(cd "$out" && pwd)

ns_srv=sk-cap-srv-$$
ns_cli=sk-cap-cli-$$
work=$(mktemp -d /tmp/sekisho-captures.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump python3 dnsmasq dig swaks curl wget editcap mergecap gzip; do need "$t"; done
sink=$(command -v smtp-sink || true)
for c in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do [ -z "$sink" ] && [ -x "$c" ] && sink=$c; done
[ -n "$sink" ] || { echo "make-captures: smtp-sink not found (apt-get install postfix)" >&2; exit 2; }

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "vs$$" type veth peer name "vc$$"
ip link set "vs$$" netns "$ns_srv"
ip link set "vc$$" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    # No IPv6: keeps router solicitations and MLD reports out of the fixtures.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 10.99.0.1/24 dev "vs$$"
ip netns exec "$ns_cli" ip addr add 10.99.0.2/24 dev "vc$$"
ip netns exec "$ns_srv" ip link set "vs$$" up
ip netns exec "$ns_cli" ip link set "vc$$" up
# Offloads off: the capture must hold wire-sized segments, not 64 KB GSO super-packets.
for pair in "$ns_srv vs$$" "$ns_cli vc$$"; do
    set -- $pair
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null
done

# Web content: a small page and a 40 KB file (several segments each way of the window).
mkdir -p "$work/www"
printf '<html><body>sekisho capture fixture</body></html>\n' > "$work/www/index.html"
python3 -c 'import sys; sys.stdout.write("".join("line %05d of the sekisho fixture file\n" % i for i in range(1100)))' > "$work/www/data.txt"
(cd "$work/www" && exec ip netns exec "$ns_srv" python3 -m http.server 8080 --bind 10.99.0.1 >"$work/http.log" 2>&1) &
pids+=($!)

cat > "$work/dnsmasq.conf" <<CONF
no-resolv
no-hosts
no-poll
listen-address=10.99.0.1
bind-interfaces
port=53
host-record=www.example.test,10.99.0.1
host-record=mail.example.test,10.99.0.1
mx-host=example.test,mail.example.test,10
txt-record=example.test,"v=spf1 -all"
local=/example.test/
CONF
ip netns exec "$ns_srv" dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --pid-file="$work/dnsmasq.pid" --user=root --log-facility=- >"$work/dnsmasq.log" 2>&1 &
pids+=($!)

ip netns exec "$ns_srv" "$sink" -u root 10.99.0.1:25 100 >"$work/sink.log" 2>&1 &
pids+=($!)

# Wait for the servers.
for _ in $(seq 50); do
    if ip netns exec "$ns_srv" ss -ltn | grep -q ':8080' && ip netns exec "$ns_srv" ss -ltn | grep -q ':25 ' \
        && ip netns exec "$ns_srv" ss -lun | grep -q ':53 '; then break; fi
    sleep 0.1
done

ip netns exec "$ns_cli" tcpdump -i "vc$$" -s 0 -U -w "$work/eth.pcap" 2>"$work/tcpdump-eth.log" &
pids+=($!); tcpdump_eth=$!
ip netns exec "$ns_cli" tcpdump -i any -s 0 -U -w "$work/any.pcap" 2>"$work/tcpdump-any.log" &
pids+=($!); tcpdump_any=$!
for _ in $(seq 50); do
    grep -q listening "$work/tcpdump-eth.log" 2>/dev/null && grep -q listening "$work/tcpdump-any.log" 2>/dev/null && break
    sleep 0.1
done
sleep 0.5

cli() { ip netns exec "$ns_cli" "$@"; }
cli dig +tries=1 +time=2 @10.99.0.1 www.example.test A >/dev/null
cli dig +tries=1 +time=2 @10.99.0.1 example.test MX >/dev/null
cli dig +tries=1 +time=2 @10.99.0.1 example.test TXT >/dev/null
cli dig +tries=1 +time=2 +tcp @10.99.0.1 mail.example.test A >/dev/null
cli curl -s -o /dev/null http://10.99.0.1:8080/index.html
cli curl -s -o /dev/null http://10.99.0.1:8080/data.txt
cli wget -q -O /dev/null http://10.99.0.1:8080/data.txt
cli swaks --silent 2 --server 10.99.0.1 --port 25 --from sender@example.test --to rcpt@example.test \
    --helo client.example.test --header "Subject: sekisho fixture" --body "hello from the capture script" >/dev/null
sleep 1

kill -INT "$tcpdump_eth" "$tcpdump_any"
wait "$tcpdump_eth" "$tcpdump_any" 2>/dev/null || true

cp "$work/eth.pcap" "$out/real-eth.pcap"
cp "$work/any.pcap" "$out/real-any-sll2.pcap"
editcap -F pcapng "$work/eth.pcap" "$out/real-eth.pcapng"
gzip -9 -n -c "$out/real-eth.pcapng" > "$out/real-eth.pcapng.gz"
rm "$out/real-eth.pcapng"
# Two interfaces with different link types in one pcapng section, and nanosecond pcap.
mergecap -F pcapng -w "$out/real-merged-2if.pcapng" "$out/real-eth.pcap" "$out/real-any-sll2.pcap"
editcap -F nsecpcap "$out/real-eth.pcap" "$out/real-eth-ns.pcap"
ls -l "$out"/real-*
