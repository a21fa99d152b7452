#!/usr/bin/env bash
# Coverage-guided fuzzing of ipallow (atheris + libFuzzer, extension built with ASan + UBSan and
# libFuzzer coverage by tools/sanitize.sh). See tests/fuzz/README.md.
#
#   tools/fuzz.sh                      every harness for 10 minutes each
#   tools/fuzz.sh --time 3600          every harness for an hour each (repeat with --rounds N / 0 = forever)
#   tools/fuzz.sh --time 300 address   one harness (address network batch listfile lines registry snapshot)
#   tools/fuzz.sh --smoke              CI: every harness for $FUZZ_SMOKE_SECONDS (default 15) s
#
# New inputs go to build/fuzz/corpus/<harness>/ (the committed seeds in tests/fuzz/corpus/ are
# only read); a failing input is written to build/fuzz/crashes/<harness>/ and the script exits 1.
# Each run's figures (executions, exec/s, cov, ft) are appended to build/fuzz/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL=(address network batch listfile lines registry snapshot)
seconds=600
rounds=1
harnesses=()
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) seconds=${FUZZ_SMOKE_SECONDS:-15} ;;
        --time) seconds=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) harnesses+=("$1") ;;
    esac
    shift
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${ALL[@]}")

# Longest input per harness: address text is short; files and snapshots are not.
max_len() {
    case $1 in
        address|network) echo 256 ;;
        batch) echo 1024 ;;
        lines) echo 4096 ;;
        listfile|registry) echo 8192 ;;
        snapshot) echo 65536 ;;
        *) echo "fuzz.sh: unknown harness $1 (${ALL[*]})" >&2; exit 2 ;;
    esac
}

tools/sanitize.sh build-if-needed
WORK=$ROOT/build/fuzz
mkdir -p "$WORK"
failed=()
round=0
while [ "$rounds" = 0 ] || [ $round -lt "$rounds" ]; do
    round=$((round + 1))
    for h in "${harnesses[@]}"; do
        limit=$(max_len "$h")
        mkdir -p "$WORK/corpus/$h" "$WORK/crashes/$h"
        log=$WORK/$h.log
        echo "fuzz.sh: $h for ${seconds}s (log: ${log#"$ROOT"/})" >&2
        dict=()
        [ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
        status=0
        IPALLOW_FUZZ=1 IPALLOW_FUZZ_ARTIFACTS=$WORK/crashes/$h tools/sanitize.sh run python "tests/fuzz/fuzz_$h.py" \
            "$WORK/corpus/$h" "tests/fuzz/corpus/$h" \
            -max_total_time="$seconds" -max_len="$limit" -timeout=20 -rss_limit_mb=4096 \
            -artifact_prefix="$WORK/crashes/$h/" -print_final_stats=1 "${dict[@]}" > "$log" 2>&1 || status=$?
        # The last status line ("#N DONE cov: C ft: F corp: ...") and libFuzzer's final stats.
        line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
        corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$line")
        summary="$(date -u +%FT%TZ) $h ${seconds}s execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} status=$status"
        echo "$summary" | tee -a "$WORK/summary.txt"
        if [ $status -ne 0 ]; then
            failed+=("$h")
            echo "fuzz.sh: $h FAILED; the end of its log:" >&2
            tail -40 "$log" >&2
            ls "$WORK/crashes/$h" >&2 || true
        fi
    done
    [ ${#failed[@]} -eq 0 ] || break
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failing harnesses: ${failed[*]} (inputs in build/fuzz/crashes/; replay one with" \
         "tools/sanitize.sh run python tests/fuzz/fuzz_<harness>.py <file>)" >&2
    exit 1
fi
