#!/usr/bin/env bash
# The example workflows, run against a real redis-server with three real
# agents; every output is checked exactly.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 3
ex="$SRC/examples"

run() { "$MAPQ" run "$@" --quiet 2>"$TMP/err"; }

check "anomalies: threshold 11 counts 5 anomalies" "5" "$(run "$ex/anomalies.yaml")"
check "coalesce: map then coalesce gives 34567" '"34567"' "$(run "$ex/coalesce.yaml")"
check "partial: quantities mapped, price and shipping bound" \
    "[13.0,19.0,25.0]" "$(run "$ex/partial.yaml")"
check "upstream bound: threshold from an upstream task" \
    "[false,true,false,false,true,true,true,false,true,false]" "$(run "$ex/upstream_bound.yaml")"
check "zip: two zipped lists and a bound scalar" "[111,122,133]" "$(run "$ex/zip.yaml")"
check "records: map over records from an upstream task" \
    '["a=1","b=2"]' "$(run "$ex/records.yaml")"
check "plugin: example plugin squares 1..5" "[1,4,9,16,25]" "$(run "$ex/plugin_square.yaml")"
check "inputs: --input overrides a default" "2" \
    "$(run "$ex/anomalies.yaml" --input 'data=[1,50,60]' --input threshold=10)"
check "empty list: a map over [] gives []" "0" \
    "$(run "$ex/anomalies.yaml" --input 'data=[]')"
finish
