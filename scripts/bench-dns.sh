#!/usr/bin/env bash
# Load benchmark for `sekisho dns` against the upstream alone and against unbound holding the
# same blocklist, with dnsperf. Prints qps, p50/p99 latency, RSS, the share of NOERROR answers
# (the forwarded part of the mix) and the server's CPU µs per query, per target.
#
#   scripts/bench-dns.sh                 # 122,680-name list and a generated 1,000,000-name list
#   DURATION=10 LISTS=real scripts/bench-dns.sh
#
# Env: DURATION (s per run, default 20), LISTS (real | gen | "real gen"), SEKISHO_BIN (default:
# builds target/release/sekisho), THREADS (sekisho --threads, default 1), QUERIES (distinct query
# names, default 20000), BLOCKLIST (default ../shared/blocklists/hagezi-light-wildcard.txt),
# QUERY_LOG=1 (sekisho writes its query log, as in production; default off like unbound's),
# ALLOWED_ONLY=1 (every query is forwarded upstream: measures the upstream client alone).
# Needs: dnsperf, dnsmasq, unbound, dig (apt-get install dnsperf dnsmasq unbound dnsutils).
#
# Setup, all on loopback, each server on one thread:
#   upstream U  dnsmasq answering every name with 10.0.0.1, TTL 0 (so nobody can cache it);
#   peer P      unbound, num-threads 1, `local-zone: NAME always_nxdomain` per list entry,
#               forwarding everything else to U. The allowed names are under `test.`, which
#               unbound answers NXDOMAIN itself by default (an RFC 6761 special-use zone), so
#               the config says `local-zone: "test." nodefault`: without it unbound never
#               forwarded the allowed 20% at all (runs before 2026-12-07 measured that).
#               Before measuring, each target must answer an allowed name with U's address,
#               and the table's noerror% column shows the answers really were the mix.
#   sekisho S   the same list as a BLOCK/NXDOMAIN rule, forwarding the rest to U, no query log.
#               Hardening on as by default (allow_clients, TCP caps, log queue caps), except that
#               the benchmark client 127.0.0.1 is in limits.exempt_clients: dnsperf is ONE client
#               sending tens of thousands of queries/s, which the default per-client rate limit
#               (1000 q/s) and in-flight cap (100) would throttle, as they should for a real one.
# The query mix is 80% names the list blocks and 20% names it does not, in random order.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-20}"
LISTS="${LISTS:-real gen}"
THREADS="${THREADS:-1}"
QUERIES="${QUERIES:-20000}"
BLOCKLIST="${BLOCKLIST:-$ROOT/../shared/blocklists/hagezi-light-wildcard.txt}"
WORK="$(mktemp -d /tmp/bench-dns.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for t in dnsperf dnsmasq unbound dig; do
    command -v "$t" >/dev/null || { echo "bench-dns: $t not found (apt-get install dnsperf dnsmasq unbound dnsutils)" >&2; exit 2; }
