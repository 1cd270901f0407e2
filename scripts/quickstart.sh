#!/usr/bin/env bash
# quickstart.sh - installs what is missing, builds mapq and runs
# examples/anomalies.yaml in local mode (a private redis-server and local
# agents, torn down afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/mapq run examples/anomalies.yaml
