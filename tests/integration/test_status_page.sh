#!/usr/bin/env bash
# The status page of `mapq scheduler --http HOST:PORT`, during a run: two
# agents run a map of 10 whose subtasks 1 and 2 fail with the same error
# (markup in it) and 8 and 9 wait for a file, so the run stays in progress
# with 8 of 10 done. Checks /api/status with python3 (keys, counts, the
# failures grouped, the agents), then loads the page in Debian's headless
# Chromium and checks the DOM its script built: the execution's row and
# status, the node's done/total, the failure group's text and count, the
# agents, and that markup held by Redis (a hand-written record named
# <b>x</b>, the error text) shows as text; no script error on the console.
# Takes screenshots (wide and narrow) and checks they are PNGs of that
# size; keeps them in the build's test-output/status_page/. Then lets the
# run end and checks the page follows. Also: a malformed address exits 2,
# a port in use exits 3, and --metrics with --http on the same address
# serves both. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

if ! command -v chromium >/dev/null; then
    echo "not ok - chromium is not installed (scripts/deps.sh installs it)"
    exit 1
fi
OUT="$BUILD/test-output/status_page"
mkdir -p "$OUT"
start_redis

# within SECONDS COMMAND...: runs COMMAND until it succeeds, for at most
# SECONDS of wall time (wait_for counts tries, and these take a while).
within() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# http_get URL: the body of a GET of URL, or nothing (exit 1).
http_get() {
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except Exception as e:
    sys.exit(1)
PY
}

# ---- addresses ---------------------------------------------------------------
"$MAPQ" scheduler --http 8080 >"$TMP/bad.out" 2>&1
check "mapq scheduler --http 8080: exit 2" 2 "$?"
check "... saying what it wants" 1 \
    "$(grep -c "^mapq: --http must be HOST:PORT (e.g. 127.0.0.1:8080, :8080, \[::1\]:8080), got '8080'$" "$TMP/bad.out")"
"$MAPQ" status abc --http :1 >"$TMP/bad.out" 2>&1
check "mapq status --http: exit 2 (only mapq scheduler serves it)" 2 "$?"
check "... saying so" 1 \
    "$(grep -c '^mapq: --http goes with mapq scheduler$' "$TMP/bad.out")"
python3 -c 'import socket, time; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' \
    >"$TMP/held.port" &
held=$!
PIDS+=("$held")
wait_for 5 test -s "$TMP/held.port"
"$MAPQ" scheduler --http "127.0.0.1:$(cat "$TMP/held.port")" \
    >"$TMP/held.out" 2>&1
check "a port in use: exit 3" 3 "$?"
check "... naming the address" 1 \
    "$(grep -c "cannot listen on '127.0.0.1:$(cat "$TMP/held.port")'" "$TMP/held.out")"
kill "$held"

# One address for both: /metrics and the page's routes on one server.
shared=$(free_port)
"$MAPQ" scheduler --metrics "127.0.0.1:$shared" --http "127.0.0.1:$shared" \
    >"$TMP/shared.log" 2>&1 &
spid=$!
PIDS+=("$spid")
wait_for 10 http_get "http://127.0.0.1:$shared/api/status"
check "--metrics and --http on one address: /api/status answers" 1 \
    "$(http_get "http://127.0.0.1:$shared/api/status" | grep -c '"scheduler":{"version":')"
check "... and /metrics too" 1 \
    "$(http_get "http://127.0.0.1:$shared/metrics" | grep -c '^mapq_build_info{component="scheduler"')"
check "... and / the page" 1 \
    "$(http_get "http://127.0.0.1:$shared/" | grep -c '<title>mapq status</title>')"
kill -TERM "$spid"
wait "$spid"
check "that scheduler stops cleanly" 0 "$?"

# ---- a run in progress ---------------------------------------------------------
start_agents 2
"$MAPQ" scheduler --http 127.0.0.1:0 >"$TMP/sched.log" 2>&1 &
PIDS+=($!)
wait_for 10 grep -q 'status page on 127.0.0.1:0 (port [0-9]*)' "$TMP/sched.log"
port=$(sed -n 's/.*status page on 127.0.0.1:0 (port \([0-9]*\)).*/\1/p' "$TMP/sched.log")
URL="http://127.0.0.1:$port"
check "the scheduler says the port it serves the page on" 1 \
    "$([ -n "$port" ] && [ "$port" -gt 0 ] && echo 1)"

cat >"$TMP/wf.yaml" <<EOF
name: status-demo
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}
tasks:
  t:
    inputs: {x: int}
    output: int
    timeout: 2m
    command: [sh, -c, 'case "\$MAPQ_IN_x" in 1|2) echo "subtask \$MAPQ_IN_x" >&2; echo "boom: <i>bad</i> input" >&2; exit 1;; 8|9) while [ ! -e "$TMP/go" ]; do sleep 0.05; done;; esac; echo "\$MAPQ_IN_x"']
