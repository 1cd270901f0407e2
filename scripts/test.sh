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

echo "== format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common agent scheduler tests examples bench -name '*.[ch]')
clang-format --dry-run --Werror $files

echo "== release build: unit and integration tests"
quiet cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
quiet cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== valgrind: unit tests"
export MAPQ_SOURCE_DIR="$PWD" MAPQ_BUILD_DIR="$PWD/build"
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    valgrind -q --error-exitcode=99 --leak-check=full --trace-children=no \
        "$t" >/dev/null 2>build/valgrind.log || { cat build/valgrind.log; exit 1; }
    echo "clean: $(basename "$t")"
done

echo "== ASan+UBSan build (clang): every test"
CC=clang quiet cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DMAPQ_SANITIZE=address,undefined
quiet cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")

echo "== fuzzing (ASan+UBSan, libFuzzer)"
scripts/fuzz.sh
