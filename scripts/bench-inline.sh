#!/usr/bin/env bash
# Inline benchmark in a network-namespace lab (run as root): added latency per packet and TCP
# throughput through a `fw` namespace that routes between `client` and `server`.
#
#   scripts/bench-inline.sh [SECONDS_PER_THROUGHPUT_RUN]     (default 5)
#
# Latency: a TCP ping-pong (64-byte messages, 5000 round trips on one connection, python3)
# without a firewall and with `sekisho run` (empty policy) in the path; p50 and p99 of the
# round trip, and the difference (what sekisho adds per round trip = two packets).
# Throughput: iperf3 (Debian package) client -> server for SECONDS, in these set-ups:
#   none         plain forwarding, no netfilter rule
#   accept       iptables FORWARD -j ACCEPT (conntrack on)
#   empty/1q     sekisho, empty policy, one queue
#   smtp/1q      sekisho, examples/smtp/recipients-action-order.yaml, one queue
#   etopen/1q    sekisho, every ET Open 2024-04 rule file from ../shared (alert rules), one queue
#   empty/2q     sekisho, empty policy, two queues (--queue-balance 0:1), two client addresses
#                and two iperf3 streams at once (the kernel hashes addresses, so one per queue)
#   etopen/2q    the same with ET Open
# SEKISHO_RUN_ARGS adds flags to every `sekisho run` (e.g. "--verdict-batch 1" to compare
# one verdict per packet with batches).
# Uses target/release/sekisho (built if missing). Traffic stays inside the namespaces, which
# are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
SHARED="${SEKISHO_SHARED:-$(cd .. && pwd)/shared}"
for t in ip iptables iperf3 python3; do
    command -v "$t" >/dev/null || { echo "missing: $t (apt-get install iproute2 iptables iperf3 python3)" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)" >&2; exit 2; }
[[ -x target/release/sekisho ]] || cargo build --release -q -p sekisho
BIN="$PWD/target/release/sekisho"

