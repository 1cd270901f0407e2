#!/usr/bin/env bash
# A retry_backoff of a few tens of ms is waited out by the agent that
# parked the retry (its own timer asks for it to be moved to its list),
# not by the next reap: with the scheduler stopped (SIGSTOP) and agents
# that reap only every 30 s, a 50 ms backoff's retry still runs at once.
# Real processes; waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 1 --lease 60s

exists() { [ -e "$1" ]; }

# Attempt 1 waits for the file go, then fails; attempt 2 leaves a mark.
cat >"$TMP/backoff.yaml" <<'EOF'
name: backoff
inputs: {dir: {type: str}}
tasks:
  t:
    inputs: {dir: str}
    output: int
    retries: 1
    retry_backoff: {initial: 50ms}
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        if [ "$MAPQ_ATTEMPT" = 1 ]; then
            touch "$d/first"
            i=0
            while [ ! -e "$d/go" ] && [ $i -lt 1500 ]; do
                sleep 0.02; i=$((i + 1))
            done
            exit 1
        fi
        touch "$d/second"
        echo 7
nodes:
  n: {task: t, with: {dir: $inputs.dir}}
output: $n
EOF
mkdir "$TMP/b"
"$MAPQ" run "$TMP/backoff.yaml" --input dir="$TMP/b" >"$TMP/b.out" \
    2>"$TMP/b.err" &
run_pid=$!
wait_for 20 exists "$TMP/b/first"
# From here on only the agent can move the retry: the scheduler (which
# reaps every 0.5 s while it drives) is stopped, and the agent reaps every
# 30 s.
kill -STOP "$run_pid"
touch "$TMP/b/go"
if wait_for 10 exists "$TMP/b/second"; then ran=yes; else ran=no; fi
kill -CONT "$run_pid"
check "backoff: the agent's timer runs a 50 ms retry with the scheduler stopped" \
    "yes" "$ran"
wait_for 30 exited "$run_pid"
wait "$run_pid"
check "backoff: mapq run ends with exit 0 and the retry's output" "0 7" \
    "$? $(tr -d ' \n' <"$TMP/b.out")"
finish
