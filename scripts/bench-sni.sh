#!/usr/bin/env bash
# Replay throughput on a mostly-TLS capture with a 10,000-entry SNI allow list, against the
# same capture with no rules (issue 12's speed check).
#
# Makes (once, cached in target/bench/sni.pcap) a capture of N (default 1000) curl HTTPS
# connections with distinct SNIs (n<i>.sekisho.test, every tenth one outside the list) to
# openssl s_server in two network namespaces, tcpdump on the veth. Builds sekisho in release
# mode, writes a policy whose domain list has 10,000 targets (the capture's names among
# them), and runs `sekisho replay --mode monitor` three times each with the policy and with
# no rules, interleaved; prints the best packets/s of each and the ratio.
#
# Needs root and: iproute2 ethtool tcpdump openssl curl.
# Usage: sudo scripts/bench-sni.sh [N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
bench=${CARGO_TARGET_DIR:-$here/target}/bench
mkdir -p "$bench"
pcap=$bench/sni-$n.pcap

if [[ ! -s $pcap ]]; then
    ns_srv=sk-sni-srv-$$ ns_cli=sk-sni-cli-$$
    work=$(mktemp -d /tmp/sekisho-sni.XXXXXX)
    pids=()
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
    ip netns exec "$ns_srv" ip addr add 10.97.0.1/24 dev "bs$$"
    ip netns exec "$ns_cli" ip addr add 10.97.0.2/24 dev "bc$$"
    ip netns exec "$ns_srv" ip link set "bs$$" up
    ip netns exec "$ns_cli" ip link set "bc$$" up
    ip netns exec "$ns_srv" ethtool -K "bs$$" tso off gso off gro off tx off rx off >/dev/null
    ip netns exec "$ns_cli" ethtool -K "bc$$" tso off gso off gro off tx off rx off >/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
        -days 30 -subj "/CN=sekisho.test" 2>/dev/null
    (cd "$work" && exec ip netns exec "$ns_srv" openssl s_server -accept 443 -cert cert.pem -key key.pem -www -quiet >/dev/null 2>&1) &
    pids+=($!)
    for _ in $(seq 200); do ip netns exec "$ns_srv" ss -ltn | grep -q ':443 ' && break; sleep 0.1; done
    ip netns exec "$ns_cli" tcpdump -i "bc$$" -s 0 -U -w "$work/sni.pcap" 2>"$work/tcpdump.log" &
    tcpdump_pid=$!; pids+=($tcpdump_pid)
    for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
    for i in $(seq "$n"); do
        host=n$i.sekisho.test
        (( i % 10 == 0 )) && host=n$i.other.test
        ip netns exec "$ns_cli" curl -sk -o /dev/null --resolve "$host:443:10.97.0.1" "https://$host/" || true
    done
    sleep 0.5; kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
    cp "$work/sni.pcap" "$pcap"
fi

cargo build --release -q -p sekisho --manifest-path "$here/Cargo.toml"
bin=${CARGO_TARGET_DIR:-$here/target}/release/sekisho
policy=$bench/sni-allow.yaml
{
    printf 'variables:\n  HOME_NET: [10.97.0.2/32]\n  EXTERNAL_NET: any\nrule_order: strict\n'
    printf 'default_actions: [drop_established_app_layer]\nrule_groups:\n  - name: web\n'
    printf '    domain_list:\n      target_types: [tls_sni]\n      type: allowlist\n      targets:\n'
    for i in $(seq 10000); do printf '        - n%d.sekisho.test\n' "$i"; done
} > "$policy"
best() { sort -g | tail -1; }
pps() { # args...: packets per second of the replay's packet loop (its summary's wall time)
    local line pkts wall
    line=$("$bin" replay --mode monitor --out "$bench/sni-out" "$@" "$pcap" 2>&1 | grep '^packets=')
    pkts=$(sed -n 's/^packets=\([0-9]*\).*/\1/p' <<<"$line")
    wall=$(sed -n 's/.* wall=\([0-9.]*\)s.*/\1/p' <<<"$line")
    echo "$pkts / $wall" | bc -l
}
with=() without=()
for _ in 1 2 3; do
    with+=("$(pps --policy "$policy")")
    without+=("$(pps)")
done
w=$(printf '%s\n' "${with[@]}" | best); o=$(printf '%s\n' "${without[@]}" | best)
printf 'capture: %s (%s connections)\n' "$pcap" "$n"
printf 'no rules:                    %10.0f packets/s\n' "$o"
printf '10,000-entry SNI allow list: %10.0f packets/s\n' "$w"
printf 'ratio: %.2f\n' "$(echo "$w / $o" | bc -l)"
