#!/usr/bin/env bash
# The mapq command line keeps the Redis password from other users as
# mapq-agent does: once its options are parsed, neither /proc/<pid>/cmdline
# (so ps) nor /proc/<pid>/environ shows it, whether it came in --redis URL,
# --redis=URL (an earlier --redis it overrides included) or MAPQ_REDIS_URL,
# and the process is not dumpable (its /proc files are root's). A Redis URL
# that cannot be parsed is refused, by mapq and mapq-agent alike, with a
# message that does not show its password. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

SECRET=Zk7longSecretPw
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
MASKED="redis://:$(printf '%s' "$SECRET" | sed 's/./*/g')@127.0.0.1:$PORT"

# in_proc PID FILE: how many times FILE of /proc/PID holds the password;
# "unreadable" when it cannot be read (a non-dumpable process's environ
# needs CAP_SYS_PTRACE), so that a check cannot pass for want of a look.
in_proc() {
    local text
    text=$(tr '\0' '\n' <"/proc/$1/$2") || { echo unreadable; return; }
    printf '%s\n' "$text" | grep -c -F -- "$SECRET"
}
running() { grep -q 'scheduler running' "$1"; }

# 1. mapq scheduler --redis URL, for as long as it runs.
env -u MAPQ_REDIS_URL "$MAPQ" scheduler --redis "$URL" 2>"$TMP/sched1.err" &
s1=$!
PIDS+=($s1)
wait_for 10 running "$TMP/sched1.err"
check "--redis: the scheduler started" "0" "$?"
check "--redis: /proc cmdline does not show the password" "0" "$(in_proc "$s1" cmdline)"
check "--redis: ps does not show it" "0" "$(ps -o args= -p "$s1" | grep -c -F -- "$SECRET")"
check "--redis: ps shows the URL, password hidden" "1" \
    "$(ps -o args= -p "$s1" | grep -c -F -- "--redis $MASKED")"
kill -TERM "$s1"; wait "$s1" 2>/dev/null
check "--redis: never logs it" "0" "$(grep -c -F -- "$SECRET" "$TMP/sched1.err")"

# 2. mapq scheduler with MAPQ_REDIS_URL; as root it runs as an ordinary
# user, whose /proc files become root's only if it is not dumpable.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
else
    AS=()
fi
MAPQ_REDIS_URL="$URL" OTHER=kept "${AS[@]}" "$MAPQ" scheduler \
    2>"$TMP/sched2.err" &
s2=$!
PIDS+=($s2)
wait_for 10 running "$TMP/sched2.err"
check "env: the scheduler started" "0" "$?"
check "env: /proc environ does not show the password" "0" "$(in_proc "$s2" environ)"
check "env: /proc environ shows the URL, password hidden" "1" \
    "$(tr '\0' '\n' <"/proc/$s2/environ" | grep -c -x -F -- "MAPQ_REDIS_URL=$MASKED")"
check "env: other variables stay" "1" \
    "$(tr '\0' '\n' <"/proc/$s2/environ" | grep -c -x -F -- "OTHER=kept")"
check "env: /proc cmdline does not show it" "0" "$(in_proc "$s2" cmdline)"
if [ "${#AS[@]}" -gt 0 ]; then
    check "env: runs as an ordinary user" "65534" "$(ps -o uid= -p "$s2" | tr -d ' ')"
    check "env: not dumpable: its /proc files are root's" "0" \
        "$(stat -c %u "/proc/$s2/environ")"
fi
kill -TERM "$s2"; wait "$s2" 2>/dev/null

# 3. A long mapq run, with an earlier --redis it overrides and the URL as
# --redis=URL: its task waits for a file the test writes once it has
# looked at the run's /proc files.
cat >"$TMP/wait.yaml" <<EOF2
name: waits
inputs:
  xs: {type: "list[int]", default: [1]}
tasks:
  wait:
    inputs: {x: int}
    output: int
    command: [sh, -c, 'touch $TMP/started; i=0; while [ ! -e $TMP/go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done; echo 7']
nodes:
  n: {map: wait, over: {x: \$inputs.xs}}
output: \$n
EOF2
MAPQ_REDIS_URL="$URL" "$AGENT" --name cli-agent --slots 1 \
    >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)
env -u MAPQ_REDIS_URL "$MAPQ" run "$TMP/wait.yaml" \
    --redis "redis://:${SECRET}x@127.0.0.1:1" --redis="$URL" \
    >"$TMP/run.out" 2>"$TMP/run.err" &
r=$!
PIDS+=($r)
wait_for 30 test -e "$TMP/started"
check "run: the task started" "0" "$?"
check "run: /proc cmdline does not show either password" "0" "$(in_proc "$r" cmdline)"
check "run: ps does not show them" "0" "$(ps -o args= -p "$r" | grep -c -F -- "$SECRET")"
check "run: ps shows --redis=URL, password hidden" "1" \
    "$(ps -o args= -p "$r" | grep -c -F -- "--redis=$MASKED")"
touch "$TMP/go"
wait "$r"
check "run: succeeds through the hidden URL" "0" "$?"
check "run: prints the output" "[7]" "$(tr -d ' \n' <"$TMP/run.out")"

# 4. URLs that cannot be parsed: refused without the password, whether
# given as --redis or in MAPQ_REDIS_URL, to mapq or to mapq-agent.
bad_urls=("redis://:$SECRET@host:notaport" "redis://:$SECRET@"
    "redis://u:$SECRET@h:99999" "redis://u:$SECRET" "redis://:$SECRET"
    "redis://a:$SECRET@@h" "rediss://:$SECRET@h")
n=0
for u in "${bad_urls[@]}"; do
    n=$((n + 1))
    timeout -s KILL 20 env -u MAPQ_REDIS_URL "$MAPQ" status \
        0123456789abcdef0123456789abcdef --redis "$u" >/dev/null 2>"$TMP/bad$n.err"
    rc=$?
    check "bad URL $n: mapq refuses it" "1" "$([ "$rc" = 2 ] || [ "$rc" = 3 ]; echo $((1 - $?)))"
    check "bad URL $n: mapq says it is a redis URL" "1" "$(grep -c "redis URL '" "$TMP/bad$n.err")"
    check "bad URL $n: mapq does not show the password" "0" "$(grep -c -F -- "$SECRET" "$TMP/bad$n.err")"
    timeout -s KILL 20 env MAPQ_REDIS_URL="$u" "$MAPQ" cancel \
        0123456789abcdef0123456789abcdef >/dev/null 2>"$TMP/badenv$n.err"
    rc=$?
    check "bad URL $n in MAPQ_REDIS_URL: mapq refuses it" "1" "$([ "$rc" = 2 ] || [ "$rc" = 3 ]; echo $((1 - $?)))"
    check "bad URL $n in MAPQ_REDIS_URL: no password" "0" "$(grep -c -F -- "$SECRET" "$TMP/badenv$n.err")"
    timeout -s KILL 20 env -u MAPQ_REDIS_URL "$AGENT" --redis "$u" \
        >/dev/null 2>"$TMP/badagent$n.err"
    check "bad URL $n: mapq-agent exits 2" "2" "$?"
    check "bad URL $n: mapq-agent says it is a redis URL" "1" "$(grep -c "redis URL '" "$TMP/badagent$n.err")"
    check "bad URL $n: mapq-agent does not show the password" "0" "$(grep -c -F -- "$SECRET" "$TMP/badagent$n.err")"
done
finish
