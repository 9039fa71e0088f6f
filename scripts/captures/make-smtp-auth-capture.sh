#!/usr/bin/env bash
# Makes tests/fixtures/captures/ratelimit/auth-guard.pcap: a dictionary attack on SMTP AUTH next to
# a normal sender, for the brute-force guard of issue 13 (`count: smtp_auth_failure`).
#
# Two network namespaces joined by a veth pair. The server (203.0.113.25/24) runs a private
# Postfix 3.7 instance (`postfix -c DIR`, its own config, queue and data directories; chroot
# off) whose smtpd offers AUTH PLAIN LOGIN through Cyrus SASL with an empty sasldb: every
# login fails with `535 5.7.8 Error: authentication failed`. Mail for example.net is accepted
# and thrown away (`discard:`). The client namespace holds two addresses:
#   * 10.0.0.66, the attacker: six connections, one `swaks --auth LOGIN` each (user admin,
#     password guess1..guess6), two seconds apart;
#   * 10.0.0.150, a normal sender: three plain messages (no AUTH) interleaved with them.
# tcpdump runs on the client-side veth (port 25, offloads off, so wire-sized segments).
#
# Needs root and: iproute2 ethtool tcpdump postfix swaks, libsasl2-modules (the sasldb
# plugin), sasldblistusers2/saslpasswd2 not needed (the database is empty).
# Usage: sudo scripts/captures/make-smtp-auth-capture.sh [OUTDIR]   (default tests/fixtures/captures/ratelimit)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/ratelimit}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ "$(id -u)" = 0 ] || { echo "make-smtp-auth-capture: needs root" >&2; exit 2; }

ns_srv=sk-auth-srv-$$
ns_cli=sk-auth-cli-$$
veth_srv=vas$$
veth_cli=vac$$
work=$(mktemp -d /tmp/sekisho-auth-capture.XXXXXX)
chmod 755 "$work"
pids=()
pf=$work/pf-server

cleanup() {
    postfix -c "$pf" stop >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for ns in "$ns_srv" "$ns_cli"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "${SEKISHO_KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

for t in ip ethtool tcpdump postfix postconf swaks; do
    command -v "$t" >/dev/null || { echo "make-smtp-auth-capture: missing tool $t" >&2; exit 2; }
done

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "$veth_srv" type veth peer name "$veth_cli"
ip link set "$veth_srv" netns "$ns_srv"
ip link set "$veth_cli" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 203.0.113.25/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip addr add 10.0.0.150/24 dev "$veth_cli"
ip netns exec "$ns_cli" ip addr add 10.0.0.66/24 dev "$veth_cli"
ip netns exec "$ns_srv" ip link set "$veth_srv" up
ip netns exec "$ns_cli" ip link set "$veth_cli" up
ip netns exec "$ns_srv" ip route add 10.0.0.0/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip route add 203.0.113.0/24 dev "$veth_cli"
ip netns exec "$ns_srv" ethtool -K "$veth_srv" tso off gso off gro off tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "$veth_cli" tso off gso off gro off tx off rx off >/dev/null

# The server: Postfix smtpd with Cyrus SASL over an empty sasldb.
mkdir -p "$pf/queue" "$pf/data" "$pf/sasl"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s/sasldb2\n' "$pf/sasl" > "$pf/sasl/smtpd.conf"
cat > "$pf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
mail_owner = postfix
setgid_group = postdrop
alias_maps =
alias_database =
myhostname = mx.sekisho.test
mydestination = example.net
local_recipient_maps =
local_transport = discard:
default_transport = discard:
inet_interfaces = 203.0.113.25
inet_protocols = ipv4
mynetworks = 10.0.0.0/24
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $pf/sasl
smtpd_tls_security_level = none
smtpd_tls_auth_only = no
smtp_dns_support_level = disabled
biff = no
CONF
cat > "$pf/master.cf" <<CONF
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
chown postfix "$pf/data"
ip netns exec "$ns_srv" postfix -c "$pf" check >"$work/check.log" 2>&1 || { cat "$work/check.log" >&2; exit 1; }
ip netns exec "$ns_srv" postfix -c "$pf" start >/dev/null 2>&1 || { cat "$pf/maillog" >&2 2>/dev/null; exit 1; }
for _ in $(seq 100); do
    ip netns exec "$ns_srv" ss -Hltn | awk '{print $4}' | grep -qx 203.0.113.25:25 && break
    sleep 0.1
done

ip netns exec "$ns_cli" tcpdump --immediate-mode -i "$veth_cli" -s 0 -U -w "$work/auth-guard.pcap" 'tcp port 25' 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

attack() { # N
    ip netns exec "$ns_cli" swaks --silent 2 --server 203.0.113.25 --local-interface 10.0.0.66 \
        --ehlo attacker.example --from x@attacker.example --to postmaster@example.net \
        --auth LOGIN --auth-user admin --auth-password "guess$1" >/dev/null 2>&1 || true
}
send() { # N
    ip netns exec "$ns_cli" swaks --silent 2 --server 203.0.113.25 --local-interface 10.0.0.150 \
        --ehlo client.example --from alice@client.example --to bob@example.net \
        --header "Subject: normal $1" --body "message $1" >/dev/null
}
attack 1; sleep 2; send 1; sleep 1
attack 2; sleep 2; attack 3; sleep 2
attack 4; sleep 2; send 2; sleep 1
attack 5; sleep 2; attack 6; sleep 2
send 3

for _ in $(seq 100); do
    ip netns exec "$ns_cli" ss -Htn state all '( dport = :25 )' | grep -qv TIME-WAIT || break
    sleep 0.1
done
sleep 0.5
kill -TERM "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
cp "$work/auth-guard.pcap" "$out/auth-guard.pcap"
grep -c 'authentication failed' "$pf/maillog" | sed 's/^/make-smtp-auth-capture: failed logins in the maillog: /' >&2 || true
echo "make-smtp-auth-capture: wrote $out/auth-guard.pcap" >&2
