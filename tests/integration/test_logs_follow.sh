#!/usr/bin/env bash
# mapq logs -f EXEC NODE INDEX: a running subtask's stderr shows while it
# runs (before its attempt is recorded), then each attempt's line as it
# ends, through a retry, and the follower exits 0 at the subtask's end;
# every line once. Nobody following: agents write nothing. Ctrl-C exits
# 130 and leaves no follow entry. Bad uses exit 2. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 1
P=$MAPQ_NAMESPACE

cat >"$TMP/live.yaml" <<'EOF'
name: live
inputs:
  xs: {type: "list[int]", default: [1, 2]}
  naps: {type: float, default: 0.4}
tasks:
  talk:
    inputs: {x: int, nap: float}
    output: int
    retries: 1
    command: [sh, -c, 'for i in 1 2 3 4; do echo "line $i of $MAPQ_IN_x attempt $MAPQ_ATTEMPT" >&2; sleep "$MAPQ_IN_nap"; done; [ "$MAPQ_IN_x" = 1 ] && [ "$MAPQ_ATTEMPT" = 1 ] && exit 3; echo "$MAPQ_IN_x"']
nodes:
  n:
    map: talk
    over: {x: $inputs.xs}
    with: {nap: $inputs.naps}
output: $n
EOF

"$MAPQ" run "$TMP/live.yaml" >"$TMP/run.out" 2>"$TMP/run.err" &
run=$!
started() { [ -n "$(exec_of "$TMP/run.err")" ]; }
wait_for 10 started
id=$(exec_of "$TMP/run.err")
"$MAPQ" logs -f "$id" n 0 >"$TMP/f.out" 2>"$TMP/f.err" &
follower=$!
shown() { grep -q 'line 1 of 1 attempt 1' "$TMP/f.out"; }
wait_for 15 shown
logged=$(redis_cli HEXISTS "$P:log:$id" 0/0)
check "the first stderr line shows while the attempt runs (not logged yet)" \
    "yes 0" "$(shown && echo yes || echo no) $logged"
ended() { exited "$follower"; }
wait_for 30 ended
wait "$follower"
check "the follower exits 0 at the subtask's end" 0 "$?"
want="line 1 of 1 attempt 1
line 2 of 1 attempt 1
line 3 of 1 attempt 1
line 4 of 1 attempt 1
n[0] attempt 1: FAILED, retried
  error: exit status 3
line 1 of 1 attempt 2
line 2 of 1 attempt 2
line 3 of 1 attempt 2
line 4 of 1 attempt 2
n[0] attempt 2: SUCCEEDED"
check "both attempts' stderr and lines, each once, in order" "$want" \
    "$(sed -E 's/^(n\[0\] attempt [0-9]+):.*, (FAILED|SUCCEEDED)/\1: \2/' "$TMP/f.out")"
wait "$run"
check "the run succeeds" "[1,2]" "$(tr -d ' \n' <"$TMP/run.out")"
check "the follow entry is gone" 0 "$(redis_cli ZCARD "$P:follow")"
check "nobody followed subtask 1: nothing was sent for it" "" \
    "$(redis_cli --scan --pattern "$P:live:$id:0/1/*")"

# ---- Ctrl-C -------------------------------------------------------------
"$MAPQ" run "$TMP/live.yaml" --input naps=5 >/dev/null 2>"$TMP/run2.err" &
run=$!
started2() { [ -n "$(exec_of "$TMP/run2.err")" ]; }
wait_for 10 started2
id2=$(exec_of "$TMP/run2.err")
"$MAPQ" logs -f "$id2" n 1 >"$TMP/g.out" 2>"$TMP/g.err" &
follower=$!
shown2() { grep -q 'line 1 of 2 attempt 1' "$TMP/g.out"; }
wait_for 15 shown2
check "a second follower shows its subtask" 0 "$(shown2; echo $?)"
check "it is registered in P:follow" 1 "$(redis_cli ZCARD "$P:follow")"
kill -INT "$follower"
wait "$follower"
check "Ctrl-C: exit 130" 130 "$?"
check "Ctrl-C: the follow entry is gone" 0 "$(redis_cli ZCARD "$P:follow")"
"$MAPQ" cancel "$id2" >/dev/null 2>&1
wait "$run"

# ---- bad uses ---------------------------------------------------------------
"$MAPQ" logs -f "$id" n >/dev/null 2>"$TMP/bad.err"
check "-f without INDEX: exit 2" 2 "$?"
"$MAPQ" logs -f "$id" n 0 --json >/dev/null 2>&1
check "-f with --json: exit 2" 2 "$?"
"$MAPQ" logs -f "$id" nope 0 >/dev/null 2>"$TMP/bad.err"
check "-f on a node that is not there: exit 1" 1 "$?"
check "... naming it" 1 "$(grep -c "no node 'nope' in execution $id" "$TMP/bad.err")"
finish
