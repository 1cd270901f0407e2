#!/usr/bin/env bash
# Prometheus metrics (--metrics HOST:PORT on mapq-agent and mapq scheduler),
# read through Debian's real prometheus server: it scrapes two agents and
# the scheduler every second, and its query API must show the counts of a
# run this test made: 7 succeeded, 2 failed and 1 timed out after 3 retries
# (13 attempts), the execution's status, the subtasks' final phases as the
# scheduler saw them, and the length of a queue no agent serves, also
# through deploy/mapq-rules.yml's rules and alerts. Also: a
# malformed address exits 2, a port in use exits 3. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

if ! command -v prometheus >/dev/null; then
    echo "not ok - prometheus is not installed (scripts/deps.sh installs it)"
    exit 1
fi
start_redis

# ---- bad addresses -----------------------------------------------------------
"$AGENT" --metrics 9100 >"$TMP/bad.out" 2>&1
check "mapq-agent --metrics 9100: exit 2" 2 "$?"
check "... saying what it wants" 1 \
    "$(grep -c "must be HOST:PORT (e.g. 127.0.0.1:9100, :9100, \[::1\]:9100), got '9100'" "$TMP/bad.out")"
"$MAPQ" status abc --metrics :1 >"$TMP/bad.out" 2>&1
check "mapq status --metrics: exit 2 (only mapq scheduler serves metrics)" \
    2 "$?"
python3 -c 'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' \
    >"$TMP/held.port" &
held=$!
PIDS+=("$held")
wait_for 5 test -s "$TMP/held.port"
"$AGENT" --name held --metrics "127.0.0.1:$(cat "$TMP/held.port")" \
    >"$TMP/held.out" 2>&1
check "a port in use: exit 3" 3 "$?"
check "... naming the address" 1 \
    "$(grep -c "cannot listen on '127.0.0.1:$(cat "$TMP/held.port")'" "$TMP/held.out")"
kill "$held"

# ---- two agents, a scheduler and prometheus ----------------------------------------
pa1=$(free_port)
pa2=$(free_port)
ps=$(free_port)
pp=$(free_port)
"$AGENT" --name m-agent-1 --slots 2 --metrics "127.0.0.1:$pa1" \
    >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
"$AGENT" --name m-agent-2 --slots 2 --metrics "127.0.0.1:$pa2" \
    >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
"$MAPQ" scheduler --metrics "127.0.0.1:$ps" >"$TMP/sched.log" 2>&1 &
PIDS+=($!)
check "deploy/mapq-rules.yml passes promtool" 0 \
    "$(promtool check rules "$SRC/deploy/mapq-rules.yml" >"$TMP/promtool.out" 2>&1; echo $?)"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $SRC/deploy/mapq-rules.yml
scrape_configs:
  - job_name: agents
    static_configs:
      - targets: ['127.0.0.1:$pa1', '127.0.0.1:$pa2']
  - job_name: scheduler
    static_configs:
      - targets: ['127.0.0.1:$ps']
EOF
prometheus --config.file="$TMP/prometheus.yml" \
    --storage.tsdb.path="$TMP/prom" --web.listen-address="127.0.0.1:$pp" \
    >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)

# query EXPR: the value of PromQL EXPR (one number), or "none".
query() {
    python3 - "$pp" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://127.0.0.1:%s/api/v1/query?query=%s" % (
    sys.argv[1], urllib.parse.quote(sys.argv[2]))
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
except Exception:
    r = []
print(r[0]["value"][1] if len(r) == 1 else "none")
PY
}
# is EXPR VALUE: whether prometheus has EXPR at VALUE.
is() { [ "$(query "$1")" = "$2" ]; }
# shows NAME VALUE EXPR: checks, within 30 s, that prometheus has EXPR at
# VALUE.
shows() {
    wait_for 30 is "$3" "$2"
    check "$1" "$2" "$(query "$3")"
}

shows "prometheus scrapes both agents and the scheduler" 3 'sum(up)'
shows "mapq_build_info of two agents" 2 \
    'count(mapq_build_info{component="agent",protocol="1"})'
