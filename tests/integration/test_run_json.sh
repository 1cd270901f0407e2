#!/usr/bin/env bash
# --json on every command (docs/JSON.md): one JSON document on stdout,
# parsed here and its keys checked. An execution's summary is the same
# object from run, recover, status and each line of watch. Errors stay one
# line on stderr with the usual exit status, and stdout holds nothing but
# JSON. mapq run --json reports every node of the execution, however soon
# after its end the driver lets the execution go: the summary is taken
# when the execution ends (twenty runs of a three-node workflow, each
# checked). A failure whose task wrote a byte that is not UTF-8 to stderr
# is still valid JSON.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2 --lease 2s

# summary FILE [FILE...]: checks that each file holds one summary per line
# with every documented key (and no other); prints "ok" or what is wrong.
summary() {
    python3 - "$@" <<'PY'
import json, sys
top = ["execution", "workflow", "status", "created_ms", "finished_ms",
       "duration_ms", "nodes"]
phases = ["queued", "running", "retrying", "succeeded", "cached",
          "recovered", "failed", "timed_out", "aborted"]
bad = []
for path in sys.argv[1:]:
    lines = open(path, encoding="utf-8").read().splitlines()
    if not lines:
        bad.append("%s: empty" % path)
    for line in lines:
        d = json.loads(line)
        want = list(top)
        if d["status"] == "succeeded":
            want.append("output")
        if d["status"] in ("failed", "cancelled"):
            want.append("error")
        if list(d) != want:
            bad.append("%s: keys %s" % (path, list(d)))
        if not isinstance(d["duration_ms"], int) or not isinstance(d["created_ms"], int):
            bad.append("%s: timings %r" % (path, d))
        for n in d["nodes"]:
            if list(n) != ["name", "state", "total", "counts"] or \
                    list(n["counts"]) != phases or \
                    sum(n["counts"].values()) != n["total"]:
                bad.append("%s: node %r" % (path, n))
print("ok" if not bad else "; ".join(bad)[:400])
PY
}
# node_counts FILE: "name:succeeded ..." of the summary's last line.
node_counts() {
    python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(" ".join("%s:%d" % (n["name"], n["counts"]["succeeded"]) for n in d["nodes"]))' "$1" 2>&1
}

cat >"$TMP/three.yaml" <<'EOF'
name: three
inputs:
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  id: {inputs: {x: int}, output: int, command: [echo, "{x}"]}
  sum: {inputs: {xs: "list[int]"}, output: int, command: [sh, -c, 'echo $(( $(echo "$MAPQ_IN_xs" | tr -d "[] " | tr , +) ))']}
nodes:
  a: {map: id, over: {x: $inputs.xs}}
  b: {map: id, over: {x: $a}}
  c: {task: sum, with: {xs: $b}}
output: $c
EOF
bad=0
for i in $(seq 1 20); do
    timeout -s KILL 60 "$MAPQ" run "$TMP/three.yaml" --json >"$TMP/run.json" 2>"$TMP/run.err"
    got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(n["name"] for n in d["nodes"]), d["output"], d["nodes"][1]["counts"]["succeeded"])' "$TMP/run.json" 2>&1)
    [ "$got" = "a,b,c 6 3" ] || { bad=$((bad + 1)); echo "# run $i: $got"; }
done
check "run --json: all 20 runs list nodes a, b and c with their counts" "0" "$bad"
check "run --json: every key of the summary" "ok" "$(summary "$TMP/run.json")"
check "run --json: nothing on stderr" "" "$(cat "$TMP/run.err")"

# The same execution seen by run, status and watch: the same summary.
x=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run.json")
"$MAPQ" status "$x" --json >"$TMP/status.json" 2>"$TMP/status.err"
check "status --json: exit 0" "0" "$?"
timeout -s KILL 20 "$MAPQ" watch "$x" --json >"$TMP/watch.json" 2>"$TMP/watch.err"
check "watch --json of an ended execution: exit 0, one line" "0 1" \
    "$? $(wc -l <"$TMP/watch.json" | tr -d ' ')"
check "status and watch --json: every key of the summary" "ok" \
    "$(summary "$TMP/status.json" "$TMP/watch.json")"
same() {
    python3 - "$@" <<'PY'
import json, sys
docs = [json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:]]
keys = ["execution", "workflow", "status", "created_ms", "nodes", "output"]
diff = [k for k in keys if any(d[k] != docs[0][k] for d in docs)]
print("same" if not diff else "differ in %s: %s" % (diff, [[d[k] for k in diff] for d in docs]))
PY
}
check "run, status and watch --json: the same execution, nodes, counts and output" \
    "same" "$(same "$TMP/run.json" "$TMP/status.json" "$TMP/watch.json")"
check "result --json: the output" "6" "$("$MAPQ" result "$x" --json)"

