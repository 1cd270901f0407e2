#!/usr/bin/env bash
# A task never learns the agent's Redis password: not from its own
# environment, not from the agent's /proc files (command line and
# environment), not from ps. Agents get the URL once through
# MAPQ_REDIS_URL (with the password also in another variable) and once
# through --redis; a third agent runs as an unprivileged user, as a task
# of its own user would, where the kernel refuses its /proc environ to
# its tasks because it is not dumpable. A task also starts with no
# signal blocked, though the agent blocks SIGCHLD. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

SECRET=s3cr3tPw0rd
# A redis-server with requirepass on a free TCP port (unix URLs take no
# password); another process may take the port first, so try again.
started=0
for try in 1 2 3 4 5; do
    PORT=$(free_port)
    redis-server --port "$PORT" --bind 127.0.0.1 --requirepass "$SECRET" \
        --save '' --appendonly no --dir "$TMP" >"$TMP/redis-pw.log" 2>&1 &
    PIDS+=($!)
    if wait_for 5 redis-cli -p "$PORT" -a "$SECRET" --no-auth-warning PING; then
        started=1
        break
    fi
done
[ "$started" = 1 ] || { echo "redis-server did not start"; cat "$TMP/redis-pw.log"; exit 1; }
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
        env
        echo "agent=$PPID"
        cat "/proc/$PPID/cmdline" 2>&1 | tr '\0' ' '
        echo
        echo "environ:"
        cat "/proc/$PPID/environ" 2>&1 | tr '\0' '\n'
        ps -o args= -p "$PPID" 2>&1
        echo end
nodes:
  n: {map: snoop, over: {x: $inputs.xs}}
output: $n
EOF2

# run_case NAME: runs the workflow against the agent just started; the
# task's output, one line per line, in $TMP/NAME.out.
run_case() {
    timeout -s KILL 60 env MAPQ_REDIS_URL="$URL" "$MAPQ" run "$TMP/env.yaml" \
        --json >"$TMP/$1.json" 2>"$TMP/$1.err"
    RC=$?
    sed 's/\\n/\n/g' "$TMP/$1.json" >"$TMP/$1.out"
}
count() { grep -c -F -- "$SECRET" "$TMP/$1.out"; }
# The task's own environment is what it printed before "agent=".
own_env() { sed '/^agent=/q' "$TMP/$1.out" | grep -c -E "$2"; }
started_agent() { grep -q "agent $1:" "$TMP/agents.log"; }

# 1. The URL in the agent's environment, the password in another variable
# and, being long, inside the value of a third.
MAPQ_REDIS_URL="$URL" REDISCLI_AUTH="$SECRET" NOTE="pw ${SECRET}, ask ops" \
    "$AGENT" --name env-agent --slots 1 >>"$TMP/agents.log" 2>&1 &
a1=$!
PIDS+=($a1)
wait_for 10 started_agent env-agent
run_case envvar
check "env: the run succeeds" "0" "$RC"
check "env: the task saw its agent" "1" "$(grep -c "^agent=$a1\$" "$TMP/envvar.out")"
# The agent blocks SIGCHLD to read it from a signalfd; its tasks must
# start with no signal blocked. grep reads its own mask, started by the
# agent directly: a shell would unblock every signal when it starts.
cat >"$TMP/mask.yaml" <<'EOF2'
name: mask
inputs:
  xs: {type: "list[int]", default: [1]}
tasks:
  mask:
    inputs: {x: int}
    output: str
    output_format: text
    command: [grep, "^SigBlk:", /proc/self/status]
nodes:
  n: {map: mask, over: {x: $inputs.xs}}
output: $n
EOF2
timeout -s KILL 60 env MAPQ_REDIS_URL="$URL" "$MAPQ" run "$TMP/mask.yaml" \
    --json >"$TMP/mask.json" 2>"$TMP/mask.err"
check "env: the mask task runs" "0" "$?"
check "env: the task starts with no signal blocked" "1" \
    "$(grep -c -F '"output":["SigBlk:\t0000000000000000"]' "$TMP/mask.json")"