shows "mapq_slots total of both agents" 4 'sum(mapq_slots{state="total"})'

cat >"$TMP/wf.yaml" <<'EOF'
name: metrics
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}
tasks:
  t:
    inputs: {x: int}
    output: int
    retries: 1
    timeout: 1s
    command: [sh, -c, 'case "$MAPQ_IN_x" in 3|7) exit 1;; 5) exec sleep 30;; esac; echo "$MAPQ_IN_x"']
nodes:
  sq:
    map: t
    over: {x: $inputs.xs}
    min_success_ratio: 0.7
output: $sq
EOF
id=$("$MAPQ" submit "$TMP/wf.yaml")
check "the run is submitted" 0 "$?"
wait_for 60 sh -c "'$MAPQ' status $id | grep -q succeeded"
check "the run succeeds (7 of 10 needed)" 1 \
    "$("$MAPQ" status "$id" | grep -c "execution $id: succeeded")"

shows "agents: 7 succeeded" 7 \
    'sum(mapq_subtasks_total{outcome="succeeded",node="sq",queue="default"})'
shows "agents: 3 retried (2 failures, 1 timeout)" 3 \
    'sum(mapq_subtasks_total{outcome="retried"})'
shows "agents: 2 failed" 2 'sum(mapq_subtasks_total{outcome="failed"})'
shows "agents: 1 timed out" 1 'sum(mapq_subtasks_total{outcome="timed_out"})'
shows "agents: 13 claims, by node and queue" 13 \
    'sum(mapq_subtasks_claimed_total{node="sq",queue="default"})'
shows "agents: 13 attempts ended, each once" 13 'sum(mapq_subtasks_total)'
shows "agents: each serves its count of refused results" 2 \
    'count(mapq_results_refused_total)'
shows "agents: no result refused" 0 'sum(mapq_results_refused_total)'
shows "agents: 13 attempts in the duration histogram" 13 \
    'sum(mapq_subtask_duration_seconds_count{node="sq"})'
shows "agents: 2 attempts over 0.5 s (the two that timed out)" 2 \
    'sum(mapq_subtask_duration_seconds_count) - sum(mapq_subtask_duration_seconds_bucket{le="0.5"})'
shows "scheduler: the execution succeeded" 1 \
    'mapq_executions_total{status="succeeded"}'
shows "scheduler: 7 subtasks succeeded" 7 \
    'mapq_subtasks_finished_total{phase="succeeded",node="sq",queue="default"}'
shows "scheduler: 2 failed" 2 'mapq_subtasks_finished_total{phase="failed"}'
shows "scheduler: 1 timed out" 1 \
    'mapq_subtasks_finished_total{phase="timed_out"}'
shows "scheduler: nothing running" 0 'mapq_executions'
shows "Redis round trips timed" 1 \
    'count(mapq_redis_latency_seconds_count{job="scheduler"} > 0)'
shows "no slot busy after the run" 0 'sum(mapq_slots{state="busy"})'

# ---- a queue that no agent serves -------------------------------------------
sed -e 's/^    timeout: 1s/    timeout: 1s\n    queue: nobody/' \
    -e 's/default: \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]/default: [1, 2, 3]/' \
    "$TMP/wf.yaml" >"$TMP/nobody.yaml"
id2=$("$MAPQ" submit "$TMP/nobody.yaml")
shows "scheduler: 3 subtasks wait on queue nobody" 3 \
    'mapq_queue_length{job="scheduler",queue="nobody",kind="command",interruptible="false"}'
shows "scheduler: it drives that execution" 1 'mapq_executions'
shows "deploy's recording rule sees the waiting work" 3 \
    'mapq:queue_length:max{queue="nobody"}'
shows "deploy's alert on a queue no agent serves is pending" 1 \
    'count(ALERTS{alertname="MapqQueueUnserved",queue="nobody"})'
"$MAPQ" cancel "$id2" >/dev/null
shows "scheduler: the cancelled execution counted" 1 \
    'mapq_executions_total{status="cancelled"}'
shows "scheduler: queue nobody empties" 0 \
    'sum(mapq_queue_length{job="scheduler",queue="nobody"}) or vector(0)'
finish
