#!/usr/bin/env bash
# Regenerates tests/fixtures/captures/names/tls-certs.pcap: SNIs a server certificate does and
# does not cover (the SNI_CERT_MISMATCH check).
#
# Two network namespaces joined by a veth pair: `openssl s_server -www` on 10.96.0.1:443 with
# a certificate whose subjectAltName is sekisho.test and *.sekisho.test, and on 10.96.0.3:443
# with one that has no subjectAltName (CN=mail.cn.test); the client 10.96.0.2. Connections,
# TLS 1.2 (the certificate is visible) unless noted:
#   alpha.sekisho.test (wildcard), sekisho.test (apex), a.b.sekisho.test (two labels under
#   the wildcard: not covered), other.example (not covered), WWW.SEKISHO.TEST (openssl
#   s_client, the name as given: covered without case), mail.cn.test (the CN, no SAN), www.cn.test
#   (not covered), and other.example over TLS 1.3 (the certificate is encrypted: nothing can
#   be checked).
# Captured with tcpdump on the client's veth.
#
# Needs root and: iproute2 ethtool tcpdump openssl curl.
# Usage: sudo scripts/captures/make-cert-captures.sh [OUTDIR]  (default tests/fixtures/captures/names)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/names}
mkdir -p "$out"
out=$(cd "$out" && pwd)

ns_srv=sk-cert-srv-$$
ns_cli=sk-cert-cli-$$
work=$(mktemp -d /tmp/sekisho-certs.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-cert-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump openssl curl; do need "$t"; done

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "cs$$" type veth peer name "cc$$"
ip link set "cs$$" netns "$ns_srv"
ip link set "cc$$" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 10.96.0.1/24 dev "cs$$"
ip netns exec "$ns_srv" ip addr add 10.96.0.3/24 dev "cs$$"
ip netns exec "$ns_cli" ip addr add 10.96.0.2/24 dev "cc$$"
ip netns exec "$ns_srv" ip link set "cs$$" up
ip netns exec "$ns_cli" ip link set "cc$$" up
ip netns exec "$ns_srv" ethtool -K "cs$$" tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "cc$$" tx off rx off >/dev/null

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/san.key" -out "$work/san.pem" \
    -days 3650 -subj "/O=sekisho fixture/CN=sekisho.test" \
    -addext "subjectAltName=DNS:sekisho.test,DNS:*.sekisho.test" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/cn.key" -out "$work/cn.pem" \
    -days 3650 -subj "/O=sekisho fixture/CN=mail.cn.test" 2>/dev/null

(cd "$work" && exec ip netns exec "$ns_srv" openssl s_server -accept 10.96.0.1:443 -cert san.pem -key san.key -www -quiet >"$work/s1.log" 2>&1) &
pids+=($!)
(cd "$work" && exec ip netns exec "$ns_srv" openssl s_server -accept 10.96.0.3:443 -cert cn.pem -key cn.key -www -quiet >"$work/s2.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do
    n=$(ip netns exec "$ns_srv" ss -ltn | grep -cE '10\.96\.0\.[13]:443 ' || true)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done

ip netns exec "$ns_cli" tcpdump -i "cc$$" -s 0 -U -w "$work/certs.pcap" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=($tcpdump_pid)
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

c12() { # name address
    ip netns exec "$ns_cli" curl -sk -o /dev/null --tlsv1.2 --tls-max 1.2 --resolve "$1:443:$2" "https://$1/" || true
}
c12 alpha.sekisho.test 10.96.0.1
c12 sekisho.test 10.96.0.1
c12 a.b.sekisho.test 10.96.0.1
c12 other.example 10.96.0.1
ip netns exec "$ns_cli" timeout 5 openssl s_client -tls1_2 -connect 10.96.0.1:443 -servername WWW.SEKISHO.TEST </dev/null >/dev/null 2>&1 || true
c12 mail.cn.test 10.96.0.3
c12 www.cn.test 10.96.0.3
ip netns exec "$ns_cli" curl -sk -o /dev/null --tlsv1.3 --resolve other.example:443:10.96.0.1 https://other.example/ || true
sleep 1
kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true

cp "$work/certs.pcap" "$out/tls-certs.pcap"
ls -l "$out/tls-certs.pcap"
