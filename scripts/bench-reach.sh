#!/usr/bin/env bash
# Sweep speed of `sekisho reach` (issue 14): 1,024 ports and a 10,000-name SNI list on the
# field report's VPC (examples/reach). Each firewall's rules are compiled once; every
# question walks both paths and runs a fresh sensor on its synthesised conversation.
#
# Builds sekisho in release mode; writes the name list (every tenth name outside the
# allow-listed example.com) to target/bench/reach-sni-10000.txt; prints the summary line of
# each sweep (questions, reachable, seconds, questions/s).
# Usage: scripts/bench-reach.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bench=${CARGO_TARGET_DIR:-$here/target}/bench
mkdir -p "$bench"
cargo build --release -q -p sekisho
bin=${CARGO_TARGET_DIR:-$here/target}/release/sekisho
names=$bench/reach-sni-10000.txt
for i in $(seq 0 9999); do
    if (( i % 10 == 9 )); then echo "n$i.blocked.test"; else echo "n$i.example.com"; fi
done > "$names"

run() {
    echo "==> sekisho reach $*"
    "$bin" reach "$@" > /dev/null
}
run --model examples/reach/vpc.yaml --from app --to 203.0.113.10 --proto tcp --ports 1-1024
run --model examples/reach/vpc-drop-established.yaml --from app --to 203.0.113.10 --proto tls --ports 1-1024
run --model examples/reach/vpc.yaml --from app --to 203.0.113.10 --proto http --ports 1-1024
run --model examples/reach/vpc-domains.yaml --from app --to 203.0.113.10 --sni-list "$names"
