#!/usr/bin/env bash
# Run fuzz targets for a fixed time each, a few at a time, and print one summary line per
# target (runs, coverage, corpus size, crashes). Used for the "every target runs clean for
# 30 minutes" campaigns; the figures it prints are the ones quoted in notes.
#
#   fuzz/run-all.sh [--seconds N] [--jobs K] [--no-build] [--summary] [--make-seeds] [TARGET ...]
#
# Defaults: 1800 s per target, 2 at a time, every target in fuzz_targets/. Runs at nice 19 so
# builds and tests on the same box keep priority. Each run starts from fuzz/corpus/TARGET/
# (gitignored, grows) plus the committed fuzz/seeds/TARGET/ and fuzz/regressions/TARGET/.
# Crashing inputs land in fuzz/artifacts/TARGET/; a crash (not a slow unit) makes the script
# exit 1 (copy the input into fuzz/regressions/TARGET/ and add a test). Logs:
# fuzz/logs/TARGET.log. --summary prints the table of the last run's logs without running
# anything. --make-seeds (after a run) rewrites fuzz/seeds/TARGET/ from corpus, seeds and
# regressions: at most 20 files of at most 4 KiB, 16 KiB per target, chosen greedily by the
# coverage each adds (libFuzzer's merge control file): most new covered PCs, then features.
set -euo pipefail
cd "$(dirname "$0")"

seconds=1800
jobs=2
build=1
summary=0
make_seeds=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --summary) summary=1; build=0; shift ;;
    --make-seeds) make_seeds=1; build=0; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

triple=x86_64-unknown-linux-gnu
if [ "$build" = 1 ]; then
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
      -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
      -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
        cargo +nightly build --release --target "$triple" --bins
fi

mkdir -p logs
run_one() {
    local t="$1"
    local bin="target/$triple/release/$t"
    [ -x "$bin" ] || { echo "run-all.sh: no binary $bin (build first)" >&2; return 2; }
    mkdir -p "corpus/$t" "artifacts/$t"
    local seeds=()
    [ -d "seeds/$t" ] && seeds+=("seeds/$t")
    [ -d "regressions/$t" ] && seeds+=("regressions/$t")
    # -rss_limit_mb: a target that grows past 2 GiB is a finding (unbounded memory), not noise.
    nice -n 19 "$bin" "corpus/$t" "${seeds[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"logs/$t.log" 2>&1
}

# Seeds by coverage: libFuzzer's merge writes, per input, the features it covers ("FT idx
# f1 f2 ..." and "COV idx pc1 ..." in the control file); pick greedily the input adding the most
# new PCs (then features, then the smaller) until 20 files or 16 KiB.
make_seeds_for() {
    local t="$1"
    local bin="target/$triple/release/$t"
    [ -x "$bin" ] || { echo "run-all.sh: no binary $bin (build first)" >&2; return 2; }
    local tmp
    tmp=$(mktemp -d)
    local dirs=()
    for d in "corpus/$t" "seeds/$t" "regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
    mkdir -p "$tmp/out"
    nice -n 19 "$bin" -merge=1 -merge_control_file="$tmp/ctl" -rss_limit_mb=2048 -max_len=4096 \
        "$tmp/out" "${dirs[@]}" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; rm -rf "$tmp"; return 1; }
    mkdir -p "$tmp/seeds/$t"
    python3 - "$tmp/ctl" "$tmp/seeds/$t" <<'PY'
import hashlib, os, shutil, sys
ctl, out = sys.argv[1], sys.argv[2]
lines = open(ctl).read().split("\n")
n = int(lines[0])
files = lines[2:2 + n]
feats, cov = {}, {}
for l in lines[2 + n:]:
    p = l.split()
    if p and p[0] == "FT":
        feats[int(p[1])] = set(p[2:])
    elif p and p[0] == "COV":
        cov[int(p[1])] = set(p[2:])
cands = [(i, os.path.getsize(files[i])) for i in feats if 0 < os.path.getsize(files[i]) <= 4096]
have, pcs, total, picked = set(), set(), 0, []
while len(picked) < 20:
    cands = [c for c in cands if total + c[1] <= 16384]
    best = max(cands, key=lambda c: (len(cov.get(c[0], set()) - pcs),
                                     len(feats[c[0]] - have), -c[1]), default=None)
    if best is None or not feats[best[0]] - have:
        break
    cands.remove(best)
    have |= feats[best[0]]
    pcs |= cov.get(best[0], set())
    total += best[1]
    data = open(files[best[0]], "rb").read()
    picked.append(best)
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb").write(data)
edges = set().union(*(cov.get(i, set()) for i, _ in picked))
print(f"{os.path.basename(out)}: {len(picked)} files, {total} bytes, {len(have)} of "
      f"{len(set().union(*feats.values())) if feats else 0} features, {len(edges)} of "
      f"{len(set().union(*cov.values())) if cov else 0} covered PCs")
PY
    rm -rf "seeds/$t"
    mkdir -p seeds
    mv "$tmp/seeds/$t" "seeds/$t"
    rm -rf "$tmp"
}
if [ "$make_seeds" = 1 ]; then
    for t in "${targets[@]}"; do make_seeds_for "$t"; done
    exit 0
fi

pids=()
names=()
status=0
[ "$summary" = 1 ] && targets_to_run=() || targets_to_run=("${targets[@]}")
for t in "${targets_to_run[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
    echo "$(date +%H:%M:%S) start $t (${seconds}s)"
    run_one "$t" &
    pids+=($!)
    names+=("$t")
done
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "$(date +%H:%M:%S) FAILED ${names[$i]}: see fuzz/logs/${names[$i]}.log" >&2
        status=1
    fi
done

# crash-/leak-/oom-/timeout- artifacts are findings; slow-unit- ones (over 10 s, usually a
# loaded machine: rerun them alone to see) are listed but do not fail the run.
printf '%-20s %8s %12s %8s %8s %8s %6s %6s\n' target seconds runs execs/s cov corpus crashes slow
for t in "${targets[@]}"; do
    log="logs/$t.log"
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | awk '{print $2}' | tail -1)
    corpus=$(find "corpus/$t" -type f | wc -l)
    crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    slow=$(find "artifacts/$t" -type f -name 'slow-unit-*' | wc -l)
    rate=$(( ${runs:-0} / seconds ))
    printf '%-20s %8s %12s %8s %8s %8s %6s %6s\n' "$t" "$seconds" "${runs:-?}" "$rate" "${cov:-?}" "$corpus" "$crashes" "$slow"
    [ "$crashes" = 0 ] || status=1
done
exit $status
