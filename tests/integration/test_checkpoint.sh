#!/usr/bin/env bash
# Checkpoints (SPEC section 5): whatever an attempt leaves in
# $MAPQ_CHECKPOINT (or saves through the plugin API) reaches the next
# attempt, after a failure, a timeout or an interruption, so a counter that
# must reach 10 gets there across attempts; past the size cap the attempt
# says so. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2


# Each attempt counts on from its checkpoint, `per` steps at most, saving
# after each; it succeeds once the count reaches 10, fails (mode fail) or
# sleeps past its timeout (mode hang) otherwise. Attempts are logged in a
# file, so the test sees where each one started.
cat >"$TMP/counter.yaml" <<'EOF'
name: counter
inputs:
  mode: {type: str, default: fail}
  per: {type: int, default: 3}
  dir: {type: str}
tasks:
  count:
    inputs: {mode: str, per: int, dir: str}
    output: int
    retries: 5
    timeout: 2s
    command:
      - sh
      - -c
      - |
        n=$(cat "$MAPQ_CHECKPOINT" 2>/dev/null || echo 0)
        echo "attempt $MAPQ_ATTEMPT starts at $n" >>"$MAPQ_IN_dir/log"
        i=0
        while [ $i -lt "$MAPQ_IN_per" ] && [ "$n" -lt 10 ]; do
            n=$((n + 1)); i=$((i + 1))
            echo $n >"$MAPQ_CHECKPOINT"
        done
        [ "$n" -ge 10 ] && { echo $n; exit 0; }
        [ "$MAPQ_IN_mode" = hang ] && exec sleep 30
        echo "stopped at $n" >&2
        exit 1
nodes:
  c: {task: count, with: {mode: $inputs.mode, per: $inputs.per, dir: $inputs.dir}}
output: $c
EOF

# ---- after failures ---------------------------------------------------------
mkdir "$TMP/f"
out=$("$MAPQ" run "$TMP/counter.yaml" --input dir="$TMP/f" 2>"$TMP/f.err")
check "failures: the counter reaches 10" "0 10" "$? $out"
check "failures: each attempt resumed where the last stopped" \
    "attempt 1 starts at 0|attempt 2 starts at 3|attempt 3 starts at 6|attempt 4 starts at 9" \
    "$(paste -sd'|' "$TMP/f/log")"
id=$(exec_of "$TMP/f.err")
check "failures: a success leaves no checkpoint behind" "0" \
    "$(redis_cli EXISTS "$MAPQ_NAMESPACE:ck:$id")"

# ---- after timeouts -----------------------------------------------------------
mkdir "$TMP/t"
out=$("$MAPQ" run "$TMP/counter.yaml" --input mode=hang --input per=4 \
    --input dir="$TMP/t" 2>/dev/null)
check "timeouts: the counter reaches 10" "0 10" "$? $out"
check "timeouts: each timed-out attempt's checkpoint was kept" \
    "attempt 1 starts at 0|attempt 2 starts at 4|attempt 3 starts at 8" \
    "$(paste -sd'|' "$TMP/t/log")"

# ---- after an interruption ------------------------------------------------------
# One interruptible agent of its own; SIGTERM with a short grace kills the
# hanging attempt and hands it back, with its checkpoint.
sed 's/^    retries: 5/    retries: 0\n    interruptible: true/' "$TMP/counter.yaml" >"$TMP/intr.yaml"
mkdir "$TMP/i"
"$AGENT" --name it-intr --slots 1 --interruptible --grace 1s --queue intr \
    >>"$TMP/agents.log" 2>&1 &
intr=$!
sed -i 's/^    timeout: 2s/    timeout: 30s\n    queue: intr/' "$TMP/intr.yaml"
"$MAPQ" run "$TMP/intr.yaml" --input mode=hang --input per=5 --input dir="$TMP/i" \
    >"$TMP/i.out" 2>"$TMP/i.err" &
run_pid=$!
started() { grep -q "attempt 1 starts at 0" "$TMP/i/log" 2>/dev/null; }
wait_for 10 started
# The attempt writes its five steps at once, well within the grace.
kill -TERM "$intr"
wait "$intr"
"$AGENT" --name it-intr-2 --slots 1 --interruptible --queue intr \
    >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
wait_for 30 exited "$run_pid"
wait "$run_pid"
check "interruption: retries 0, yet the counter reaches 10" "0 10" "$? $(cat "$TMP/i.out")"
check "interruption: the second attempt resumed from the checkpoint" \
    "attempt 1 starts at 0|attempt 2 starts at 5" "$(paste -sd'|' "$TMP/i/log")"

# ---- plugins ------------------------------------------------------------------------
cat >"$TMP/plugin.yaml" <<'EOF'
name: steps
inputs:
  target: {type: int, default: 10}
tasks:
  step:
    inputs: {target: int}
    output: int
    retries: 20
    plugin: {library: mapq_fault_plugin.so, symbol: step}
nodes:
  s: {task: step, with: {target: $inputs.target}}
output: $s
EOF
out=$("$MAPQ" run "$TMP/plugin.yaml" 2>"$TMP/p.err")
check "plugins: save_checkpoint reaches the next attempt: 10 after 10 attempts" \
    "0 10" "$? $out"

# ---- the size cap -------------------------------------------------------------------
cat >"$TMP/big.yaml" <<'EOF'
name: big
tasks:
  big:
    output: int
    command: [sh, -c, 'head -c 17000000 /dev/zero >"$MAPQ_CHECKPOINT"; echo oops >&2; exit 1']
nodes:
  b: {task: big}
output: $b
EOF
"$MAPQ" run "$TMP/big.yaml" >/dev/null 2>"$TMP/big.err"
check "size cap: the attempt fails and says the checkpoint was over the cap" "1 1" \
    "$? $(grep -c 'checkpoint over the size cap (16777216 bytes), not kept' "$TMP/big.err")"
finish
