#!/usr/bin/env bash
# Crafted captures that attack the packet decoder: fragments beyond the datagram's end,
# overlapping fragments with different data, transports hidden behind IPv6 extension headers
# after a Fragment header, and VXLAN/GENEVE with malformed inner packets (and valid ones).
#
#   bash scripts/captures/make-crafted-captures.sh [OUTDIR]
#
# OUTDIR defaults to tests/fixtures/captures/crafted (its README.md says what each file
# attacks and is left alone). The packets are built byte by byte by crafted.py with Python's
# `struct` (no network, no root, no third-party module): runs are byte-identical. If tshark is
# installed, each file is listed after it is written, as a check that a real dissector reads it.
# Checked by crates/engine/tests/crafted_decode.rs (engine) and crates/cli/tests/replay_crafted.rs
# (sekisho replay inline with the recipient allow list).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/tests/fixtures/captures/crafted}"

command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
mkdir -p "$OUT"
python3 "$HERE/crafted.py" "$OUT"

if command -v tshark >/dev/null; then
    for f in "$OUT"/*.pcap; do
        echo "== $(basename "$f")"
        tshark -n -r "$f" 2>/dev/null | sed 's/^/  /'
    done
fi
