#!/usr/bin/env bash
# cache_serialize (SPEC section 5): across concurrent executions only one
# attempt per cache key runs at a time, and the others take its result from
# the cache; when the holder's agent dies, its reservation expires and
# another subtask takes over. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 4 --lease 2s

count() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }

# Each execution maps over ten copies of one value: fifty subtasks of one
# cache key over five executions. An attempt takes a lock directory for a
# second (an overlap is noted), or, with hang, sleeps on (the first time
# only) recording its process group and its agent.
ten() { echo "[$1,$1,$1,$1,$1,$1,$1,$1,$1,$1]"; }
cat >"$TMP/ser.yaml" <<'EOF'
name: ser
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
  hang: {type: bool, default: false}
tasks:
  slow:
    inputs: {x: int, dir: str, hang: bool}
    output: int
    cache: {version: "1"}
    cache_serialize: true
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        echo "$MAPQ_EXECUTION" >>"$d/runs"
        if [ "$MAPQ_IN_hang" = true ] && mkdir "$d/hung" 2>/dev/null; then
            echo $$ >"$d/hung/pgid"; echo $PPID >"$d/hung/agent"
            exec sleep 60
        fi
        mkdir "$d/lock" 2>/dev/null || echo overlap >>"$d/overlaps"
        sleep 1
        rmdir "$d/lock"
        echo $((MAPQ_IN_x * 2))
nodes:
  m: {map: slow, over: {x: $inputs.xs}, with: {dir: $inputs.dir, hang: $inputs.hang}}
output: $m
EOF

# ---- five executions at once: one run in all ---------------------------------
mkdir "$TMP/a"
pids=()
for i in 1 2 3 4 5; do
    "$MAPQ" run "$TMP/ser.yaml" --input xs="$(ten 7)" --input dir="$TMP/a" \
        >"$TMP/a$i.out" 2>"$TMP/a$i.err" &
    pids+=($!)
done
all_ok=yes
for i in 1 2 3 4 5; do
    wait "${pids[$((i - 1))]}" || all_ok=no
    [ "$(cat "$TMP/a$i.out")" = "$(ten 14)" ] || all_ok=no
done
check "five executions of one key: all succeed with the output" "yes" "$all_ok"
check "the key ran once in all" "1" "$(count "$TMP/a/runs")"
check "never two at a time" "0" "$(count "$TMP/a/overlaps")"

# ---- the holder's agent dies -------------------------------------------------------
mkdir "$TMP/b"
pids=()
for i in 1 2 3; do
    "$MAPQ" run "$TMP/ser.yaml" --input xs="$(ten 8)" --input hang=true \
        --input dir="$TMP/b" >"$TMP/b$i.out" 2>"$TMP/b$i.err" &
    pids+=($!)
done
wait_for 20 test -s "$TMP/b/hung/agent"
# The host is lost: its agent and the attempt's processes.
kill -9 "$(cat "$TMP/b/hung/agent")" -- "-$(cat "$TMP/b/hung/pgid")" 2>/dev/null
killed_at=$(date +%s%3N)
all_ok=yes
for i in 1 2 3; do
    wait "${pids[$((i - 1))]}" || all_ok=no
    [ "$(cat "$TMP/b$i.out")" = "$(ten 16)" ] || all_ok=no
done
echo "# all done $(( $(date +%s%3N) - killed_at )) ms after the holder was lost (lease 2 s)"
check "holder lost: every execution still succeeds" "yes" "$all_ok"
check "holder lost: its reservation expired and one other took over" "2" \
    "$(count "$TMP/b/runs")"
check "holder lost: no overlap" "0" "$(count "$TMP/b/overlaps")"
finish