# watch --json while it runs: one summary per line (JSON Lines) until it
# ends, the last one succeeded with its output.
cat >"$TMP/nap.yaml" <<'EOF'
name: nap
inputs:
  xs: {type: "list[int]", default: [1, 2]}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 2; echo "$MAPQ_IN_x"']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
"$MAPQ" scheduler >>"$TMP/scheduler.log" 2>&1 &
PIDS+=($!)
"$MAPQ" submit "$TMP/nap.yaml" --json >"$TMP/submit.json" 2>"$TMP/submit.err"
submitted=$?
# watch starts at once (the id read without python, whose start alone can
# take a good part of the run's 2 s), the checks of submit after.
nx=$(grep -o '"execution":"[0-9a-f]*"' "$TMP/submit.json" | cut -d'"' -f4)
timeout -s KILL 60 "$MAPQ" watch "$nx" --json >"$TMP/watch2.json" 2>"$TMP/watch2.err" &
watch_pid=$!
check "submit --json: exit 0, the summary of a submitted execution" "0 submitted n:0" \
    "$submitted $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], " ".join("%s:%d" % (n["name"], n["total"]) for n in d["nodes"]))' "$TMP/submit.json" 2>&1)"
check "submit --json: every key of the summary" "ok" "$(summary "$TMP/submit.json")"
wait "$watch_pid"
check "watch --json: exit 0 once it succeeded" "0" "$?"
check "watch --json: every line a summary with every key" "ok" "$(summary "$TMP/watch2.json")"
check "watch --json: a line per refresh, the last succeeded with its output" "yes succeeded [1, 2]" \
    "$(python3 -c '
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
print("yes" if len(ls) >= 2 and ls[0]["status"] != "succeeded" else "no: %d lines" % len(ls),
      ls[-1]["status"], ls[-1]["output"])' "$TMP/watch2.json" 2>&1)"
check "watch --json: the last line is what status --json says" "same" \
    "$("$MAPQ" status "$nx" --json >"$TMP/status2.json"; same "$TMP/watch2.json" "$TMP/status2.json")"

# A failure whose stderr holds a byte that is not UTF-8, a quote and a tab.
cat >"$TMP/bad.yaml" <<'EOF'
name: bad
tasks:
  t: {inputs: {}, output: int, retries: 0, command: [sh, -c, 'printf "a\377\"q\tz\n" >&2; exit 1']}
nodes:
  n: {task: t}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/bad.yaml" --json >"$TMP/bad.json" 2>"$TMP/bad.err"
check "run --json failure: exit 1" "1" "$?"
check "run --json failure with odd stderr bytes: valid JSON, the bad byte as U+FFFD" "True" \
    "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print("a\ufffd\"q\tz" in e)' "$TMP/bad.json" 2>&1)"
check "run --json failure: the summary has an error and every key" "ok" "$(summary "$TMP/bad.json")"
check "run --json failure: one line on stderr says why" "1" \
    "$(grep -c "^mapq: execution [0-9a-f]* failed: node 'n' failed" "$TMP/bad.err")"
bx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/bad.json")
timeout -s KILL 60 "$MAPQ" recover "$bx" --json >"$TMP/recover.json" 2>"$TMP/recover.err"
check "recover --json of a failure that fails again: exit 1" "1" "$?"
check "recover --json: the summary, every key" "ok failed" \
    "$(summary "$TMP/recover.json") $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$TMP/recover.json" 2>&1)"

# logs and agents: a JSON array of objects with the documented keys.
"$MAPQ" logs "$bx" n --json >"$TMP/logs.json" 2>"$TMP/logs.err"
check "logs --json: exit 0, one attempt with its keys, phase in lowercase" \
    "0 1 failed ['node', 'index', 'attempt', 'agent', 'started_ms', 'duration_ms', 'exit_status', 'phase', 'retried', 'error', 'stderr']" \
    "$? $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(len(a), a[0]["phase"], list(a[0]))' "$TMP/logs.json" 2>&1)"
"$MAPQ" agents --json >"$TMP/agents.json" 2>"$TMP/agents.err"
check "agents --json: exit 0, an object per agent with its keys" \
    "0 True ['name', 'host', 'slots', 'running', 'queues', 'interruptible', 'heartbeat_ms_ago', 'cpus', 'mem_bytes']" \
    "$? $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(len(a) >= 2, list(a[0]))' "$TMP/agents.json" 2>&1)"

# cancel: whether this call cancelled it, and the state it is in.
cat >"$TMP/long.yaml" <<'EOF'
name: long
tasks:
  t: {inputs: {}, output: int, command: [sh, -c, 'sleep 30; echo 1']}
nodes:
  n: {task: t}
output: $n
EOF
cx=$("$MAPQ" submit "$TMP/long.yaml")
"$MAPQ" cancel "$cx" --json >"$TMP/cancel.json" 2>"$TMP/cancel.err"
check "cancel --json: exit 0, cancelled" "0 {'execution': '$cx', 'cancelled': True, 'status': 'cancelled'}" \
    "$? $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$TMP/cancel.json" 2>&1)"
