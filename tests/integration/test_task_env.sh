#!/usr/bin/env bash
# A task never learns the agent's Redis password: not from its own
# environment, not from the agent's /proc files (command line and
# environment), not from ps. Agents get the URL once through
# MAPQ_REDIS_URL and once through --redis. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

SECRET=s3cr3tPw0rd
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
for try in 1 2 3 4 5; do
    PORT=$(free_port)
    redis-server --port "$PORT" --bind 127.0.0.1 --requirepass "$SECRET" \
        --save '' --appendonly no --dir "$TMP" >"$TMP/redis-pw.log" 2>&1 &
    PIDS+=($!)
    wait_for 5 redis-cli -p "$PORT" -a "$SECRET" --no-auth-warning PING && break
done
URL="redis://:$SECRET@127.0.0.1:$PORT"

# The task writes everything it can read of itself and of its agent.
cat >"$TMP/env.yaml" <<'EOF2'
name: snoop
inputs:
  xs: {type: "list[int]", default: [1]}
tasks:
  snoop:
    inputs: {x: int}
    output: str
    output_format: text
    command:
      - sh
      - -c
      - |
        tr '\0' '\n' </proc/self/environ
        env
        echo "agent=$PPID"
        tr '\0' ' ' <"/proc/$PPID/cmdline" 2>&1
        tr '\0' '\n' <"/proc/$PPID/environ" 2>&1
        ps -o args= -p "$PPID" 2>&1
        echo end
nodes:
  n: {map: snoop, over: {x: $inputs.xs}}
output: $n
EOF2

# case NAME: runs the workflow against the agent just started; the task's
# output in $TMP/NAME.out.
run_case() {
    timeout -s KILL 60 env MAPQ_REDIS_URL="$URL" "$MAPQ" run "$TMP/env.yaml" \
        --json >"$TMP/$1.out" 2>"$TMP/$1.err"
    RC=$?
}
count() { grep -c -F -- "$SECRET" "$TMP/$1.out"; }

# 1. The URL in the agent's environment.
MAPQ_REDIS_URL="$URL" "$AGENT" --name env-agent --slots 1 \
    >>"$TMP/agents.log" 2>&1 &
a1=$!
PIDS+=($a1)
run_case envvar
check "env: the run succeeds" "0" "$RC"
check "env: the task saw its agent" "1" "$(grep -c "agent=$a1" "$TMP/envvar.out")"
check "env: the task read to the end" "1" "$(grep -c '"output":\[".*end' "$TMP/envvar.out")"
check "env: no password anywhere the task can read" "0" "$(count envvar)"
# The task's own environment is what it printed before "agent=".
check "env: no MAPQ_REDIS_URL in the task's environment" "0" \
    "$(sed 's/\\n/\n/g' "$TMP/envvar.out" | sed '/agent=/q' | grep -c 'MAPQ_REDIS_URL')"
check "env: ps does not show it" "0" "$(ps -o args= -p "$a1" | grep -c -F "$SECRET")"
check "env: nor the agent's /proc environ" "0" \
    "$(tr '\0' '\n' <"/proc/$a1/environ" | grep -c -F "$SECRET")"
kill -TERM "$a1"; wait "$a1" 2>/dev/null

# 2. The URL on the agent's command line.
env -u MAPQ_REDIS_URL "$AGENT" --name argv-agent --slots 1 --redis "$URL" \
    >>"$TMP/agents.log" 2>&1 &
a2=$!
PIDS+=($a2)
run_case argv
check "argv: the run succeeds" "0" "$RC"
check "argv: the task saw its agent" "1" "$(grep -c "agent=$a2" "$TMP/argv.out")"
check "argv: no password anywhere the task can read" "0" "$(count argv)"
check "argv: ps does not show it" "0" "$(ps -o args= -p "$a2" | grep -c -F "$SECRET")"
check "argv: nor /proc cmdline" "0" \
    "$(tr '\0' ' ' <"/proc/$a2/cmdline" | grep -c -F "$SECRET")"
# Non-dumpable: its /proc files belong to root, so a task running as the
# agent's own (non-root) user cannot open them.
check "argv: the agent is not dumpable" "root" "$(stat -c %U "/proc/$a2/environ")"
check "agent log never shows the password" "0" "$(grep -c -F "$SECRET" "$TMP/agents.log")"
finish