check "env: the task read to the end" "1" "$(grep -c 'end"\]' "$TMP/envvar.out")"
check "env: no password anywhere the task can read" "0" "$(count envvar)"
check "env: no MAPQ_REDIS_URL in the task's environment" "0" "$(own_env envvar '^MAPQ_REDIS_URL=')"
check "env: no MAPQ_NAMESPACE in the task's environment" "0" "$(own_env envvar '^MAPQ_NAMESPACE=')"
check "env: nor the variable that held the password" "0" "$(own_env envvar '^REDISCLI_AUTH=')"
check "env: nor one holding a long password in its text" "0" "$(own_env envvar '^NOTE=')"
check "env: the task still gets its own MAPQ_ variables" "2" "$(own_env envvar '^MAPQ_(EXECUTION|NODE)=')"
check "env: the agent says which variable it kept back" "1" \
    "$(grep -c 'not passing REDISCLI_AUTH to tasks' "$TMP/agents.log")"
check "env: and the other" "1" "$(grep -c 'not passing NOTE to tasks' "$TMP/agents.log")"
check "env: ps does not show it" "0" "$(ps -o args= -p "$a1" | grep -c -F "$SECRET")"
# Read first: a count of 0 must not come from a file that could not be read.
environ_hits() {
    local text
    text=$(tr '\0' '\n' <"/proc/$1/environ") || { echo unreadable; return; }
    printf '%s\n' "$text" | grep -c -F "$SECRET"
}
check "env: nor the agent's /proc environ" "0" "$(environ_hits "$a1")"
kill -TERM "$a1"; wait "$a1" 2>/dev/null

# 2. The URL on the agent's command line (with an earlier --redis that
# the later one overrides: neither password may show).
env -u MAPQ_REDIS_URL "$AGENT" --name argv-agent --slots 1 \
    --redis "redis://:${SECRET}x@127.0.0.1:1" --redis="$URL" \
    >>"$TMP/agents.log" 2>&1 &
a2=$!
PIDS+=($a2)
wait_for 10 started_agent argv-agent
run_case argv
check "argv: the run succeeds" "0" "$RC"
check "argv: the task saw its agent" "1" "$(grep -c "^agent=$a2\$" "$TMP/argv.out")"
check "argv: no password anywhere the task can read" "0" "$(count argv)"
# Once from /proc/<agent>/cmdline, once from ps.
check "argv: the task saw the scrubbed command line" "2" \
    "$(grep -c -F -- "--redis=redis://:***********@127.0.0.1:$PORT" "$TMP/argv.out")"
check "argv: ps does not show it" "0" "$(ps -o args= -p "$a2" | grep -c -F "$SECRET")"
check "argv: nor /proc cmdline" "0" \
    "$(tr '\0' ' ' <"/proc/$a2/cmdline" | grep -c -F "$SECRET")"
check "argv: the user name and host stay visible" "1" \
    "$(ps -o args= -p "$a2" | grep -c -F "@127.0.0.1:$PORT")"
kill -TERM "$a2"; wait "$a2" 2>/dev/null

# 3. Not dumpable: its /proc files belong to root, so that a task of the
# agent's own (non-root) user cannot read its environment or memory. As
# root, the agent runs as nobody for this case.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    mkdir "$TMP/nobody" && chown 65534:65534 "$TMP/nobody" && chmod 711 "$TMP"
    AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    AGENT_TMP="$TMP/nobody"
else
    AS=()
    AGENT_TMP="$TMP"
fi
MAPQ_REDIS_URL="$URL" TMPDIR="$AGENT_TMP" "${AS[@]}" "$AGENT" \
    --name user-agent --slots 1 >>"$TMP/agents.log" 2>&1 &
a3=$!
PIDS+=($a3)
wait_for 10 started_agent user-agent
run_case user
uid=$(ps -o uid= -p "$a3" | tr -d ' ')
check "user: the run succeeds" "0" "$RC"
check "user: the agent runs as an ordinary user" "1" "$([ "$uid" != 0 ] && echo 1)"
check "user: its /proc files belong to root" "0" "$(stat -c %u "/proc/$a3/environ")"
check "user: its task cannot read the agent's environ" "1" \
    "$(sed -n '/^environ:/,/^end/p' "$TMP/user.out" | grep -c 'Permission denied')"
check "user: no password anywhere the task can read" "0" "$(count user)"
check "agent log never shows the password" "0" "$(grep -c -F "$SECRET" "$TMP/agents.log")"
# No open file of the agent reaches a task either, least of all its logged-in
# Redis connections: a task could write commands to them.
cat >"$TMP/fds.yaml" <<'EOF2'
name: fds
inputs:
  xs: {type: "list[int]", default: [1]}
