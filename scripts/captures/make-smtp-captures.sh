#!/usr/bin/env bash
# Regenerates the real SMTP captures in tests/fixtures/captures/smtp/ and, for each one, the
# envelope tshark's SMTP dissector sees (NAME.tshark.json).
#
# Two network namespaces joined by a veth pair: the client ("sender", 10.0.0.150/24) and the
# server (203.0.113.25/24), each with an explicit on-link route to the other's /24. Servers in
# the server namespace: Postfix's smtp-sink (PIPELINING advertised), and for the STARTTLS
# capture a private Postfix instance whose smtpd offers STARTTLS with a throw-away self-signed
# certificate (smtp-sink cannot do TLS). Clients in the client namespace: a private Postfix
# instance fed by its own sendmail(1) (relayhost = the server), swaks, and python3's smtplib.
# Every capture is taken with tcpdump on the client-side veth, port 25 only, one pcap per client
# run. The host's own Postfix configuration and queue are never touched: both instances use
# `postfix -c DIR` with config, queue and data directories under a temporary work directory.
#
# Needs root and: iproute2 ethtool tcpdump tshark postfix swaks python3 openssl, and
# libnet-ssleay-perl (swaks --tls; a Recommends of swaks).
# Usage: sudo scripts/captures/make-smtp-captures.sh [OUTDIR]   (default tests/fixtures/captures/smtp)
# SEKISHO_KEEP_WORK=1 keeps the work directory (Postfix maillogs, configs) for debugging.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/tests/fixtures/captures/smtp}
mkdir -p "$out"
out=$(cd "$out" && pwd)

[ "$(id -u)" = 0 ] || { echo "make-smtp-captures: needs root (network namespaces, Postfix)" >&2; exit 2; }

ns_srv=sk-smtp-srv-$$
ns_cli=sk-smtp-cli-$$
veth_srv=vss$$
veth_cli=vsc$$
work=$(mktemp -d /tmp/sekisho-smtp-captures.XXXXXX)
chmod 755 "$work"
pids=()
instances=()

