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

# concurrency is a sliding window, exact across agents and slots: three
# agents with two slots each, yet at most N subtasks run at once. Each
# subtask counts itself in and out under flock, and records the peak and the
# order it started in.
cat >"$TMP/window.yaml" <<'EOF'
name: window
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5, 6, 7]}
  dir: {type: str}
tasks:
  hold:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        exec 9>>"$d/lock"
        flock 9
        n=$(( $(cat "$d/n" 2>/dev/null || echo 0) + 1 )); echo $n >"$d/n"
        m=$(cat "$d/max" 2>/dev/null || echo 0)
        [ "$n" -gt "$m" ] && echo $n >"$d/max"
        echo "$MAPQ_IN_x" >>"$d/order"
        flock -u 9
        sleep 0.2
        flock 9; echo $(( $(cat "$d/n") - 1 )) >"$d/n"; flock -u 9
        echo "$MAPQ_IN_x"
nodes:
  held: {map: hold, over: {x: $inputs.xs}, with: {dir: $inputs.dir}, concurrency: 2}
output: $held
EOF
for c in 2 1; do
    mkdir "$TMP/w$c"
    sed "s/concurrency: 2/concurrency: $c/" "$TMP/window.yaml" >"$TMP/window$c.yaml"
    check "concurrency $c: output in input order" "[0,1,2,3,4,5,6,7]" \
        "$(run "$TMP/window$c.yaml" --input dir="$TMP/w$c")"
    check "concurrency $c: at most $c ran at once, and $c did" "$c" \
        "$(cat "$TMP/w$c/max")"
done
check "concurrency 1: subtasks start lowest index first" "0 1 2 3 4 5 6 7" \
    "$(tr '\n' ' ' <"$TMP/w1/order" | sed 's/ $//')"
finish