"$MAPQ" cancel "$cx" --json >"$TMP/cancel2.json" 2>/dev/null
check "cancel --json again: exit 0, not cancelled by this call" "0 False cancelled" \
    "$? $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["cancelled"], d["status"])' "$TMP/cancel2.json" 2>&1)"
"$MAPQ" status "$cx" --json >"$TMP/cstatus.json"
check "status --json of a cancelled execution: every key, an error" "ok cancelled" \
    "$(summary "$TMP/cstatus.json") $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$TMP/cstatus.json" 2>&1)"

# validate and cache.
"$MAPQ" validate "$TMP/three.yaml" --json >"$TMP/validate.json" 2>"$TMP/validate.err"
check "validate --json: exit 0, file, workflow, tasks and nodes" \
    "0 ['file', 'workflow', 'tasks', 'nodes'] three ['id', 'sum'] c:sum:False" \
    "$? $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); n=d["nodes"][2]; print(list(d), d["workflow"], d["tasks"], "%s:%s:%s" % (n["name"], n["task"], n["map"]))' "$TMP/validate.json" 2>&1)"
sed 's/over:/ovr:/' "$TMP/three.yaml" >"$TMP/invalid.yaml"
"$MAPQ" validate "$TMP/invalid.yaml" --json >"$TMP/invalid.out" 2>"$TMP/invalid.err"
check "validate --json of an invalid workflow: exit 2, nothing on stdout, the problems on stderr" \
    "2 0 yes" "$? $(wc -c <"$TMP/invalid.out" | tr -d ' ') $(grep -q 'invalid.yaml:[0-9]*:[0-9]*: ' "$TMP/invalid.err" && echo yes)"
cat >"$TMP/cached.yaml" <<'EOF'
name: cached
tasks:
  sq: {inputs: {x: int}, output: int, cache: true, command: [sh, -c, 'echo $((MAPQ_IN_x * MAPQ_IN_x))']}
nodes:
  n: {map: sq, over: {x: [1, 2, 3]}}
output: $n
EOF
timeout -s KILL 60 "$MAPQ" run "$TMP/cached.yaml" >/dev/null 2>&1
"$MAPQ" cache ls --task sq --json >"$TMP/ls.json" 2>"$TMP/ls.err"
check "cache ls --json: exit 0, an object per entry with its keys" \
    "0 3 ['task', 'key', 'bytes', 'ttl_ms']" \
    "$? $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(len(a), list(a[0]))' "$TMP/ls.json" 2>&1)"
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["key"])' "$TMP/ls.json")
check "cache rm --json: exit 0, how many went" "0 {'removed': 1}" \
    "$("$MAPQ" cache rm "$key" --json >"$TMP/rm.json"; echo $?) $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$TMP/rm.json" 2>&1)"
check "cache clear --json: exit 0, how many went" "0 {'removed': 2}" \
    "$("$MAPQ" cache clear --task sq --json >"$TMP/clear.json"; echo $?) $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$TMP/clear.json" 2>&1)"

# Errors stay one line on stderr, with the exit status of SPEC section 6,
# and stdout empty.
for cmd in "status 000000000000" "watch 000000000000" "cancel 000000000000" \
    "result 000000000000" "logs 000000000000 n"; do
    # shellcheck disable=SC2086
    "$MAPQ" $cmd --json >"$TMP/e.out" 2>"$TMP/e.err"
    check "$cmd --json: exit 1, nothing on stdout, one line on stderr" "1 0 1" \
        "$? $(wc -c <"$TMP/e.out" | tr -d ' ') $(wc -l <"$TMP/e.err" | tr -d ' ')"
done
"$MAPQ" status 000000000000 --json --redis "unix://$TMP/none.sock" >"$TMP/e.out" 2>"$TMP/e.err"
check "status --json, Redis unreachable: exit 3, nothing on stdout, one line" "3 0 1" \
    "$? $(wc -c <"$TMP/e.out" | tr -d ' ') $(wc -l <"$TMP/e.err" | tr -d ' ')"
"$MAPQ" run "$TMP/three.yaml" --json --redis "unix://$TMP/none.sock" >"$TMP/e.out" 2>"$TMP/e.err"
check "run --json, Redis unreachable: exit 3, nothing on stdout, one line" "3 0 1" \
    "$? $(wc -c <"$TMP/e.out" | tr -d ' ') $(wc -l <"$TMP/e.err" | tr -d ' ')"
"$MAPQ" scheduler --json >"$TMP/e.out" 2>"$TMP/e.err"
check "scheduler --json: a usage error (its logs are --log-format json)" "2 0 1" \
    "$? $(wc -c <"$TMP/e.out" | tr -d ' ') $(grep -c 'log-format json' "$TMP/e.err")"
finish