cleanup() {
    for d in "${instances[@]}"; do postfix -c "$d" stop >/dev/null 2>&1 || true; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # Postfix daemons outlive `postfix stop` for a moment; anything left in the namespaces goes.
    for ns in "$ns_srv" "$ns_cli"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "${SEKISHO_KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "make-smtp-captures: missing tool $1" >&2; exit 2; }; }
for t in ip ethtool tcpdump tshark postfix postconf postqueue swaks python3 openssl; do need "$t"; done
sink=$(command -v smtp-sink || true)
for c in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do [ -z "$sink" ] && [ -x "$c" ] && sink=$c; done
[ -n "$sink" ] || { echo "make-smtp-captures: smtp-sink not found (apt-get install postfix)" >&2; exit 2; }
perl -MNet::SSLeay -e1 2>/dev/null || { echo "make-smtp-captures: swaks --tls needs libnet-ssleay-perl" >&2; exit 2; }
sendmail_bin=$(postconf -dh sendmail_path)

ip netns add "$ns_srv"
ip netns add "$ns_cli"
ip link add "$veth_srv" type veth peer name "$veth_cli"
ip link set "$veth_srv" netns "$ns_srv"
ip link set "$veth_cli" netns "$ns_cli"
for ns in "$ns_srv" "$ns_cli"; do
    # No IPv6: keeps router solicitations and MLD reports out of the fixtures.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
ip netns exec "$ns_srv" ip addr add 203.0.113.25/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip addr add 10.0.0.150/24 dev "$veth_cli"
ip netns exec "$ns_srv" ip link set "$veth_srv" up
ip netns exec "$ns_cli" ip link set "$veth_cli" up
ip netns exec "$ns_srv" ip route add 10.0.0.0/24 dev "$veth_srv"
ip netns exec "$ns_cli" ip route add 203.0.113.0/24 dev "$veth_cli"
# Offloads off: the capture must hold wire-sized segments, not 64 KB GSO super-packets.
ip netns exec "$ns_srv" ethtool -K "$veth_srv" tso off gso off gro off tx off rx off >/dev/null
ip netns exec "$ns_cli" ethtool -K "$veth_cli" tso off gso off gro off tx off rx off >/dev/null

cli() { ip netns exec "$ns_cli" "$@"; }

wait_listen() { # NS ADDR:PORT
    for _ in $(seq 100); do
        ip netns exec "$1" ss -Hltn | awk '{print $4}' | grep -qx "$2" && return 0
        sleep 0.1
    done
    echo "make-smtp-captures: nothing listens on $2" >&2
    exit 1
}

# A private Postfix instance: DIR holds main.cf/master.cf, DIR/queue the queue, DIR/data the
# data directory. Chroot is off everywhere (the chroot jail would need copies of /etc files).
# Usage: make_instance NS DIR MAIN MASTER (extra main.cf text, extra master.cf lines).
make_instance() {
    local ns=$1 dir=$2
    shift
    mkdir -p "$dir/queue" "$dir/data"
    cat > "$dir/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
mail_owner = postfix
setgid_group = postdrop
alias_maps =
alias_database =
mydestination =
local_recipient_maps =
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_connection_cache_on_demand = no
biff = no
$2
CONF
    cat > "$dir/master.cf" <<CONF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
$3
CONF
    chown postfix "$dir/data"
    # `check` creates the queue directories. Postfix reports to syslog only when stderr is
    # not a terminal; on failure, see $dir/maillog or run the command by hand.
    ip netns exec "$ns" postfix -c "$dir" check >"$dir/check.log" 2>&1 || {
        echo "make-smtp-captures: postfix -c $dir check failed" >&2; cat "$dir/check.log" >&2; exit 1; }
}

start_instance() { # NS DIR
    ip netns exec "$1" postfix -c "$2" start >/dev/null 2>&1 || {
        echo "make-smtp-captures: postfix -c $2 start failed" >&2; cat "$2/maillog" >&2 2>/dev/null; exit 1; }
    instances+=("$2")
}

# Capture helpers: one tcpdump per pcap, port 25 only, on the client-side veth.
tcpdump_pid=
cap_start() {
    rm -f "$work/tcpdump.log"
    # Started directly (not through cli): a background subshell would ignore the stop signal.
    # --immediate-mode: without it packets wait in the kernel ring for up to a second and a
    # short session stopped soon after its end is lost.
    ip netns exec "$ns_cli" tcpdump --immediate-mode -i "$veth_cli" -s 0 -U -w "$work/$1.pcap" 'tcp port 25' 2>"$work/tcpdump.log" &
    tcpdump_pid=$!
    pids+=("$tcpdump_pid")
    for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.3
}
cap_stop() {
    # Let the last FIN/ACKs arrive: wait until no port-25 connection is left in the client.
    for _ in $(seq 100); do
        cli ss -Htn state all '( dport = :25 )' | grep -qv TIME-WAIT || break
        sleep 0.1
    done
    sleep 0.5
    kill -TERM "$tcpdump_pid"
    wait "$tcpdump_pid" 2>/dev/null || true
    cp "$work/$1.pcap" "$out/$1.pcap"
}

# Client-side Postfix: sendmail(1) -> pickup -> qmgr -> smtp client -> relayhost. No listener.
client_pf=$work/pf-client
make_instance "$ns_cli" "$client_pf" "
myhostname = sendmail.yamashita-kensho.net
mydomain = yamashita-kensho.net
myorigin = \$myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [203.0.113.25]:25
smtp_tls_security_level = none
" ""
start_instance "$ns_cli" "$client_pf"

pf_send() { # FROM RCPT... (message on stdin); returns when the queue is empty again
    local from=$1; shift
    cli env MAIL_CONFIG="$client_pf" "$sendmail_bin" -C "$client_pf" -f "$from" -- "$@"
    for _ in $(seq 300); do
        postqueue -c "$client_pf" -p 2>/dev/null | grep -q 'Mail queue is empty' && return 0
        cli env MAIL_CONFIG="$client_pf" postqueue -c "$client_pf" -f 2>/dev/null || true
        sleep 0.2
    done
    echo "make-smtp-captures: Postfix did not deliver; maillog:" >&2
    cat "$client_pf/maillog" >&2
    exit 1
}

# Started directly (not through srv) so that $! is smtp-sink itself, not a subshell.
ip netns exec "$ns_srv" "$sink" -u postfix 203.0.113.25:25 100 >"$work/sink.log" 2>&1 &
pids+=($!); sink_pid=$!
wait_listen "$ns_srv" 203.0.113.25:25

# 1. Postfix relaying one message: MAIL, RCPT and DATA pipelined into one segment.
cap_start postfix-pipelined
printf 'From: alice@yamashita-kensho.net\nTo: someone@yahoo.co.jp\nSubject: sekisho fixture\n\nhello from the sekisho capture script\n' \
    | pf_send alice@yamashita-kensho.net someone@yahoo.co.jp
cap_stop postfix-pipelined

# 2. Postfix, one message to two recipients (one a policy would allow, one it would not).
cap_start postfix-two-rcpt
printf 'From: alice@yamashita-kensho.net\nTo: alice@example.com, mallory@evil.example\nSubject: sekisho fixture\n\ntwo recipients\n' \
    | pf_send alice@yamashita-kensho.net alice@example.com mallory@evil.example
cap_stop postfix-two-rcpt

# 3. swaks with --pipeline (MAIL, both RCPTs and DATA in one write). swaks takes several
# recipients as one comma-separated --to.
cap_start swaks-pipeline
cli swaks --silent 2 --pipeline --server 203.0.113.25 --ehlo client.example --from a@example.com \
    --to b@example.com,c@example.org --header 'Subject: sekisho fixture' --body 'pipelined by swaks' >/dev/null
cap_stop swaks-pipeline

# 4. swaks in lock-step (waits for each reply), one recipient allowed / one disallowed.
cap_start swaks-plain
cli swaks --silent 2 --server 203.0.113.25 --ehlo client.example --from a@example.com \
    --to alice@example.com --header 'Subject: sekisho fixture' --body 'plain swaks' >/dev/null
cap_stop swaks-plain
cap_start swaks-plain-disallowed
cli swaks --silent 2 --server 203.0.113.25 --ehlo client.example --from a@example.com \
    --to mallory@evil.example --header 'Subject: sekisho fixture' --body 'plain swaks' >/dev/null
cap_stop swaks-plain-disallowed

# 5. python3 smtplib: two messages with RSET between them, and an envelope abandoned by RSET
# before a delivered message.
cat > "$work/smtplib-two.py" <<'PY'
import smtplib
s = smtplib.SMTP("203.0.113.25", 25, local_hostname="client.example", timeout=10)
s.ehlo()
s.sendmail("<first@example.com>", ["alice@example.com"], "Subject: one\r\n\r\nfirst message\r\n")
s.rset()
s.sendmail("<second@example.com>", ["bob@example.org", "carol@example.net"], "Subject: two\r\n\r\nsecond message\r\n")
s.quit()
PY
cat > "$work/smtplib-rset.py" <<'PY'
import smtplib
s = smtplib.SMTP("203.0.113.25", 25, local_hostname="client.example", timeout=10)
s.ehlo()
s.mail("abandoned@example.com")
s.rcpt("mallory@evil.example")
s.rset()
s.sendmail("<kept@example.com>", ["alice@example.com"], "Subject: kept\r\n\r\nafter RSET\r\n")
s.quit()
PY
cap_start two-messages
cli python3 "$work/smtplib-two.py"
cap_stop two-messages
cap_start rset
cli python3 "$work/smtplib-rset.py"
cap_stop rset

# 6. STARTTLS: smtp-sink makes way for a Postfix smtpd offering STARTTLS on the same address.
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=mx.sekisho.test' \
    -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
chmod 644 "$work/tls.key"
server_pf=$work/pf-server
make_instance "$ns_srv" "$server_pf" "
myhostname = mx.sekisho.test
inet_interfaces = 203.0.113.25
inet_protocols = ipv4
mynetworks = 10.0.0.0/24 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = may
smtpd_tls_cert_file = $work/tls.crt
smtpd_tls_key_file = $work/tls.key
# Accepted mail goes nowhere: this namespace must not send anything on.
default_transport = discard:sekisho fixture
relay_transport = discard:sekisho fixture
local_transport = discard:sekisho fixture
" "smtp      inet  n       -       n       -       -       smtpd"
start_instance "$ns_srv" "$server_pf"
wait_listen "$ns_srv" 203.0.113.25:25
cap_start starttls
cli swaks --silent 2 --tls --server 203.0.113.25 --ehlo client.example --from a@example.com \
    --to alice@example.com --header 'Subject: sekisho fixture' --body 'inside TLS' >/dev/null
cap_stop starttls

# Expected data: what tshark's SMTP dissector shows, grouped into transactions by the rules of
# Suricata's parser (shared/reference/suricata-smtp-parser.md §2, §6): one list per TCP
# stream, one object per transaction.
cat > "$work/expect.py" <<'PY'
import json, subprocess, sys

SEP = "\x1e"  # field aggregator: a pipelined segment holds several command lines


def token(line, skip):
    # Suricata's argument token: skip the verb (`skip` chars) plus one separator char, then
    # leading spaces, then copy up to the next space.
    return line[skip + 1:].lstrip(" ").split(" ", 1)[0]


def new_tx(txs):
    tx = {"mail_from": None, "rcpt_to": [], "done": False}
    txs.append(tx)
    return tx


def session(events):
    helo, txs, cur, pending, greeted = None, [], None, [], False
    for kind, v in events:
        if kind == "rsp":
            # tshark gives one code per reply (multi-line replies included); each reply
            # answers the oldest unanswered command, the first one is the greeting.
            if not greeted:
                greeted = True
                continue
            if not pending:
                continue
            what, tx = pending.pop(0)
            if what == "data" and v == 354:
                # The message follows as data (tshark shows no command lines in it); the
                # reply after it answers the end of data. The request side is complete once
                # the "." is sent, before the next command line.
                pending.insert(0, ("eod", tx))
                tx["done"] = True
            elif what == "rset" and v == 250:
                tx["done"] = True
            elif what == "starttls" and v == 220:
                tx["done"] = True
                break  # TLS from here on: no SMTP visible
            continue
        verb = v.lower()
        resetting = verb.startswith(("rset", "quit"))
        if (cur is None and (not txs or not resetting)) or (cur is not None and cur["done"] and not resetting):
            cur = new_tx(txs)
        if verb.startswith(("helo", "ehlo")):
            if helo is None:
                helo = token(v, 4)
        elif verb.startswith("mail from"):
            if cur["mail_from"] is None:
                cur["mail_from"] = token(v, 9)
        elif verb.startswith("rcpt to"):
            cur["rcpt_to"].append(token(v, 7))
        what = next((w for w in ("starttls", "data", "rset") if verb.startswith(w)), "other")
        pending.append((what, cur))
    return [{"helo": helo, "mail_from": t["mail_from"], "rcpt_to": t["rcpt_to"]} for t in txs]


def sessions(pcap):
    out = subprocess.run(
        ["tshark", "-r", pcap, "-Y", "smtp", "-T", "fields", "-E", "aggregator=" + SEP,
         "-e", "tcp.stream", "-e", "smtp.command_line", "-e", "smtp.response.code"],
        check=True, capture_output=True, text=True).stdout
    streams = {}
    for row in out.split("\n"):
        if not row:
            continue
        stream, cmds, codes = (row.split("\t") + ["", ""])[:3]
        ev = streams.setdefault(int(stream), [])
        for c in cmds.split(SEP) if cmds else []:
            # tshark prints the line's CRLF escaped.
            ev.append(("cmd", c.removesuffix("\\r\\n")))
        for c in codes.split(SEP) if codes else []:
            ev.append(("rsp", int(c)))
    return [session(streams[k]) for k in sorted(streams)]


json.dump(sessions(sys.argv[1]), sys.stdout, indent=2)
sys.stdout.write("\n")
PY
for f in "$out"/*.pcap; do
    python3 "$work/expect.py" "$f" > "${f%.pcap}.tshark.json"
    # A capture without any SMTP in it means a client or tcpdump misbehaved.
    grep -q '"helo"' "${f%.pcap}.tshark.json" || { echo "make-smtp-captures: no SMTP in $f" >&2; exit 1; }
done
ls -l "$out"
