#!/usr/bin/env bash
# Bad input never crashes anything, and loses nothing (SPEC section 7): a
# missing binary, output that is not JSON or of the wrong type, an output
# over the size cap, foreign and corrupt messages in the queues each become
# one clear error on their own subtask (or are set aside), and everything
# else runs on. An agent whose Redis is unreachable waits for it. Waits are
# bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

# Two agents whose Redis is not there yet; section 5 looks at them.
"$AGENT" --name lonely-1 --slots 1 --redis "unix://$TMP/late.sock" \
    >>"$TMP/lonely.log" 2>&1 &
lonely1=$!
PIDS+=("$lonely1")
"$AGENT" --name lonely-2 --slots 1 --redis "unix://$TMP/late.sock" \
    >>"$TMP/lonely.log" 2>&1 &
lonely2=$!
PIDS+=("$lonely2")

start_agents 2
AGENTS=("${PIDS[@]:2}")
alive() { kill -0 "$1" 2>/dev/null && echo yes || echo no; }
agents_alive() {
    local p out=""
    for p in "${AGENTS[@]}"; do out="$out$(alive "$p") "; done
    echo "${out% }"
}

# variants NAME: from $TMP/NAME.in, writes NAME-ok.yaml (a success ratio
# that tolerates the bad subtasks: the run succeeds with nulls) and
# NAME-all.yaml (every subtask must succeed, run_all: the error lists them).
variants() {
    sed 's/@OPTS@/min_success_ratio: 0.3/' "$TMP/$1.in" >"$TMP/$1-ok.yaml"
    sed 's/@OPTS@/run_all: true/' "$TMP/$1.in" >"$TMP/$1-all.yaml"
}
# run NAME WORKFLOW [args]: runs it (killed after 60 s: 124); status in RC,
# stdout in $TMP/NAME.out, stderr in $TMP/NAME.err.
run() {
    local name=$1 wf=$2
    shift 2
    timeout -s KILL 60 "$MAPQ" run "$TMP/$wf.yaml" "$@" >"$TMP/$name.out" \
        2>"$TMP/$name.err"
    RC=$?
}
# stop_wait PID SECS: waits (bounded) for PID to exit; its exit status in
# RC. One still running then is killed and RC says so.
stop_wait() {
    if ! wait_for "$2" exited "$1"; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        RC="still running after $2 s"
        return 0
    fi
    wait "$1"
    RC=$?
}
failed_line() { grep -c -F "$2" "$TMP/$1.err"; }

# ---- 1. a task binary that does not exist -----------------------------------
cat >"$TMP/missing.yaml" <<'EOF'
name: missing
inputs:
  xs: {type: "list[int]", default: [1, 2]}
tasks:
  t:
    inputs: {x: int}
    output: int
    command: [/nonexistent/prog, "{x}"]
nodes:
  n: {map: t, over: {x: $inputs.xs}}
output: $n
EOF
run missing missing
check "missing binary: mapq run exits 1" "1" "$RC"
# The node fails at the first failure: either index may be the one named.
check "missing binary: one clear error line naming it" "1 2" \
    "$(grep -c -E "node 'n' failed: 0 of 2 subtasks succeeded, 2 needed: [0-9,-]+: command not found: /nonexistent/prog$" "$TMP/missing.err") \
$(wc -l <"$TMP/missing.err" | tr -d ' ')"

cat >"$TMP/onebad.in" <<'EOF'
name: onebad
inputs:
  progs: {type: "list[str]", default: [/bin/echo, /nonexistent/prog, /bin/echo]}
  xs: {type: "list[int]", default: [1, 2, 3]}
tasks:
  t:
    inputs: {prog: str, x: int}
    output: int
    command: ["{prog}", "{x}"]
nodes:
  n: {map: t, over: {prog: $inputs.progs, x: $inputs.xs}, @OPTS@}
output: $n
EOF
variants onebad
run onebad-ok onebad-ok
check "one missing binary: the others succeed, null in its slot" "0 [1,null,3]" \
    "$RC $(cat "$TMP/onebad-ok.out")"
run onebad-all onebad-all
check "one missing binary: the error is on that subtask only" "1 1" \
    "$RC $(failed_line onebad-all "2 of 3 subtasks succeeded, 3 needed: 1: command not found: /nonexistent/prog")"