P="skb$$"; C="$P-client"; F="$P-fw"; S="$P-server"
WORK="$(mktemp -d)"
FWPID=""
cleanup() {
    [[ -n "$FWPID" ]] && kill "$FWPID" 2>/dev/null && wait "$FWPID" 2>/dev/null || true
    for ns in "$C" "$F" "$S"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in "$C" "$F" "$S"; do ip netns add "$ns"; inns "$ns" ip link set lo up; done
ip link add c0 netns "$C" type veth peer name f0 netns "$F"
ip link add f1 netns "$F" type veth peer name s0 netns "$S"
inns "$C" ip addr add 10.0.0.2/24 dev c0; inns "$C" ip addr add 10.0.0.3/24 dev c0
inns "$F" ip addr add 10.0.0.1/24 dev f0; inns "$F" ip addr add 10.0.1.1/24 dev f1
inns "$S" ip addr add 10.0.1.2/24 dev s0
for x in "$C c0" "$F f0" "$F f1" "$S s0"; do set -- $x; inns "$1" ip link set "$2" up; done
inns "$C" ip route add 10.0.1.0/24 via 10.0.0.1
inns "$S" ip route add 10.0.0.0/24 via 10.0.1.1
inns "$F" sysctl -qw net.ipv4.ip_forward=1

# Policies.
printf 'engine_profile: suricata-8\nrule_groups: []\n' > "$WORK/empty.yaml"
# The SMTP recipe in action order (examples/smtp/recipients-action-order.yaml): every
# packet of every flow is inspected by the recipient rules, other traffic passes by default.
SMTP="$PWD/examples/smtp/recipients-action-order.yaml"
ET="$WORK/etopen.yaml"
if [[ -d "$SHARED/rulesets/et-open-2024-04" ]]; then
    {
        echo "engine_profile: suricata-8"
        echo "variables: {HOME_NET: [10.0.0.0/24]}"
        echo "rule_groups:"
        for f in "$SHARED"/rulesets/et-open-2024-04/*.rules; do
            echo "  - {name: $(basename "$f" .rules), rules: $f}"
        done
    } > "$ET"
else
    ET=""
    echo "note: $SHARED/rulesets/et-open-2024-04 missing; ET Open runs skipped" >&2
fi

# Servers: TCP echo (latency) and iperf3 on two ports.
cat > "$WORK/echo.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.1.2", 7007)); s.listen(8)
while True:
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(64)
        if not d: break
        c.sendall(d)
    c.close()
PY
cat > "$WORK/pingpong.py" <<'PY'
import socket, time, sys
n = int(sys.argv[1]); s = socket.create_connection(("10.0.1.2", 7007))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"x" * 64; rtts = []
for i in range(200): s.sendall(msg); s.recv(64)          # warm-up
for i in range(n):
    t = time.perf_counter_ns(); s.sendall(msg)
    got = 0
    while got < 64: got += len(s.recv(64 - got))
    rtts.append(time.perf_counter_ns() - t)
rtts.sort()
print("%.1f %.1f" % (rtts[len(rtts)//2] / 1000, rtts[int(len(rtts)*0.99)] / 1000))
PY
inns "$S" python3 "$WORK/echo.py" & 
inns "$S" iperf3 -s -B 10.0.1.2 -p 5201 -D
inns "$S" iperf3 -s -B 10.0.1.2 -p 5202 -D
sleep 1

start_fw() { # POLICY QUEUEARGS...
    local pol=$1; shift
    rm -f "$WORK/ready"
    # `ip netns exec` execs sekisho, so $! is sekisho's pid (a shell function would fork).
    ip netns exec "$F" "$BIN" run --policy "$pol" --out "$WORK/out" --ready-file "$WORK/ready" \
        --allow-unsupported ${SEKISHO_RUN_ARGS:-} "$@" 2>"$WORK/fw.stderr" &
    FWPID=$!
    for _ in $(seq 600); do [[ -e "$WORK/ready" ]] && return 0; sleep 0.1; done
    cat "$WORK/fw.stderr" >&2; echo "sekisho did not start" >&2; exit 1
}
stop_fw() {
    kill "$FWPID"; wait "$FWPID" || true; FWPID=""
    grep -h "stopped;" "$WORK/fw.stderr" >&2 || true
    # Why packets were dropped, if any (drop records' reasons).
    python3 - "$WORK/out/eve.json" >&2 <<'PY' || true
import json, sys, collections
c = collections.Counter()
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event_type") == "drop":
        c[str(e.get("drop", {}).get("reason"))] += 1
if c: print("  drop reasons:", dict(c))
PY
    rm -rf "$WORK/out"
}
rules() { inns "$F" iptables -F FORWARD; [[ $# -gt 0 ]] && inns "$F" iptables -A FORWARD "$@"; true; }
iperf_one() { inns "$C" timeout $((SECS + 20)) iperf3 -c 10.0.1.2 -p 5201 -B 10.0.0.2 -t "$SECS" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
iperf_two() {
    inns "$C" timeout $((SECS + 20)) iperf3 -c 10.0.1.2 -p 5201 -B 10.0.0.2 -t "$SECS" -J > "$WORK/i1.json" &
    local a=$!
    inns "$C" timeout $((SECS + 20)) iperf3 -c 10.0.1.2 -p 5202 -B 10.0.0.3 -t "$SECS" -J > "$WORK/i2.json"
    wait $a
    python3 -c 'import json,sys; print("%.2f" % (sum(json.load(open(f))["end"]["sum_received"]["bits_per_second"] for f in sys.argv[1:])/1e9))' "$WORK/i1.json" "$WORK/i2.json"
}
latency() { inns "$C" python3 "$WORK/pingpong.py" 5000; }

echo "sekisho inline bench: $(nproc) cores, $(uname -r), $SECS s per throughput run"
echo "== latency (TCP ping-pong, 64 B, 5000 round trips; microseconds)"
rules
read -r base50 base99 < <(latency)
echo "no firewall        p50 $base50  p99 $base99"
rules -j NFQUEUE --queue-num 0
start_fw "$WORK/empty.yaml" --queue 0
read -r fw50 fw99 < <(latency)
stop_fw
echo "sekisho (empty)    p50 $fw50  p99 $fw99"
python3 -c "print('added per round trip (2 packets): p50 %.1f us, p99 %.1f us' % ($fw50-$base50, $fw99-$base99))"

echo "== throughput (iperf3, Gbit/s)"
rules;                      echo "none               $(iperf_one)"
rules -j ACCEPT;            echo "accept             $(iperf_one)"
rules -j NFQUEUE --queue-num 0
start_fw "$WORK/empty.yaml" --queue 0;  echo "empty/1q           $(iperf_one)"; stop_fw
start_fw "$SMTP" --queue 0;             echo "smtp/1q            $(iperf_one)"; stop_fw
if [[ -n "$ET" ]]; then start_fw "$ET" --queue 0; echo "etopen/1q          $(iperf_one)"; stop_fw; fi
rules -j NFQUEUE --queue-balance 0:1
start_fw "$WORK/empty.yaml" --queues 0:1; echo "empty/2q (2 flows) $(iperf_two)"; stop_fw
rules;                      echo "none (2 flows)     $(iperf_two)"
if [[ -n "$ET" ]]; then
    rules -j NFQUEUE --queue-balance 0:1
    start_fw "$ET" --queues 0:1; echo "etopen/2q (2 flows) $(iperf_two)"; stop_fw
fi
