#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets (tests/fuzz/, clang with
# ASan+UBSan) in build-fuzz and runs each for a bounded time, as many at
# once as there are cores, from the seeds in tests/fuzz/corpus/<target>/.
# A crash, a leak, a sanitizer report or an input slower than 2 s fails the
# run and prints the reproducer. MAPQ_FUZZ_SECONDS sets each target's time
# (default 20); MAPQ_FUZZ_TARGETS="msgpack proto" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
secs=${MAPQ_FUZZ_SECONDS:-20}
jobs=$(nproc)
out=build-fuzz/runs

CC=clang quiet cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug \
    -DMAPQ_SANITIZE=address,undefined -DMAPQ_FUZZ=ON
quiet cmake --build build-fuzz -j"$jobs" --target mapq_fuzz
rm -rf "$out"
mkdir -p "$out"

# run NAME: fuzzes one target into a scratch corpus seeded from the
# committed one; the log in $out/NAME.log, the exit status in $out/NAME.rc.
run() {
    local name=$1 bin=build-fuzz/tests/fuzz/fuzz_$1 max_len=65536
    # Refs and URLs are short; messages and YAML need room for structure.
    if [ "$name" = proto ]; then
        max_len=1024
    fi
    mkdir -p "$out/$name/corpus" "$out/$name/crashes"
    cp tests/fuzz/corpus/"$name"/* "$out/$name/corpus/" 2>/dev/null || true
    set +e
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$secs" -timeout=2 -rss_limit_mb=2048 \
        -max_len=$max_len -detect_leaks=1 -print_final_stats=1 \
        -artifact_prefix="$out/$name/crashes/" "$out/$name/corpus" \
        >"$out/$name.log" 2>&1
    echo $? >"$out/$name.rc"
    set -e
}

targets=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    targets+=("${name#fuzz_}")
done
if [ -n "${MAPQ_FUZZ_TARGETS:-}" ]; then
    read -ra targets <<<"$MAPQ_FUZZ_TARGETS"
fi
status=0
i=0
while [ $i -lt ${#targets[@]} ]; do
    pids=()
    for j in $(seq 1 "$jobs"); do
        [ $i -lt ${#targets[@]} ] || break
        run "${targets[$i]}" &
        pids+=($!)
        i=$((i + 1))
    done
    wait "${pids[@]}"
done
for name in "${targets[@]}"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log")
    if [ "$(cat "$out/$name.rc")" -ne 0 ]; then
        echo "fuzz $name: FAILED after ${runs:-?} runs"
        # Under pipefail: grep finding nothing, or head closing early,
        # must not end the script before the reproducers are listed.
        { grep -E 'ERROR|SUMMARY|runtime error|Test unit written' \
            "$out/$name.log" || true; } | head -20 || true
        for f in "$out/$name/crashes"/*; do
            [ -e "$f" ] || continue
            echo "  reproducer: $f"
            echo "  run it:     build-fuzz/tests/fuzz/fuzz_$name $f"
        done
        status=1
    else
        echo "fuzz $name: ${runs:-?} runs, clean"
    fi
done
exit $status
