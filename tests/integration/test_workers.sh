#!/usr/bin/env bash
# Persistent workers (SPEC section 9): a worker: true task keeps one
# process per slot and sends it subtask after subtask as JSON lines. A
# worker that dies, writes garbage or outlives its timeout fails only the
# subtask it was on and is started again; an {"error"} reply fails its
# subtask and the process serves on; stderr between two replies is that
# subtask's log; a kill -9 of the agent leaves no worker running; the
# Python helper and the shell example serve real maps. Real processes;
# waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

exists() { [ -e "$1" ]; }

# A worker written by hand (no helper): it notes its pid when it starts and
# misbehaves on purpose on some first attempts.
cat >"$TMP/worker.py" <<'EOF'
import json, os, sys, time
with open(os.environ["WK_STARTS"], "a") as f:
    f.write("%d\n" % os.getpid())
for line in sys.stdin:
    req = json.loads(line)
    x, attempt = req["inputs"]["x"], req["attempt"]
    sys.stderr.write("log of %d\n" % x)
    sys.stderr.flush()
    if x == 5 and attempt == 1:
        os._exit(3)                        # dies mid-subtask
    if x == 7 and attempt == 1:
        print("this is not a reply", flush=True)
        continue
    if x == 9 and attempt == 1:
        time.sleep(60)                     # past its timeout
    if x == 11:
        print(json.dumps({"error": "eleven is refused"}), flush=True)
        continue
    print(json.dumps({"output": x * x}), flush=True)
EOF
cat >"$TMP/faults.yaml" <<EOF
name: faults
inputs: {xs: {type: "list[int]"}}
tasks:
  sq:
    inputs: {x: int}
    output: int
    worker: true
    retries: 1
    # Room for a worker's start on a loaded machine: the first subtask a
    # new worker takes waits for its interpreter.
    timeout: 6s
    command: [python3, "$TMP/worker.py"]
nodes:
  n: {map: sq, over: {x: \$inputs.xs}, min_successes: 39}
output: \$n
EOF
export WK_STARTS="$TMP/starts"
# The agents (their workers) find the Python helper and the example here.
export PYTHONPATH="$SRC/sdk/python:$SRC/examples/workers"
start_agents 2
N=40
"$MAPQ" run "$TMP/faults.yaml" --input "xs=[$(seq -s, 0 $((N - 1)))]" \
    >"$TMP/faults.out" 2>"$TMP/faults.err"
rc=$?
id=$(exec_of "$TMP/faults.err")
expect=$(for i in $(seq 0 $((N - 1))); do
    if [ "$i" = 11 ]; then printf 'null'; else printf '%d' $((i * i)); fi
    [ "$i" -lt $((N - 1)) ] && printf ','
done)
check "faults: mapq run ends with exit 0" "0" "$rc"
check "faults: every other subtask's output, null for the refused one" \
    "[$expect]" "$(tr -d ' \n' <"$TMP/faults.out")"
# Two agents of two slots: at most 4 processes, plus one per subtask that
# killed its worker (3), never one per subtask (40).
starts=$(wc -l <"$TMP/starts")
check "faults: processes started: one per slot, plus one per lost worker" \
    "yes" "$([ "$starts" -ge 4 ] && [ "$starts" -le 8 ] && echo yes || echo "no: $starts")"
logs_of() { "$MAPQ" logs "$id" n "$1" 2>&1; }
has() { grep -q -F -- "$2" <<<"$1" && echo yes || echo "no: $1"; }
check "faults: a worker that dies fails only its subtask, with its status" \
    "yes" "$(has "$(logs_of 5)" "worker exited with status 3")"
check "faults: a line that is no reply fails only its subtask" "yes" \
    "$(has "$(logs_of 7)" "not a reply")"
check "faults: a worker past its timeout is killed: TIMED_OUT" "yes" \
    "$(has "$(logs_of 9)" "TIMED_OUT")"
check "faults: an error reply is the subtask's error" "yes" \
    "$(has "$(logs_of 11)" "eleven is refused")"
log4=$(logs_of 4)
check "faults: stderr between two replies is that subtask's log" "yes" \
    "$(grep -q 'log of 4' <<<"$log4" && ! grep -q 'log of [0-35-9]' <<<"$log4" && echo yes || echo "no: $log4")"

# ---- the Python helper and the shell example --------------------------------
"$MAPQ" run "$SRC/examples/workers/worker.yaml" >"$TMP/example.out" 2>&1
check "example: worker.yaml through the Python helper" \
    '{"squares":[1,4,9,16,25],"total":55,"big_sum":499999500000}' \
    "$(tail -n 1 "$TMP/example.out" | tr -d ' ')"
