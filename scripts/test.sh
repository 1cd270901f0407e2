#!/usr/bin/env bash
# test.sh - installs what is missing, then builds and runs the whole suite:
# unit and integration tests (ctest) in a release build and in an
# ASan+UBSan build, the unit tests under valgrind, the format check, and
# every libFuzzer target for a bounded time (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
scripts/deps.sh
jobs=$(nproc)

echo "== format (at ${SECONDS} s)"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common agent scheduler tests examples bench -name '*.[ch]')
clang-format --dry-run --Werror $files

echo "== release build: unit and integration tests (at ${SECONDS} s)"
quiet cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
quiet cmake --build build -j"$jobs"
# One test more than cores: integration tests spend much of their time
# waiting (leases, heartbeats), so this keeps the cores busy (a quarter
# less wall time here). The sanitized build below runs one per core.
(cd build && ctest --output-on-failure -j"$((jobs + 1))")

echo "== valgrind: unit tests (at ${SECONDS} s)"
export MAPQ_SOURCE_DIR="$PWD" MAPQ_BUILD_DIR="$PWD/build"
# valgrind_one TEST: runs one unit test under valgrind; its report, if
# any, is printed whole. The tests run $jobs at a time.
valgrind_one() {
    local log
    log="build/valgrind-$(basename "$1").log"
    if valgrind -q --error-exitcode=99 --leak-check=full --trace-children=no \
        "$1" >/dev/null 2>"$log"; then
        echo "clean: $(basename "$1")"
    else
        cat "$log"
        echo "not clean: $(basename "$1")"
        return 1
    fi
}
export -f valgrind_one
find build/tests -maxdepth 1 -name 'test_*' -type f -perm -u+x | sort |
    xargs -n 1 -P "$jobs" bash -c 'valgrind_one "$0"' ||
    { echo "valgrind: a unit test is not clean (above)"; exit 1; }

echo "== ASan+UBSan build (clang): every test (at ${SECONDS} s)"
CC=clang quiet cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DMAPQ_SANITIZE=address,undefined
quiet cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")

echo "== fuzzing (ASan+UBSan, libFuzzer) (at ${SECONDS} s)"
scripts/fuzz.sh
echo "== done (at ${SECONDS} s)"