tasks:
  fds:
    inputs: {x: int}
    output: str
    output_format: text
    command: [sh, -c, 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && echo "$n $(readlink "$f")"; done; echo end']
nodes:
  n: {map: fds, over: {x: $inputs.xs}}
output: $n
EOF2
env -u MAPQ_REDIS_URL "$AGENT" --name fd-agent --slots 1 --redis "$URL" \
    >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
timeout -s KILL 60 env MAPQ_REDIS_URL="$URL" "$MAPQ" run "$TMP/fds.yaml" \
    >"$TMP/fds.out" 2>"$TMP/fds.err"
check "fds: the run succeeds" "0" "$?"
check "fds: no socket of the agent is open in its task" "0" \
    "$(grep -c socket "$TMP/fds.out")"

# 4. A short password ("pa") is a substring of much that is no secret
# (PATH, HOME, OTHER=xpay): those reach the task. Kept back are only
# variables equal to it or holding it as a URL's password (percent-escaped
# too); the agent warns once that short passwords are matched only so.
# Tasks of their own queue, so that no agent above runs them.
SHORT=pa
SHORT_URL="redis://:$SHORT@127.0.0.1:$PORT"
redis-cli -p "$PORT" -a "$SECRET" --no-auth-warning CONFIG SET requirepass "$SHORT" >/dev/null
sed -e 's/^  snoop:$/  snoop:\n    queue: shortpw/' "$TMP/env.yaml" >"$TMP/short.yaml"
env MAPQ_REDIS_URL="$SHORT_URL" HOME="$TMP/home-pat" PATH="/opt/pa/bin:$PATH" \
    OTHER=xpay PA_AUTH="$SHORT" PA_URL="$SHORT_URL/0" \
    PA_TLS_URL="rediss://default:$SHORT@cache.example:6380" \
    PA_ESCAPED="redis://:%70%61@h" PA_BARE="redis://$SHORT@h" \
    PA_LIST="redis://h1,redis://u:$SHORT@h2" \
    HTTP_USER="http://pa@example.org/" NEAR="redis://:pax@h" \
    "$AGENT" --name short-agent --slots 1 --queue shortpw \
    >"$TMP/short-agent.log" 2>&1 &
a5=$!
PIDS+=($a5)
wait_for 10 grep -q "agent short-agent:" "$TMP/short-agent.log"
timeout -s KILL 60 env MAPQ_REDIS_URL="$SHORT_URL" "$MAPQ" run "$TMP/short.yaml" \
    --json >"$TMP/short.json" 2>"$TMP/short.err"
check "short: the run succeeds" "0" "$?"
sed 's/\\n/\n/g' "$TMP/short.json" >"$TMP/short.out"
check "short: the task saw its agent" "1" "$(grep -c "^agent=$a5\$" "$TMP/short.out")"
for v in "PATH=/opt/pa/bin:" "HOME=$TMP/home-pat\$" "OTHER=xpay\$" \
    "HTTP_USER=" "NEAR="; do
    check "short: the task gets ${v%%=*}" "1" "$(own_env short "^$v")"
done
for v in PA_AUTH PA_URL PA_TLS_URL PA_ESCAPED PA_BARE PA_LIST MAPQ_REDIS_URL; do
    check "short: the task does not get $v" "0" "$(own_env short "^$v=")"
done
for v in PA_AUTH PA_URL PA_TLS_URL PA_ESCAPED PA_BARE PA_LIST; do
    check "short: the agent names $v once" "1" \
        "$(grep -c "not passing $v to tasks" "$TMP/short-agent.log")"
done
check "short: the agent names nothing else" "6" \
    "$(grep -c "not passing" "$TMP/short-agent.log")"
check "short: one warning that short passwords are only matched exactly" "1" \
    "$(grep -c 'redis password is shorter than 8 bytes' "$TMP/short-agent.log")"
check "short: no URL with the password reaches the task" "0" \
    "$(grep -c -E ":(pa|%70%61)@" "$TMP/short.out")"
kill -TERM "$a5"; wait "$a5" 2>/dev/null
redis-cli -p "$PORT" -a "$SHORT" --no-auth-warning CONFIG SET requirepass "$SECRET" >/dev/null
finish
