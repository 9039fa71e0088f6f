#!/usr/bin/env bash
# Regenerates tests/fixtures/captures/names/dns.pcap: dig against two real DNS servers.
#
# Two network namespaces joined by a veth pair: the server side has dnsmasq on 10.97.0.1
# (zone dm.test) and unbound on 10.97.0.3 (zone ub.test, local data), the client 10.97.0.2.
# Queries (dig, UDP unless noted):
#   dnsmasq: A with two answers, AAAA, a CNAME chain (alias -> mid -> www), MX, TXT,
#            NXDOMAIN (a name in its local domain), REFUSED (a name outside it, no upstream),
#            the CNAME chain again over TCP.
#   unbound: A with three answers, a CNAME chain inside its local zone, NXDOMAIN (with the
#            zone's SOA in the authority section), REFUSED (a `refuse` local zone), AAAA and
#            MX over TCP.
# Captured with tcpdump on the client's veth.
#
# Needs root and: iproute2 ethtool tcpdump dnsmasq unbound dig.
# Usage: sudo scripts/captures/make-dns-captures.sh [OUTDIR]  (default tests/fixtures/captures/names)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/names}
mkdir -p "$out"
out=$(cd "$out" && pwd)

ns_srv=sk-dns-srv-$$
ns_cli=sk-dns-cli-$$
work=$(mktemp -d /tmp/sekisho-dns.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-dns-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump dnsmasq unbound dig; do need "$t"; done

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "ds$$" type veth peer name "dc$$"
ip link set "ds$$" netns "$ns_srv"
ip link set "dc$$" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 10.97.0.1/24 dev "ds$$"
ip netns exec "$ns_srv" ip addr add 10.97.0.3/24 dev "ds$$"
ip netns exec "$ns_cli" ip addr add 10.97.0.2/24 dev "dc$$"
ip netns exec "$ns_srv" ip link set "ds$$" up
ip netns exec "$ns_cli" ip link set "dc$$" up
# Real checksums on the wire (veth offload would leave them unfilled in the capture).
ip netns exec "$ns_srv" ethtool -K "ds$$" tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "dc$$" tx off rx off >/dev/null

cat > "$work/dnsmasq.conf" <<CONF
no-resolv
no-hosts
no-poll
listen-address=10.97.0.1
bind-interfaces
port=53
local-ttl=300
host-record=www.dm.test,10.97.1.1
host-record=multi.dm.test,10.97.1.2
host-record=multi.dm.test,10.97.1.3
host-record=v6.dm.test,fd00:97::1
cname=alias.dm.test,mid.dm.test
cname=mid.dm.test,www.dm.test
mx-host=dm.test,mail.dm.test,10
txt-record=dm.test,"v=spf1 -all"
local=/dm.test/
CONF
ip netns exec "$ns_srv" dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" \
    --pid-file="$work/dnsmasq.pid" --user=root --log-facility=- >"$work/dnsmasq.log" 2>&1 &
pids+=($!)

cat > "$work/unbound.conf" <<CONF
server:
    interface: 10.97.0.3
    port: 53
    do-ip6: no
    access-control: 10.97.0.0/24 allow
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: "$work/unbound.pid"
    use-syslog: no
    logfile: ""
    do-daemonize: no
    module-config: "iterator"
    local-zone: "ub.test." static
    local-data: "ub.test. 3600 IN SOA ns.ub.test. admin.ub.test. 2026120701 3600 600 86400 60"
    local-data: "many.ub.test. 120 IN A 10.97.2.1"
    local-data: "many.ub.test. 120 IN A 10.97.2.2"
    local-data: "many.ub.test. 120 IN A 10.97.2.3"
    local-data: "start.ub.test. 120 IN CNAME next.ub.test."
    local-data: "next.ub.test. 120 IN CNAME end.ub.test."
    local-data: "end.ub.test. 120 IN A 10.97.2.9"
    local-data: "end.ub.test. 120 IN AAAA fd00:97::9"
    local-data: "ub.test. 120 IN MX 5 mx1.ub.test."
    local-data: "ub.test. 120 IN MX 20 mx2.ub.test."
    local-zone: "blocked.test." refuse
CONF
ip netns exec "$ns_srv" unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    n=$(ip netns exec "$ns_srv" ss -lun | grep -cE '10\.97\.0\.[13]:53 ' || true)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done

ip netns exec "$ns_cli" tcpdump -i "dc$$" -s 0 -U -w "$work/dns.pcap" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

q() { ip netns exec "$ns_cli" dig +tries=1 +time=2 "$@" >>"$work/dig.log" 2>&1 || true; }
q @10.97.0.1 multi.dm.test A
q @10.97.0.1 v6.dm.test AAAA
q @10.97.0.1 alias.dm.test A
q @10.97.0.1 dm.test MX
q @10.97.0.1 dm.test TXT
q @10.97.0.1 nope.dm.test A
q @10.97.0.1 elsewhere.example A
q +tcp @10.97.0.1 alias.dm.test A
q @10.97.0.3 many.ub.test A
q @10.97.0.3 start.ub.test A
q @10.97.0.3 missing.ub.test A
q @10.97.0.3 www.blocked.test A
q +tcp @10.97.0.3 end.ub.test AAAA
q +tcp @10.97.0.3 ub.test MX
sleep 1
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true

cp "$work/dns.pcap" "$out/dns.pcap"
grep -E 'status:|^[a-z].*IN' "$work/dig.log" || true
ls -l "$out/dns.pcap"