# ---- 2. output that is not JSON, or of the wrong type -----------------------
cat >"$TMP/output.in" <<'EOF'
name: output
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3]}
tasks:
  t:
    inputs: {x: int}
    output: int
    command:
      - sh
      - -c
      - |
        case $MAPQ_IN_x in
        1) echo 'not json {' ;;
        2) echo '"a string"' ;;
        *) echo "$MAPQ_IN_x" ;;
        esac
nodes:
  n: {map: t, over: {x: $inputs.xs}, @OPTS@}
output: $n
EOF
variants output
run output-ok output-ok
check "bad output: the others succeed, null in the bad slots" "0 [0,null,null,3]" \
    "$RC $(cat "$TMP/output-ok.out")"
run output-all output-all
check "bad output: mapq run exits 1 when all must succeed" "1" "$RC"
check "bad output: not JSON is one clear error on its subtask" "1" \
    "$(failed_line output-all "2 of 4 subtasks succeeded, 4 needed: 1: output is not valid JSON: ")"
check "bad output: the wrong type is one clear error on its subtask" "1" \
    "$(failed_line output-all "; 2: output: expected int, got str")"

# ---- 3. foreign and corrupt messages in the queues --------------------------
# Text, msgpack bytes, another queue's job id, and a well-formed ref and
# first attempt ("<k>/<index>") of an execution that does not exist, on the
# command and plugin lists.
foreign=(garbage $'\x93\x01\xc0\xff' "foreign:job:42" 000000000000/0/0/0/0/0/default/nc
    0/7)
# Written the way a ready list is (the list of an execution, and the
# execution in the turns of its queue), plus a turn of nothing.
for cls in nc np; do
    redis_cli RPUSH "$P:q:default:$cls:000000000000" "${foreign[@]}" >/dev/null
    redis_cli ZADD "$P:qx:default:$cls" 0 000000000000/10 0 garbage >/dev/null
done
redis_cli RPUSH "$P:bell:default:nc" 1 >/dev/null
redis_cli RPUSH "$P:bell:default:np" 1 >/dev/null
empty() {
    [ "$(queue_len default "$1")" = 0 ] &&
        [ "$(redis_cli ZCARD "$P:qx:default:$1")" = 0 ]
}
wait_for 10 empty nc
wait_for 10 empty np
check "foreign messages: taken off both lists" "0 0" \
    "$(queue_len default nc) $(queue_len default np)"
check "foreign messages: nothing was leased for them" "0" \
    "$(lease_count)"
check "foreign messages: the agents still run" "yes yes" "$(agents_alive)"
check "foreign messages: set aside with a log line naming them" "yes" \
    "$(cat "$TMP/agents.log" "$TMP/redis.log" 2>/dev/null |
        grep -q -F '000000000000/0/0/0/0/0/default/nc' && echo yes || echo no)"
run after-foreign output-ok
check "foreign messages: a real run afterwards succeeds" "0 [0,null,null,3]" \
    "$RC $(cat "$TMP/after-foreign.out")"
cp "$SRC/examples/plugin_square.yaml" "$TMP/square.yaml"
run square square
check "foreign messages: a plugin run afterwards succeeds" "0 [1,4,9,16,25]" \
    "$RC $(cat "$TMP/square.out")"

# A corrupt body of a queued subtask of a running execution: the four
# slots run subtasks that wait for the file go, two stay queued, and one of
# those gets a corrupt body.
cat >"$TMP/corrupt.yaml" <<'EOF'
name: corrupt
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5]}
  dir: {type: str}
tasks:
  t:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        touch "$MAPQ_IN_dir/run.$MAPQ_IN_x"
        i=0
        while [ ! -e "$MAPQ_IN_dir/go" ] && [ $i -lt 1500 ]; do
            sleep 0.02; i=$((i + 1))
        done
        echo "$MAPQ_IN_x"
nodes:
  n: {map: t, over: {x: $inputs.xs}, with: {dir: $inputs.dir}, run_all: true}
output: $n
EOF
mkdir "$TMP/c"
"$MAPQ" run "$TMP/corrupt.yaml" --input dir="$TMP/c" >"$TMP/corrupt.out" \
    2>"$TMP/corrupt.err" &
