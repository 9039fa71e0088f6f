#!/usr/bin/env bash
# The whole sekisho test suite, from a fresh Debian machine (run as root).
#
# 1. installs what the tests need (apt packages: real servers and clients the tests start),
# 2. checks formatting and lints,
# 3. runs every test of the workspace, including the integration tests that start real
#    servers (dnsmasq, Postfix's smtp-sink, python http.server) on loopback or inside network
#    namespaces the tests create, and the suricata-verify conformance regression check.
#
# Environment: SEKISHO_SKIP_APT=1 skips step 1 (packages already there);
#              SEKISHO_SHARED=DIR points at the shared reference tree (default: ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 iptables tcpdump tshark dnsutils dnsmasq-base unbound dnsperf swaks postfix
          curl wget python3 netcat-openbsd ca-certificates nftables iperf3 openssl)

if [[ "${SEKISHO_SKIP_APT:-0}" != 1 ]]; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "==> installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # Postfix and wireshark ask questions on install; answer them up front.
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
        apt-get update -q
        apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}"
    fi
fi

export CI="${CI:-true}"
# Tests find ../shared through this (the repository is cloned with shared/ beside it).
export SEKISHO_SHARED="${SEKISHO_SHARED:-$(cd .. && pwd)/shared}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
# The fuzz targets are their own workspace (libFuzzer needs nightly to run them); on stable
# they must at least compile, or a changed engine type breaks them unnoticed.
echo "==> cargo clippy (fuzz targets)"
cargo clippy --manifest-path fuzz/Cargo.toml --bins -q -- -D warnings
echo "==> cargo test"
# Two test threads: the integration tests each start servers and namespaces of their own.
cargo test --workspace -q -- --test-threads=2
