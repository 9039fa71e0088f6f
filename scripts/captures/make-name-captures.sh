#!/usr/bin/env bash
# Regenerates the name captures in tests/fixtures/captures/names/ (TLS SNI, HTTP Host).
#
# Two network namespaces joined by a veth pair (server 10.98.0.1 and 10.98.0.3, client
# 10.98.0.2). Servers: `openssl s_server -www` on 443 with a self-signed certificate for
# sekisho.test (any SNI is accepted), and python3 http.server on 80. Clients: curl with three
# SNIs (TLS 1.3, TLS 1.2 and TLS 1.3), curl to the bare IP (a ClientHello without SNI), curl
# with a 296-byte route MTU to 10.98.0.3 (its ClientHello is split over three segments), then
# curl (three requests on one keep-alive connection, one with a body), wget, and curl through
# the server as a proxy (an absolute URI) over HTTP. Captured with tcpdump
# on the client's veth:
#   tls.pcap   the TLS connections      http.pcap   the HTTP connections
#
# Needs root and: iproute2 ethtool tcpdump openssl curl wget python3.
# Usage: sudo scripts/captures/make-name-captures.sh [OUTDIR]  (default tests/fixtures/captures/names)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/names}
mkdir -p "$out"
out=$(cd "$out" && pwd)

ns_srv=sk-names-srv-$$
ns_cli=sk-names-cli-$$
work=$(mktemp -d /tmp/sekisho-names.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns_srv" 2>/dev/null || true
    ip netns del "$ns_cli" 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-name-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump openssl curl wget python3; do need "$t"; done

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "ns$$" type veth peer name "nc$$"
ip link set "ns$$" netns "$ns_srv"
ip link set "nc$$" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 10.98.0.1/24 dev "ns$$"
ip netns exec "$ns_srv" ip addr add 10.98.0.3/24 dev "ns$$"
ip netns exec "$ns_cli" ip addr add 10.98.0.2/24 dev "nc$$"
ip netns exec "$ns_srv" ip link set "ns$$" up
ip netns exec "$ns_cli" ip link set "nc$$" up
for pair in "$ns_srv ns$$" "$ns_cli nc$$"; do
    set -- $pair
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null
done
# Small segments to 10.98.0.3 only: the split-ClientHello connection.
ip netns exec "$ns_cli" ip route add 10.98.0.3/32 dev "nc$$" mtu lock 296

# A self-signed certificate with a subjectAltName, fixed serial.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 3650 -set_serial 0x5e4b15 -subj "/C=JP/O=sekisho fixture/CN=sekisho.test" \
    -addext "subjectAltName=DNS:sekisho.test,DNS:*.sekisho.test" 2>/dev/null

(cd "$work" && exec ip netns exec "$ns_srv" openssl s_server -accept 443 -cert cert.pem -key key.pem -www -quiet >"$work/s_server.log" 2>&1) &
pids+=($!)
mkdir -p "$work/www"
printf '<html><body>sekisho name fixture</body></html>\n' > "$work/www/index.html"
# http.server speaking HTTP/1.1 (keep-alive, Content-Length framing).
(cd "$work/www" && exec ip netns exec "$ns_srv" python3 -c 'import http.server as h
h.SimpleHTTPRequestHandler.protocol_version = "HTTP/1.1"
h.ThreadingHTTPServer(("", 80), h.SimpleHTTPRequestHandler).serve_forever()' >"$work/http.log" 2>&1) &
pids+=($!)
for _ in $(seq 200); do
    if ip netns exec "$ns_srv" ss -ltn | grep -q ':443 ' && ip netns exec "$ns_srv" ss -ltn | grep -q ':80 '; then break; fi
    sleep 0.1
done

capture() { # name: starts tcpdump into $work/name.pcap
    ip netns exec "$ns_cli" tcpdump -i "nc$$" -s 0 -U -w "$work/$1.pcap" 2>"$work/tcpdump-$1.log" &
    tcpdump_pid=$!
    pids+=($tcpdump_pid)
    for _ in $(seq 50); do grep -q listening "$work/tcpdump-$1.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.3
}
stop() { sleep 0.5; kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true; }
cli() { ip netns exec "$ns_cli" "$@"; }

capture tls
cli curl -sk -o /dev/null --resolve alpha.sekisho.test:443:10.98.0.1 https://alpha.sekisho.test/
cli curl -sk -o /dev/null --tlsv1.2 --tls-max 1.2 --resolve Beta.Example.COM:443:10.98.0.1 https://Beta.Example.COM/
cli curl -sk -o /dev/null --resolve www.gamma.test:443:10.98.0.1 https://www.gamma.test/
cli curl -sk -o /dev/null https://10.98.0.1/
cli curl -sk -o /dev/null --resolve split.sekisho.test:443:10.98.0.3 https://split.sekisho.test/
# A mixed-case SNI (curl lower-cases its host names; s_client sends the name as given).
cli timeout 5 openssl s_client -connect 10.98.0.1:443 -servername Mixed.Sekisho.TEST </dev/null >/dev/null 2>&1 || true
stop

capture http
# Three requests on one keep-alive connection (200, 404 with a body, 501 to a POST body).
cli curl -s --path-as-is -o /dev/null -o /dev/null --resolve www.sekisho.test:80:10.98.0.1 \
    http://www.sekisho.test/index.html "http://www.sekisho.test/a/./b/../missing?q=%41" \
    --next -s -o /dev/null --resolve www.sekisho.test:80:10.98.0.1 -d 'k=v' http://www.sekisho.test/form
cli wget -q -O /dev/null --header "Host: Other.Example" http://10.98.0.1/index.html
# Proxy style: an absolute URI in the request line.
cli curl -s -o /dev/null -x http://10.98.0.1:80 http://proxy.example.net/path || true
stop

cp "$work/tls.pcap" "$out/tls.pcap"
cp "$work/http.pcap" "$out/http.pcap"
ls -l "$out"
