#!/bin/sh
# run-fuzz.sh RUNS SECONDS TARGET SEED_DIR MAX_LEN [FLAG...]: run the libFuzzer
# target ./TARGET from its seed corpus SEED_DIR for RUNS executions or
# SECONDS seconds (0: no limit), with ASan's leak check on, and print one
# summary line. New inputs and any crash go to fuzz-work/TARGET/. FLAGs are
# passed on to libFuzzer.
set -eu
runs=$1 seconds=$2 target=$3 seeds=$4 max_len=$5
shift 5
work=fuzz-work/$target
rm -rf "$work"
mkdir -p "$work/new"
# A target that drops to nobody (fuzz_tar_import) must still write here.
if [ "$(id -u)" = 0 ]; then chown -R 65534:65534 "$work"; fi
start=$(date +%s%N)
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp} "./$target" -runs="$runs" \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/new" "$seeds" \
    >"$work.log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
ms=$((($(date +%s%N) - start) / 1000000 + 1))
echo "fuzz: $target: ${execs:-?} executions in $((ms / 1000)).$((ms % 1000 / 100)) s" \
    "($((${execs:-0} * 1000 / ms)) exec/s), $(ls "$seeds" | wc -l) seeds, status $status"
if [ "$status" != 0 ]; then
    tail -n 60 "$work.log" >&2
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null >&2 || true
    exit "$status"
fi