run_pid=$!
running() { [ "$(ls "$TMP/c" | grep -c '^run\.')" -ge 4 ]; }
queued() { [ "$(queue_len default nc)" = 2 ]; }
wait_for 10 running
wait_for 10 queued
# The first queued: a first attempt waits as "<k>/<index>" on the list
# P:q:default:nc:<exec>.
list=$(redis_cli --scan --pattern "$P:q:default:nc:*" | head -n 1)
x=${list##*:}
idx=$(redis_cli LINDEX "$list" 0 | cut -d/ -f2)
check "corrupt body: four subtasks run, two are queued" "4 2" \
    "$(ls "$TMP/c" | grep -c '^run\.') $(queue_len default nc)"
redis_cli HSET "$P:b:$x" "0/$idx" $'\xc1garbage' >/dev/null
touch "$TMP/c/go"
stop_wait "$run_pid" 40
check "corrupt body: mapq run exits 1 (every subtask must succeed)" "1" "$RC"
check "corrupt body: the corrupt subtask never ran" "no" \
    "$([ -e "$TMP/c/run.$idx" ] && echo ran || echo no)"
check "corrupt body: FAILED 'corrupt subtask message' on that subtask only" \
    "5 of 6 subtasks succeeded, 6 needed: $idx: corrupt subtask message" \
    "$(sed -n "s/^mapq: execution $x failed: node 'n' failed: //p" "$TMP/corrupt.err")"
check "corrupt body: the agents still run" "yes yes" "$(agents_alive)"

# ---- 4. a value over the size cap (MAPQ_VALUE_MAX, 16 MiB) ------------------
cat >"$TMP/big.in" <<'EOF'
name: big
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3]}
tasks:
  t:
    inputs: {x: int}
    output: str
    command:
      - sh
      - -c
      - |
        big() { printf '"'; head -c 17000000 /dev/zero | tr '\0' a; printf '"'; }
        case $MAPQ_IN_x in
        1) big ;;
        2) big >"$MAPQ_OUTPUT" ;;
        *) echo "\"s$MAPQ_IN_x\"" ;;
        esac
nodes:
  n: {map: t, over: {x: $inputs.xs}, @OPTS@}
output: $n
EOF
variants big
run big-ok big-ok
check "over the cap: the others succeed, null in the big slots" \
    '0 ["s0",null,null,"s3"]' "$RC $(cat "$TMP/big-ok.out")"
run big-all big-all
check "over the cap: stdout and \$MAPQ_OUTPUT each fail their subtask clearly" "1 1" \
    "$RC $(failed_line big-all "2 of 4 subtasks succeeded, 4 needed: 1-2: output over the size cap (16777216 bytes)")"
check "over the cap: the agents still run" "yes yes" "$(agents_alive)"
# An input over the cap is refused before anything is submitted.
big_json() { printf '"'; head -c 17000000 /dev/zero | tr '\0' a; printf '"'; }
big_json >"$TMP/big.json"
cat >"$TMP/bigin.yaml" <<'EOF'
name: bigin
inputs:
  s: {type: str}
tasks:
  t:
    inputs: {s: str}
    output: int
    command: [echo, "1"]
nodes:
  n: {task: t, with: {s: $inputs.s}}
output: $n
EOF
run bigin bigin --input s=@"$TMP/big.json"
check "over the cap: an input over it exits 2 with one clear line" "2 1 1" \
    "$RC $(wc -l <"$TMP/bigin.err" | tr -d ' ') $(failed_line bigin "value is larger than the 16 MiB cap")"

# ---- 5. an agent whose Redis is unreachable ---------------------------------
# lonely-1 and lonely-2 have had no Redis since the start: they retry with
# backoff and carry on.
check "unreachable redis: the agents did not crash" "yes yes" \
    "$(alive "$lonely1") $(alive "$lonely2")"
kill -TERM "$lonely1"
stop_wait "$lonely1" 5
check "unreachable redis: SIGTERM still stops an agent, exit 0" "0" "$RC"
redis-server --port 0 --unixsocket "$TMP/late.sock" --save '' --appendonly no \
    --dir "$TMP" --dbfilename late.rdb >"$TMP/redis-late.log" 2>&1 &
PIDS+=($!)
connected() { grep -q "mapq-agent\[$lonely2\].*connected to redis" "$TMP/lonely.log"; }
wait_for 10 connected
check "unreachable redis: once it is up, the agent connects" "yes" \
    "$(connected && echo yes || echo no)"
MAPQ_REDIS_URL="unix://$TMP/late.sock" run late output-ok
check "unreachable redis: ...and runs subtasks" "0 [0,null,null,3]" \
    "$RC $(cat "$TMP/late.out")"
finish
