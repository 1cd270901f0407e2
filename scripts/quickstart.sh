#!/usr/bin/env bash
# quickstart.sh - installs what is missing, builds mapq and runs
# examples/anomalies.yaml in local mode (a private redis-server and local
# agents, torn down afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
scripts/deps.sh
quiet cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
quiet cmake --build build -j"$(nproc)"
./build/mapq run examples/anomalies.yaml
