#!/usr/bin/env bash
# The agent's health file: with --health-file the agent touches it after
# every heartbeat Redis answered and removes it on exit (a stale one left
# by a killed agent goes at startup); `mapq-agent --check-health` exits 0
# while it is fresh and 1 with the reason when it is missing or older than
# --max-age (Redis stopped with SIGSTOP), and healthy again after SIGCONT;
# MAPQ_HEALTH_FILE is the default; a file that cannot be touched is
# reported once. Needs its own Redis (SIGSTOP). Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis --own

HF="$TMP/agent.health"
# health [FILE]: the check with a max-age of 7 s (an idle agent beats every
# 5 s); output in $TMP/check.out.
health() { "$AGENT" --check-health "${1:-$HF}" --max-age 7s >"$TMP/check.out" 2>&1; }
stale() { ! health "$@"; }
mtime() { stat -c %y "$1" 2>/dev/null; }
changed() { [ "$(mtime "$HF")" != "$1" ]; }
# heartbeats N: waits until $HF has been touched N more times (bounded).
heartbeats() {
    local n=$1
    while [ "$n" -gt 0 ]; do
        wait_for 8 changed "$(mtime "$HF")" || return 1
        n=$((n - 1))
    done
}
# run_agent NAME LOG [args]: one agent, its pid in AGENT_PID.
run_agent() {
    local name=$1 log=$2
    shift 2
    "$AGENT" --name "$name" --slots 1 "$@" >>"$TMP/$log" 2>&1 &
    AGENT_PID=$!
    PIDS+=("$AGENT_PID")
}

# --- no agent yet ---
health
check "no file: --check-health exits 1" "1" "$?"
check "no file: says the agent has not reached redis" "yes" \
    "$(grep -q "^mapq-agent: no health file '$HF': the agent has not reached redis yet" "$TMP/check.out" && echo yes || echo no)"
"$AGENT" --max-age 2s >/dev/null 2>&1
check "--max-age without --check-health: usage error" "2" "$?"

# --- a live agent ---
run_agent hc-1 agents.log --health-file "$HF"
A1=$AGENT_PID
wait_for 10 test -f "$HF"
check "the health file appears once redis answers" "yes" "$([ -f "$HF" ] && echo yes || echo no)"
health
check "--check-health: exits 0 while heartbeats go on" "0" "$?"
check "--check-health: says how old the heartbeat is" "yes" \
    "$(grep -qE '^heartbeat [0-9]+ s ago$' "$TMP/check.out" && echo yes || echo no)"
heartbeats 1
check "the file is touched again at the next heartbeat" "0" "$?"

# --- MAPQ_HEALTH_FILE is the default; an untouchable file is said once ---
MAPQ_HEALTH_FILE="$TMP/env.health" run_agent hc-env env.log
wait_for 10 test -f "$TMP/env.health"
check "MAPQ_HEALTH_FILE names the file by default" "yes" \
    "$([ -f "$TMP/env.health" ] && echo yes || echo no)"
run_agent hc-bad bad.log --health-file "$TMP/nodir/agent.health"
wait_for 10 grep -q "cannot touch the health file '$TMP/nodir/agent.health'" "$TMP/bad.log"
heartbeats 2 # of the first agent: the bad one failed twice more
check "(two more heartbeats went by)" "0" "$?"
check "a failed touch is logged once, not every heartbeat" "1" \
    "$(grep -c 'cannot touch the health file' "$TMP/bad.log")"
mkdir "$TMP/nodir"
wait_for 10 test -f "$TMP/nodir/agent.health"
check "it recovers when the file can be made" "1" \
    "$(grep -c "the health file '$TMP/nodir/agent.health' is touched again" "$TMP/bad.log")"

# --- Redis stops answering: no heartbeats, unhealthy; then healthy again ---
kill -STOP "$REDIS_PID"
# A stale file of a killed agent goes when an agent starts on it.
touch -d '1 hour ago' "$TMP/old.health"
run_agent hc-old old.log --health-file "$TMP/old.health"
wait_for 10 test ! -e "$TMP/old.health"
check "a stale file is removed at startup" "no" \
    "$([ -e "$TMP/old.health" ] && echo yes || echo no)"
wait_for 15 stale
health
check "redis stopped: --check-health exits 1 after --max-age" "1" "$?"
check "redis stopped: says how long there was no heartbeat" "yes" \
    "$(grep -qE '^mapq-agent: no heartbeat for [0-9]+ s$' "$TMP/check.out" && echo yes || echo no)"
check "the message is one line" "1" "$(wc -l <"$TMP/check.out")"
kill -CONT "$REDIS_PID"
wait_for 15 health
check "redis answers again: healthy again" "0" "$(health; echo $?)"

# --- SIGTERM: the agent exits 0 and its file is gone ---
kill -TERM "$A1"
wait_for 15 exited "$A1"
wait "$A1"
check "SIGTERM: the agent exits 0" "0" "$?"
check "SIGTERM: the health file is removed" "no" "$([ -e "$HF" ] && echo yes || echo no)"
health
check "after exit: --check-health exits 1" "1" "$?"

finish