nodes:
  sq:
    map: t
    over: {x: \$inputs.xs}
    min_success_ratio: 0.5
output: \$sq
EOF
id=$("$MAPQ" submit "$TMP/wf.yaml")
check "the run is submitted" 0 "$?"
# A record no mapq wrote: its name and its node's name hold markup.
odd=0000000bad01
now_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
redis_cli HSET "$MAPQ_NAMESPACE:x:$odd" state running name '<b>x</b>' \
    created "$now_ms" nodes 1 node:0 '<img src=x onerror=alert(1)>' >/dev/null
redis_cli ZADD "$MAPQ_NAMESPACE:execs" "$((now_ms - 1))" "$odd" >/dev/null

# ---- (a) the JSON API ------------------------------------------------------------
# api_check EXEC STATUS DONE: prints what differs from a snapshot showing
# EXEC with STATUS, node sq at DONE of 10 with 2 failed (both under one
# error), both agents live; nothing when all is there.
api_check() {
    python3 - "$URL/api/status" "$1" "$2" "$3" "$odd" <<'PY'
import json, sys, urllib.request
url, exec_id, status, done, odd = sys.argv[1:6]
try:
    doc = json.load(urllib.request.urlopen(url, timeout=5))
except Exception as e:
    print("no document: %s" % e); sys.exit(0)
bad = []
def want(what, ok):
    if not ok: bad.append(what)
want("top-level keys", sorted(doc) == ["agents", "executions", "scheduler"])
s = doc.get("scheduler", {})
for k in ("version", "protocol", "namespace", "started_ms", "uptime_s",
          "driving", "refresh_ms", "refreshed_ms", "snapshot_age_ms",
          "redis_time_ms", "redis_error", "limits"):
    want("scheduler." + k, k in s)
want("refreshed", s.get("refreshed_ms") is not None)
want("no redis error", s.get("redis_error") is None)
xs = {x.get("execution"): x for x in doc.get("executions", [])}
x = xs.get(exec_id)
want("the execution is listed", x is not None)
if x is not None:
    for k in ("execution", "workflow", "status", "created_ms", "finished_ms",
              "duration_ms", "age_ms", "nodes_total", "nodes", "failures",
              "failures_read"):
        want("execution." + k, k in x)
    want("workflow status-demo", x.get("workflow") == "status-demo")
    want("status " + status, x.get("status") == status)
    want("created_ms a time", isinstance(x.get("created_ms"), int))
    nodes = x.get("nodes", [])
    want("one node", len(nodes) == 1)
    n = nodes[0] if nodes else {}
    c = n.get("counts", {})
    want("phase counts", sorted(c) == sorted(
        ["queued", "running", "retrying", "succeeded", "cached", "recovered",
         "failed", "timed_out", "aborted"]))
    want("node sq", n.get("name") == "sq")
    want("total 10", n.get("total") == 10)
    want("done " + done, n.get("done") == int(done))
    want("failed 2", c.get("failed") == 2)
    want("succeeded %d" % (int(done) - 2), c.get("succeeded") == int(done) - 2)
    want("counts add up", sum(c.values()) == 10)
    f = x.get("failures", [])
    want("one failure group", len(f) == 1)
    g = f[0] if f else {}
    want("its error", g.get("error") == "exit status 1: boom: <i>bad</i> input")
    want("its count", g.get("count") == 2)
    want("its node", g.get("nodes") == ["sq"])
    want("its examples", [(e.get("node"), e.get("index"))
                          for e in g.get("examples", [])] == [("sq", 1), ("sq", 2)])
    r = x.get("failures_read") or {}
    want("all logs read", r.get("complete") is True)
o = xs.get(odd)
want("the hand-written record is listed", o is not None)
if o is not None:
    want("its name as it is", o.get("workflow") == "<b>x</b>")
    want("its node waiting", [(n.get("name"), n.get("state")) for n in o.get("nodes", [])]
         == [("<img src=x onerror=alert(1)>", "waiting")])
agents = {a.get("name"): a for a in doc.get("agents", [])}
want("both agents", sorted(agents) == ["it-agent-1", "it-agent-2"])
for a in agents.values():
    for k in ("name", "host", "slots", "running", "queues", "interruptible",
              "heartbeat_ms_ago", "cpus", "mem_bytes"):
        want("agent." + k, k in a)
    want("2 slots", a.get("slots") == 2)
    want("queue default", a.get("queues") == ["default"])
    want("not interruptible", a.get("interruptible") is False)
if bad:
    print("; ".join(bad))
PY
}
api_ok() { [ -z "$(api_check "$@")" ]; }

