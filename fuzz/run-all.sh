#!/usr/bin/env bash
# Run fuzz targets for a fixed time each, a few at a time, and print one summary line per
# target (runs, coverage, corpus size, crashes). Used for the "every target runs clean for
# 30 minutes" campaigns; the figures it prints are the ones quoted in notes.
#
#   fuzz/run-all.sh [--seconds N] [--jobs K] [--no-build] [--summary] [TARGET ...]
#
# Defaults: 1800 s per target, 2 at a time, every target in fuzz_targets/. Runs at nice 19 so
# builds and tests on the same box keep priority. Crashing inputs land in
# fuzz/artifacts/TARGET/; a crash (not a slow unit) makes the script exit 1 (copy the input into
# fuzz/regressions/TARGET/ and add a test). Logs: fuzz/logs/TARGET.log. --summary prints
# the table of the last run's logs without running anything.
set -euo pipefail
cd "$(dirname "$0")"

seconds=1800
jobs=2
build=1
summary=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --summary) summary=1; build=0; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
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
    [ -d "regressions/$t" ] && seeds+=("regressions/$t")
    # -rss_limit_mb: a target that grows past 2 GiB is a finding (unbounded memory), not noise.
    nice -n 19 "$bin" "corpus/$t" "${seeds[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"logs/$t.log" 2>&1
}

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