done
if [[ -z "${SEKISHO_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p sekisho >&2)
    SEKISHO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sekisho"
fi

U_PORT=25400; P_PORT=25401; S_PORT=25402

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# utime + stime of process $1, all threads, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_port PORT PID: PID (just started) listens on PORT. A port taken by a leftover server
# would answer too, so the process must still be alive once the port opens.
wait_port() {
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            sleep 0.2
            kill -0 "$2" 2>/dev/null && return 0
            echo "bench-dns: the server for port $1 exited; is the port taken by another process? (ss -lunp | grep :$1)" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "bench-dns: port $1 never opened" >&2; exit 1
}

# must_forward NAME PORT: the target answers an allowed name with the upstream's address, so it
# forwards (a server that answers the allowed names itself would make the comparison void).
must_forward() {
    local got
    got=$(dig +short +tries=1 +time=2 -p "$2" @127.0.0.1 "check$RANDOM.allowed-0.test" A 2>/dev/null || true)
    if [[ "$got" != "10.0.0.1" ]]; then
        echo "bench-dns: $1 does not forward allowed names (answered '${got:-nothing}', want 10.0.0.1)" >&2
        exit 1
    fi
}

# run_perf NAME PORT PID -> prints one result row
run_perf() {
    local name=$1 port=$2 pid=$3
    must_forward "$name" "$port"
    # Warm up briefly, then measure.
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l 2 -q 200 >/dev/null 2>&1 || true
    local t0 t1
    t0=$(cpu_ticks "$pid")
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$DURATION" -q 200 -v \
        >"$WORK/perf-$name.txt" 2>&1 || true
    t1=$(cpu_ticks "$pid")
    local qps lost
    qps=$(awk '/Queries per second/ {print $4}' "$WORK/perf-$name.txt")
    lost=$(awk '/Queries lost/ {print $3}' "$WORK/perf-$name.txt")
    # The server's own CPU time (user + system, all threads) per completed query, in µs: what
    # a query costs the server whatever else shares the machine.
    local done cpu_us
    done=$(awk '/Queries completed/ {print $3}' "$WORK/perf-$name.txt")
    cpu_us=$(awk -v a="$t0" -v b="$t1" -v n="${done:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-" }')
    # "Response codes: NOERROR 10202 (20.05%), NXDOMAIN ..." -> 20.05
    noerr=$(awk '/Response codes/ { for (i = 1; i <= NF; i++) if ($i == "NOERROR") { v = $(i + 2); gsub(/[(%),]/, "", v); print v } }' "$WORK/perf-$name.txt")
    # -v lines: "> NOERROR name A 0.000123" (last field: latency in seconds).
    read -r p50 p99 < <(awk '/^> / {print $NF}' "$WORK/perf-$name.txt" | sort -g |
        awk '{a[NR]=$1} END {
            if (NR == 0) { print "- -"; exit }
            i = int(NR * 0.5); if (i < 1) i = 1
            j = int(NR * 0.99); if (j < 1) j = 1
            printf "%.3f %.3f\n", a[i] * 1000, a[j] * 1000 }')
    printf "%-22s %12s %10s %10s %10s %12s %10s %10s\n" "$name" "${qps:-?}" "$p50" "$p99" "$(( $(rss_kb "$pid") / 1024 ))" "${lost:-?}" "${noerr:-0}" "$cpu_us"
    echo "$name ${qps:-0}" >>"$WORK/qps.txt"
}

# Upstream: answers every name, TTL 0.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --conf-file=/dev/null --user=root \
    --pid-file= --port=$U_PORT --listen-address=127.0.0.1 --bind-interfaces \
    --address=/#/10.0.0.1 --cache-size=0 --dns-forward-max=10000 >/dev/null 2>&1 &
U_PID=$!; PIDS+=("$U_PID")
wait_port $U_PORT "$U_PID"

for which in $LISTS; do
    case "$which" in
        real)
            grep -v '^#' "$BLOCKLIST" | grep -v '^$' >"$WORK/list.txt"
            LABEL="hagezi-light ($(wc -l <"$WORK/list.txt") names)" ;;
        gen)
            # 1,000,000 names: half wildcard, half exact, over 1000 synthetic parents.
            awk 'BEGIN { for (i = 0; i < 1000000; i++) {
                    p = sprintf("n%07d.zone%03d.example", i, i % 1000);
                    if (i % 2) print "*." p; else print p } }' >"$WORK/list.txt"
            LABEL="generated (1000000 names)" ;;
        *) echo "bench-dns: LISTS takes real and/or gen" >&2; exit 2 ;;
    esac
    # Queries: 80% blocked (a name under/at a list entry), 20% allowed (not in the list).
    awk -v n="$QUERIES" -v all="${ALLOWED_ONLY:-0}" 'BEGIN{srand(42)} {names[NR]=$1} END {
            for (i = 0; i < n; i++) {
                if (all == 1 || i % 5 == 4) { printf "host%d.allowed-%d.test A\n", i, i % 97; continue }
                e = names[int(rand() * NR) + 1];
                if (substr(e, 1, 2) == "*.") e = "www." substr(e, 3);
                print e " A" } }' "$WORK/list.txt" | shuf --random-source=<(yes) >"$WORK/queries.txt"

    # Peer: unbound with the same list.
    {
        echo "server:"
        echo "  interface: 127.0.0.1@$P_PORT"
        echo "  port: $P_PORT"
        echo "  num-threads: 1"
        echo "  do-ip6: no"
        echo "  do-not-query-localhost: no"
        echo "  username: \"\""
        echo "  chroot: \"\""
        echo "  directory: \"$WORK\""
        echo "  pidfile: \"\""
        echo "  use-syslog: no"
        echo "  verbosity: 0"
        echo "  module-config: \"iterator\""
        echo "  harden-referral-path: no"
        echo "  qname-minimisation: no"
        echo "  outgoing-range: 4096"
        echo "  num-queries-per-thread: 4096"
        echo "  local-zone: \"test.\" nodefault"
        sed -e 's/^\*\.//' -e 's/.*/  local-zone: "&" always_nxdomain/' "$WORK/list.txt" | sort -u
        echo "forward-zone:"
        echo "  name: \".\""
        echo "  forward-addr: 127.0.0.1@$U_PORT"
    } >"$WORK/unbound.conf"
    unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
    P_PID=$!; PIDS+=("$P_PID")
    wait_port $P_PORT "$P_PID"

    # sekisho with the same list.
    cat >"$WORK/dns.yaml" <<EOF
listen: ["127.0.0.1:$S_PORT"]
upstreams: ["127.0.0.1:$U_PORT"]
allow_clients: ["127.0.0.0/8"]
limits: {exempt_clients: ["127.0.0.1/32"]}   # the one benchmark client; see the header
$( [[ "${QUERY_LOG:-0}" == 1 ]] && echo "query_log: {path: query.log, max_size_mb: 200, keep: 1}" )
domain_lists:
  block: {file: list.txt}
rule_groups:
  - name: bench
    priority: 100
    rules:
      - {name: block, priority: 100, domain_list: block, action: block, block_response: nxdomain}
EOF
    "$SEKISHO_BIN" dns --config "$WORK/dns.yaml" --threads "$THREADS" 2>"$WORK/sekisho.log" &
    S_PID=$!; PIDS+=("$S_PID")
    wait_port $S_PORT "$S_PID"

    echo
    echo "== $LABEL, $QUERIES distinct queries (80% blocked), ${DURATION}s per target =="
    printf "%-22s %12s %10s %10s %10s %12s %10s %10s\n" target qps p50_ms p99_ms rss_mb lost noerror% cpu_us/q
    rm -f "$WORK/qps.txt"
    run_perf "upstream-alone" $U_PORT "$U_PID"
    run_perf "unbound+list" $P_PORT "$P_PID"
    run_perf "sekisho+list" $S_PORT "$S_PID"
    awk '{q[$1]=$2} END { if (q["unbound+list"] > 0) printf "ratio sekisho/unbound: %.2f   sekisho/upstream: %.2f\n", q["sekisho+list"]/q["unbound+list"], q["sekisho+list"]/q["upstream-alone"] }' "$WORK/qps.txt"
    kill "$P_PID" "$S_PID"; wait "$P_PID" "$S_PID" 2>/dev/null || true
    grep -h "stopped" "$WORK/sekisho.log" || true
done
