#!/usr/bin/env bash
# Fair sharing: executions on one queue take its free slots in turns, so a
# small run submitted after a large one is not stuck behind it, and
# --priority weighs the turns. One agent with one slot; every attempt logs
# "<run> <index>" as it starts, so the order file is the order the slot
# served them. Real processes; waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

cat >"$TMP/tagged.yaml" <<'EOF'
name: tagged
inputs:
  xs: {type: "list[int]"}
  tag: {type: str}
  dir: {type: str}
tasks:
  t:
    inputs: {x: int, tag: str, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        echo "$MAPQ_IN_tag $MAPQ_INDEX" >>"$MAPQ_IN_dir/order"
        sleep 0.05
        echo "$MAPQ_IN_x"
nodes:
  n: {map: t, over: {x: $inputs.xs}, with: {tag: $inputs.tag, dir: $inputs.dir}}
output: $n
EOF

# start_run TAG N [ARGS...]: mapq run of tagged.yaml over 0..N-1, in the
# background; its pid in pid_<TAG>.
start_run() {
    local tag=$1 n=$2
    shift 2
    "$MAPQ" run "$TMP/tagged.yaml" --input "xs=[$(seq -s, 0 $((n - 1)))]" \
        --input tag="$tag" --input dir="$TMP" "$@" \
        >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
    eval "pid_$tag=$!"
}
started() { [ "$(grep -c "^$1 " "$TMP/order" 2>/dev/null)" -ge "$2" ]; }
# position TAG: the lines of the order file (1-based) of TAG's attempts.
positions() { grep -n "^$1 " "$TMP/order" | cut -d: -f1 | tr '\n' ' ' | sed 's/ $//'; }

# ---- a small run behind a large one -----------------------------------
"$AGENT" --name fair-1 --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
start_run big 40
wait_for 20 started big 3
start_run small 2
# It arrives once its execution exists (mapq run says its id just before
# it pushes): how long mapq run itself takes to start (slow under ASan)
# is not the queue's doing.
small_created() { [ -n "$(exec_of "$TMP/small.err")" ]; }
wait_for 30 small_created
before=$(grep -c '' "$TMP/order")
wait_for 30 exited "$pid_small"
wait "$pid_small"
check "small run: mapq run exits 0 with its output" "0 [0,1]" \
    "$? $(tr -d ' \n' <"$TMP/small.out")"
after=$(grep -c '^big ' "$TMP/order")
last=$(positions small | awk '{ print $NF }')
check "small run: both its subtasks start within 6 of its arrival" "yes" \
    "$([ $((last - before)) -le 6 ] && echo yes || echo "no: big had $before, small at $(positions small)")"
check "small run: it ends while the large run still has most to go" "yes" \
    "$([ "$after" -le 20 ] && echo yes || echo "no: $after of 40 big started")"
wait_for 30 exited "$pid_big"
wait "$pid_big"
check "large run: mapq run exits 0 with all 40 results" "0 40" \
    "$? $(tr -d '[] \n' <"$TMP/big.out" | tr ',' '\n' | grep -c .)"
kill -TERM "${PIDS[@]}" 2>/dev/null
wait "${PIDS[@]}" 2>/dev/null
PIDS=()

# ---- priority weighs the turns -----------------------------------------
# Both runs queue everything before the one agent starts.
rm -f "$TMP/order"
start_run low 30 --priority 10
start_run high 30 --priority 30
queued_all() { [ "$(queue_len default nc)" = 60 ]; }
wait_for 20 queued_all
check "priority: both runs queued all their subtasks" "60" \
    "$(queue_len default nc)"
"$AGENT" --name fair-2 --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
wait_for 30 started high 30
high_first=$(head -n 20 "$TMP/order" | grep -c '^high ')
check "priority: priority 30 takes about three turns in four" "yes" \
    "$([ "$high_first" -ge 13 ] && [ "$high_first" -le 17 ] && echo yes || echo "no: $high_first of the first 20")"
check "priority: priority 10 is not starved" "yes" \
    "$(head -n 8 "$TMP/order" | grep -q '^low ' && echo yes || echo no)"
wait_for 30 exited "$pid_low"
wait "$pid_low"
check "priority: the low run ends with exit 0" "0" "$?"
wait_for 30 exited "$pid_high"
wait "$pid_high"
check "priority: the high run ends with exit 0" "0" "$?"
check "priority: the queue's turns are empty after" "0" \
    "$(redis_cli EXISTS "$P:qx:default:nc")"
finish