within 60 api_ok "$id" running 8
check "/api/status: the run in progress, 8 of 10 done, 2 failures grouped, both agents" \
    "" "$(api_check "$id" running 8)"
check "/api/status is application/json" 1 \
    "$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).headers["Content-Type"])' \
        "$URL/api/status" | grep -c '^application/json$')"

# ---- (b) the page in headless Chromium ------------------------------------------
# chrome ARGS...: headless Chromium with a profile of the test's own; the
# page's script runs for 5 s of virtual time (two refreshes and more).
chrome() {
    chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$TMP/chromium" --enable-logging=stderr --v=0 \
        --virtual-time-budget=5000 "$@"
}
# dom_facts: the facts status_dom.py reads from a dump of the page.
dom_facts() {
    chrome --dump-dom "$URL/" >"$TMP/dom.html" 2>"$TMP/chromium.log" &&
        python3 "$SRC/tests/integration/status_dom.py" "$TMP/dom.html" \
            "$id" "$odd" >"$TMP/dom.facts"
}
fact() { sed -n "s/^$1=//p" "$TMP/dom.facts"; }
dom_shows() { dom_facts && [ "$(fact node_done)" = "$1" ]; }

within 60 dom_shows 8
check "chromium ran the page's script (rendered at least once)" 1 \
    "$([ "$(fact rendered)" -ge 1 ] 2>/dev/null && echo 1)"
check "no script error on the console" 0 \
    "$(grep -c 'Uncaught' "$TMP/chromium.log")"
check "no error banner" yes "$(fact banner_hidden)"
check "the execution's row is there" yes "$(fact exec_row)"
check "... with its status" running "$(fact exec_status)"
check "... as data-status too" running "$(fact exec_data_status)"
check "... and its workflow" status-demo "$(fact exec_workflow)"
check "node sq: 8 done" 8 "$(fact node_done)"
check "node sq: of 10" 10 "$(fact node_total)"
check "node sq: failed 2 among its counts" "failed 2" "$(fact node_failed)"
check "node sq: its bar has the succeeded, failed and running parts" \
    "succeeded failed running" "$(fact node_bar_segments)"
check "one failure group for the execution" 1 "$(fact failure_groups)"
check "... its error, markup as text" "exit status 1: boom: <i>bad</i> input" \
    "$(fact failure_error)"
check "... no element made of it" 0 "$(fact failure_error_elements)"
check "... its count" "2×" "$(fact failure_count)"
check "... where" "nodes: sq · e.g. sq[1], sq[2]" "$(fact failure_where)"
check "... read from all the logs" 1 \
    "$(fact failure_note | grep -c '^Read from all [0-9]* subtask attempt logs\.$')"
check "the agents table lists both agents" "it-agent-1,it-agent-2" \
    "$(fact agents)"
check "... with their slots" 2 "$(fact agent_slots)"
check "the hand-written record's row is there" yes "$(fact odd_row)"
check "... its name <b>x</b> shown as text" "<b>x</b>" "$(fact odd_workflow)"
check "... its node's name as text" "<img src=x onerror=alert(1)>" \
    "$(fact odd_node)"
check "no <b>, <i> or <img> element made from data" 0 \
    "$(fact markup_elements)"

# ---- (c) screenshots ---------------------------------------------------------------
# png_size FILE: "WIDTHxHEIGHT" of a PNG, or "not a PNG".
png_size() {
    python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read(24)
if b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
    print("not a PNG")
else:
    print("%dx%d" % struct.unpack(">II", b[16:24]))
PY
}
chrome --window-size=1200,900 --screenshot="$TMP/status.png" "$URL/" \
    >/dev/null 2>&1
check "a screenshot, 1200x900" 1200x900 "$(png_size "$TMP/status.png")"
check "... of some substance (over 20 KB)" 1 \
    "$([ "$(stat -c %s "$TMP/status.png")" -gt 20000 ] && echo 1)"
chrome --window-size=390,844 --screenshot="$TMP/status-narrow.png" "$URL/" \
    >/dev/null 2>&1
check "a narrow one, 390x844" 390x844 "$(png_size "$TMP/status-narrow.png")"
cp "$TMP/status.png" "$TMP/status-narrow.png" "$OUT/"
echo "# screenshots: $OUT/status.png $OUT/status-narrow.png"

# ---- the run ends ----------------------------------------------------------------
touch "$TMP/go"
within 60 api_ok "$id" succeeded 10
check "/api/status: the run succeeded, 10 done, the 2 failures still grouped" \
    "" "$(api_check "$id" succeeded 10)"
within 30 dom_shows 10
check "the page shows it: succeeded" succeeded "$(fact exec_status)"
check "... 10 of 10 done" 10/10 "$(fact node_done)/$(fact node_total)"
check "... still the one failure group" "2×" "$(fact failure_count)"
finish