cat >"$TMP/shell.yaml" <<EOF
name: shell
inputs: {xs: {type: "list[int]"}}
tasks:
  sq:
    inputs: {x: int}
    output: int
    worker: true
    command: [sh, "$SRC/examples/workers/square_worker.sh"]
nodes:
  n: {map: sq, over: {x: \$inputs.xs}}
output: \$n
EOF
"$MAPQ" run "$TMP/shell.yaml" --input 'xs=[-3, 0, 12]' >"$TMP/shell.out" 2>&1
check "example: the shell worker" "[9,0,144]" \
    "$(tail -n 1 "$TMP/shell.out" | tr -d ' ')"

for p in "${PIDS[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
PIDS=()

# ---- idle workers end -------------------------------------------------------
# After the run, the agent's two workers sit idle; with --worker-idle 1s
# they end soon after, while the agent runs on.
cat >"$TMP/idle.py" <<'EOF'
import json, os, sys
with open(os.environ["WK_IDLE"], "a") as f:
    f.write("%d\n" % os.getpid())
for line in sys.stdin:
    x = json.loads(line)["inputs"]["x"]
    print(json.dumps({"output": x * x}), flush=True)
EOF
cat >"$TMP/idle.yaml" <<EOF
name: idle
inputs: {xs: {type: "list[int]"}}
tasks:
  sq:
    inputs: {x: int}
    output: int
    worker: true
    command: [python3, "$TMP/idle.py"]
nodes:
  n: {map: sq, over: {x: \$inputs.xs}}
output: \$n
EOF
export WK_IDLE="$TMP/idle.pids"
"$AGENT" --name wk-idle --slots 2 --worker-idle 1s >>"$TMP/agents.log" 2>&1 &
a=$!
"$MAPQ" run "$TMP/idle.yaml" --input 'xs=[1, 2, 3, 4, 5, 6]' >"$TMP/idle.out" \
    2>>"$TMP/agents.log"
check "idle: the run through workers succeeds" "0 [1,4,9,16,25,36]" \
    "$? $(tr -d ' \n' <"$TMP/idle.out")"
alive_pids() {
    local p
    for p in $(cat "$WK_IDLE"); do kill -0 "$p" 2>/dev/null && echo "$p"; done
}
idle_gone() { [ -z "$(alive_pids)" ]; }
check "idle: its workers were still there when it ended" "yes" \
    "$([ -n "$(alive_pids)" ] && echo yes || echo no)"
if wait_for 10 idle_gone; then gone=yes; else gone="no: $(alive_pids | tr '\n' ' ')"; fi
check "idle: workers idle past --worker-idle end" "yes" "$gone"
check "idle: the agent runs on" "yes" "$(kill -0 "$a" && echo yes)"
kill -TERM "$a"
wait "$a" 2>/dev/null

# ---- kill -9 of the agent leaves no worker -----------------------------------
cat >"$TMP/hang.py" <<'EOF'
import json, os, sys, time
with open(os.environ["WK_PIDS"], "a") as f:
    f.write("%d\n" % os.getpid())
for line in sys.stdin:
    time.sleep(300)
EOF
cat >"$TMP/hang.yaml" <<EOF
name: hang
inputs: {xs: {type: "list[int]"}}
tasks:
  h:
    inputs: {x: int}
    output: int
    worker: true
    command: [python3, "$TMP/hang.py"]
nodes:
  n: {map: h, over: {x: \$inputs.xs}}
output: \$n
EOF
export WK_PIDS="$TMP/hang.pids"
"$AGENT" --name wk-kill --slots 2 >>"$TMP/agents.log" 2>&1 &
a=$!
"$MAPQ" run "$TMP/hang.yaml" --input 'xs=[1, 2]' >"$TMP/hang.out" 2>"$TMP/hang.err" &
run_pid=$!
two_pids() { [ "$(wc -l <"$WK_PIDS" 2>/dev/null)" = 2 ]; }
wait_for 20 two_pids
kill -9 "$a"
wait "$a" 2>/dev/null
none_left() {
    local p
    for p in $(cat "$WK_PIDS"); do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}
if wait_for 5 none_left; then gone=yes; else gone="no: $(cat "$WK_PIDS" | tr '\n' ' ')"; fi
check "kill -9: the agent's workers do not outlive it" "yes" "$gone"
"$MAPQ" cancel "$(exec_of "$TMP/hang.err")" >/dev/null 2>&1
wait_for 20 exited "$run_pid"
finish
