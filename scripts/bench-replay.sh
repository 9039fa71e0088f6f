#!/usr/bin/env bash
# Replay throughput benchmark (one core).
#
# Generates (once, cached in $CARGO_TARGET_DIR/bench or target/bench) a capture of at least
# 200 MB of real traffic made by real tools in two network namespaces: curl downloading large
# files from python3 http.server, many small curl requests, and bursts of dig queries against
# dnsmasq; captured with tcpdump -s 0 on the veth (offloads off, so wire-sized frames). Then
# builds sekisho in release mode and runs, each under /usr/bin/time -v:
#   1. sekisho replay            (decode + flow tracking + TCP reassembly + EVE flow/stats logs)
#   2. sekisho replay --decode-only   (read + the engine's decoder only: the ceiling)
# and prints Gbit/s, Mpps and peak RSS for both, and the cost ratio full/decode-only
# (target: at most 2x).
#
# Needs root and: iproute2 ethtool tcpdump python3 dnsmasq dnsutils curl time.
# Usage: sudo scripts/bench-replay.sh [--regen]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
tgt=${CARGO_TARGET_DIR:-$here/target}
bench=$tgt/bench
pcap=$bench/bench.pcap
mkdir -p "$bench"
min_bytes=$((200 * 1024 * 1024))

generate() {
    local ns_srv=sk-bench-srv-$$ ns_cli=sk-bench-cli-$$ work pids=()
    work=$(mktemp -d /tmp/sekisho-bench.XXXXXX)
    cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        ip netns del "$ns_srv" 2>/dev/null || true
        ip netns del "$ns_cli" 2>/dev/null || true
        rm -rf "$work"
    }
    trap cleanup EXIT INT TERM
    ip netns add "$ns_srv"; ip netns add "$ns_cli"
    ip link add "bs$$" type veth peer name "bc$$"
    ip link set "bs$$" netns "$ns_srv"; ip link set "bc$$" netns "$ns_cli"
    for ns in "$ns_srv" "$ns_cli"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" ip link set lo up
    done
    ip netns exec "$ns_srv" ip addr add 10.98.0.1/24 dev "bs$$"
    ip netns exec "$ns_cli" ip addr add 10.98.0.2/24 dev "bc$$"
    ip netns exec "$ns_srv" ip link set "bs$$" up
    ip netns exec "$ns_cli" ip link set "bc$$" up
    ip netns exec "$ns_srv" ethtool -K "bs$$" tso off gso off gro off >/dev/null
    ip netns exec "$ns_cli" ethtool -K "bc$$" tso off gso off gro off >/dev/null

    mkdir -p "$work/www"
    head -c $((40 * 1024 * 1024)) /dev/urandom > "$work/www/big.bin"
    for i in $(seq 100); do printf 'small page %d\n' "$i" > "$work/www/p$i.html"; done
    (cd "$work/www" && exec ip netns exec "$ns_srv" python3 -m http.server 8080 --bind 10.98.0.1 >/dev/null 2>&1) &
    pids+=($!)
    printf 'no-resolv\nno-hosts\nlisten-address=10.98.0.1\nbind-interfaces\nlocal=/bench.test/\n' > "$work/dnsmasq.conf"
    for i in $(seq 200); do echo "host-record=h$i.bench.test,10.98.0.$((i % 250 + 1))" >> "$work/dnsmasq.conf"; done
    ip netns exec "$ns_srv" dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --user=root --pid-file="$work/d.pid" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do ip netns exec "$ns_srv" ss -ltn | grep -q ':8080' && break; sleep 0.1; done

    ip netns exec "$ns_cli" tcpdump -i "bc$$" -s 0 -B 65536 -U -w "$pcap.tmp" 2>"$work/tcpdump.log" &
    local tcpdump_pid=$!
    pids+=($tcpdump_pid)
    for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" && break; sleep 0.1; done
    for i in $(seq 200); do echo "h$i.bench.test A"; done > "$work/queries"
    local round=0
    while [ "$(stat -c %s "$pcap.tmp" 2>/dev/null || echo 0)" -lt $((min_bytes + 8 * 1024 * 1024)) ]; do
        round=$((round + 1))
        ip netns exec "$ns_cli" curl -s -o /dev/null http://10.98.0.1:8080/big.bin
        for i in $(seq 100); do echo "url = \"http://10.98.0.1:8080/p$i.html\""; echo "output = /dev/null"; done > "$work/curl.cfg"
        ip netns exec "$ns_cli" curl -s -K "$work/curl.cfg"
        ip netns exec "$ns_cli" dig +tries=1 +time=1 @10.98.0.1 -f "$work/queries" >/dev/null
        [ $round -gt 40 ] && break
    done
    sleep 0.5
    kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
    mv "$pcap.tmp" "$pcap"
    cleanup
    trap - EXIT INT TERM
}

if [ "${1:-}" = "--regen" ] || [ ! -f "$pcap" ] || [ "$(stat -L -c %s "$pcap")" -lt "$min_bytes" ]; then
    echo "generating $pcap (>= 200 MB of real traffic)..." >&2
    generate
fi
echo "capture: $pcap ($(stat -L -c %s "$pcap") bytes)"

(cd "$here" && CARGO_TARGET_DIR=$tgt cargo build --release -q -p sekisho)
bin=$tgt/release/sekisho
out=$(mktemp -d /tmp/sekisho-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT

# One pass under /usr/bin/time -v; appends "label wall cpu rss line" to $out/results.
once() {
    local label=$1; shift
    /usr/bin/time -v "$bin" replay -q --out "$out" "$@" "$pcap" 2> "$out/time.log" || true
    local line wall user sys rss
    line=$(grep '^packets=' "$out/time.log")
    wall=$(echo "$line" | sed -E 's/.*wall=([0-9.]+)s.*/\1/')
    user=$(awk -F': ' '/User time/ {print $2}' "$out/time.log")
    sys=$(awk -F': ' '/System time/ {print $2}' "$out/time.log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.log")
    echo "$label $wall $(python3 -c "print($user + $sys)") $rss $line" >> "$out/results"
}
# The page cache is warmed first so both passes measure CPU, not disk; passes alternate (five
# of each) so a busy machine slows both alike; the best of each is reported.
cat "$pcap" > /dev/null
for _ in 1 2 3 4 5; do
    once full
    once decode-only --decode-only
done
python3 - "$out/results" <<'PY'
import sys
best = {}
for l in open(sys.argv[1]):
    label, wall, cpu, rss, line = l.split(" ", 4)
    wall, cpu = float(wall), float(cpu)
    b = best.get(label)
    if b is None or wall < b[0]:
        best[label] = (wall, min(cpu, b[1]) if b else cpu, rss, line.strip())
    else:
        best[label] = (b[0], min(cpu, b[1]), b[2], b[3])
for label in ("full", "decode-only"):
    wall, cpu, rss, line = best[label]
    print(f"{label:12} {line} cpu={cpu:.2f}s peak_rss={rss} KiB")
f, d = best["full"], best["decode-only"]
print(f"cost ratio full/decode-only: wall {f[0]/max(d[0],1e-9):.2f}x, cpu {f[1]/max(d[1],1e-9):.2f}x (target <= 2x)")
PY
