#!/usr/bin/env bash
# Byte-for-byte comparison of two sekisho binaries' logs over every capture under
# tests/fixtures, with and without policies, in EVE and NFW format, inline and monitor.
#
# Refactors that must not change behaviour are checked with it: build the old binary from
# the previous commit (e.g. `git worktree add /tmp/old HEAD~1 && cargo build --release
# --manifest-path /tmp/old/Cargo.toml`), then
#
#   scripts/diff-logs.sh /tmp/old/target/release/sekisho target/release/sekisho
#
# Compared per run: eve.json (or alert.log + flow.log) and the console text (the --explain
# lines and the summary, with timings masked).
# Prints one line per difference and a closing `N identical, N different`; exits 1 on any
# difference. With ../shared present, the ET Open 2024-04 rules are also replayed over the
# real mixed-traffic capture (set SEKISHO_DIFF_NO_ET=1 to skip that slower run).
set -euo pipefail
old=${1:?usage: $0 OLD_BINARY NEW_BINARY}
new=${2:?usage: $0 OLD_BINARY NEW_BINARY}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SEKISHO_SHARED:-$here/../shared}
work=$(mktemp -d /tmp/sekisho-diff.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$here"

mapfile -t captures < <(find tests/fixtures/captures -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.gz' \) | sort)
mapfile -t smtp_captures < <(find tests/fixtures/captures/smtp -type f -name '*.pcap' | sort)
mapfile -t policies < <(ls examples/smtp/*.yaml examples/egress/policy.yaml | sort)

same=0 diff=0
# The console text minus what depends on the machine's speed (load and run times).
# $1: the run's output directory, printed in some lines.
norm() { sed -E "s# in [0-9.]+ (ms|s)\b# in T#g; s#wall=.*\$#wall=T#; s#[0-9.]+ (Mpps|Gbit/s)#R \1#g; s#$1#OUT#g"; }
run() { # name, then replay arguments
    local name=$1; shift
    local a=$work/a b=$work/b
    rm -rf "$a" "$b"; mkdir -p "$a" "$b"
    "$old" replay --out "$a" "$@" 2>&1 | norm "$a" >"$a/stdout" || echo "exit $?" >>"$a/stdout"
    "$new" replay --out "$b" "$@" 2>&1 | norm "$b" >"$b/stdout" || echo "exit $?" >>"$b/stdout"
    local f bad=0
    for f in eve.json alert.log flow.log stdout; do
        if [[ -e $a/$f || -e $b/$f ]] && ! cmp -s "$a/$f" "$b/$f"; then
            echo "DIFF $name: $f"
            bad=1
        fi
    done
    if ((bad)); then diff=$((diff + 1)); else same=$((same + 1)); fi
}

for c in "${captures[@]}"; do
    for mode in inline monitor; do
        run "$c --mode $mode" --mode "$mode" --anomalies --netflow "$c"
        run "$c --mode $mode nfw" --mode "$mode" --log-format nfw "$c"
    done
done
for c in "${smtp_captures[@]}"; do
    for p in "${policies[@]}"; do
        for mode in inline monitor; do
            run "$c $p --mode $mode" --policy "$p" --mode "$mode" --explain --anomalies "$c"
        done
        run "$c $p nfw" --policy "$p" --log-format nfw "$c"
    done
done
et=$shared/rulesets/et-open-2024-04
if [[ -d $et && "${SEKISHO_DIFF_NO_ET:-0}" != 1 ]]; then
    rules=()
    for r in "$et"/*.rules; do rules+=(--rules "$r"); done
    run "ET Open real-eth.pcap" --mode monitor "${rules[@]}" tests/fixtures/captures/real-eth.pcap
    run "ET Open real-eth.pcap inline" --mode inline "${rules[@]}" tests/fixtures/captures/real-eth.pcap
fi
echo "$same identical, $diff different"
((diff == 0))
