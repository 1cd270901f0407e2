#!/usr/bin/env bash
# Faults injected into real processes: cancelling an execution and a map
# whose success threshold becomes unreachable. Running subtasks must be
# killed on every agent within seconds; waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 3

# A task that records its pid, then sleeps for a long time; when fail0 is
# true, element 0 fails as soon as the five others are running.
cat >"$TMP/long.yaml" <<'EOF'
name: long
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5]}
  dir: {type: str}
  fail0: {type: bool, default: false}
tasks:
  nap:
    inputs: {x: int, dir: str, fail0: bool}
    output: int
    command:
      - sh
      - -c
      - |
        if [ "$MAPQ_IN_fail0" = true ] && [ "$MAPQ_IN_x" = 0 ]; then
            # Fail once the five others run (bounded: 10 s).
            i=0
            while [ "$(ls "$MAPQ_IN_dir" | grep -c pid)" -lt 5 ] && [ $i -lt 500 ]; do
                sleep 0.02; i=$((i + 1))
            done
            echo "element zero is bad" >&2; exit 1
        fi
        echo $$ >"$MAPQ_IN_dir/pid.$MAPQ_IN_x"
        exec sleep 60
nodes:
  naps: {map: nap, over: {x: $inputs.xs}, with: {dir: $inputs.dir, fail0: $inputs.fail0}}
output: $naps
EOF

count_pids() { ls "$1"/pid.* 2>/dev/null | wc -l; }
# all_dead DIR: every recorded pid has exited.
all_dead() {
    local f
    for f in "$1"/pid.*; do
        kill -0 "$(cat "$f")" 2>/dev/null && return 1
    done
    return 0
}
has_pids() { [ "$(count_pids "$1")" -ge "$2" ]; }

# ---- mapq cancel ----------------------------------------------------------
mkdir "$TMP/c"
"$MAPQ" run "$TMP/long.yaml" --input dir="$TMP/c" >"$TMP/c.out" 2>"$TMP/c.err" &
run_pid=$!
wait_for 10 has_pids "$TMP/c" 6
check "cancel: six subtasks running on three agents" "6" "$(count_pids "$TMP/c")"
exec_id=$(sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$TMP/c.err" | head -n 1)
"$MAPQ" cancel "$exec_id" 2>"$TMP/cancel.err"
check "cancel: mapq cancel exits 0" "0" "$?"
wait_for 2 all_dead "$TMP/c"
check "cancel: running subtasks killed on every agent within 2 s" "yes" \
    "$(all_dead "$TMP/c" && echo yes || echo no)"
wait_for 5 exited "$run_pid"
wait "$run_pid"
check "cancel: mapq run exits 1" "1" "$?"
check "cancel: mapq run says why" "1" \
    "$(grep -c "execution $exec_id failed: cancelled" "$TMP/c.err")"
check "cancel: the execution is recorded cancelled" "cancelled" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$exec_id" state)"
"$MAPQ" cancel "$exec_id" 2>"$TMP/cancel2.err"
check "cancel: again, exit 0 and says it had ended" "0 1" \
    "$? $(grep -c 'had already ended' "$TMP/cancel2.err")"
"$MAPQ" cancel 000000000000 2>"$TMP/cancel3.err"
check "cancel: an unknown execution exits 1" "1" "$?"

# ---- Ctrl-C ------------------------------------------------------------------
# SIGINT to mapq run cancels the execution: exit 130, the record says
# cancelled, and the running subtasks are killed on every agent.
mkdir "$TMP/i"
"$MAPQ" run "$TMP/long.yaml" --input dir="$TMP/i" >"$TMP/i.out" 2>"$TMP/i.err" &
run_pid=$!
wait_for 10 has_pids "$TMP/i" 6
exec_id=$(sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$TMP/i.err" | head -n 1)
kill -INT "$run_pid"
wait_for 10 exited "$run_pid"
wait "$run_pid"
check "Ctrl-C: mapq run exits 130" "130" "$?"
check "Ctrl-C: it says the execution was cancelled" "1" \
    "$(grep -c "^mapq: execution $exec_id cancelled$" "$TMP/i.err")"
check "Ctrl-C: the execution is recorded cancelled" "cancelled" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$exec_id" state)"
wait_for 2 all_dead "$TMP/i"
check "Ctrl-C: running subtasks killed on every agent within 2 s" "yes" \
    "$(all_dead "$TMP/i" && echo yes || echo no)"

# ---- early failure ---------------------------------------------------------
# Element 0 fails; with the default ratio of 1 the node cannot succeed, so
# it fails at once and the five sleepers are killed.
mkdir "$TMP/f"
"$MAPQ" run "$TMP/long.yaml" --input dir="$TMP/f" --input fail0=true \
    >"$TMP/f.out" 2>"$TMP/f.err" &
run_pid=$!
wait_for 10 exited "$run_pid"
wait "$run_pid"
check "early failure: mapq run exits 1 without waiting for the others" "1" "$?"
check "early failure: the five others were running" "5" "$(count_pids "$TMP/f")"
check "early failure: the error names the failed index and its stderr" "1" \
    "$(grep -c "0 of 6 subtasks succeeded, 6 needed: 0: exit status 1: element zero is bad" "$TMP/f.err")"
wait_for 2 all_dead "$TMP/f"
check "early failure: running subtasks killed on every agent within 2 s" "yes" \
    "$(all_dead "$TMP/f" && echo yes || echo no)"
# aborted EXEC: how many result records of node 0 say ABORTED (phase 8).
aborted() {
    redis_cli EVAL "local n = 0
        for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
            if cmsgpack.unpack(v).p == 8 then n = n + 1 end
        end
        return n" 1 "$MAPQ_NAMESPACE:r:$1:0"
}
aborted_are() { [ "$(aborted "$1")" = "$2" ]; }
exec_id=$(sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$TMP/f.err" | head -n 1)
wait_for 5 aborted_are "$exec_id" 5
check "early failure: the killed subtasks are recorded ABORTED" "5" "$(aborted "$exec_id")"
finish
