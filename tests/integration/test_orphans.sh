#!/usr/bin/env bash
# Command processes die with their agent: a kill -9'd agent leaves none of
# its subtask's processes running, children of the command included (its
# guardian kills the command's process group), and the subtask runs again
# on another agent once the lease expires, so nothing is lost. Signals
# meant for the agent (INT, TERM, HUP) do not take the guardian away
# first. With the guardian killed first, the command the agent started
# still dies with the agent. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis

# The first attempt starts two background sleeps, writes their pids and
# its own to pids, touches ready and waits on them; a later attempt (ready
# exists) writes again and exits at once. Output: 7.
cat >"$TMP/orphans.yaml" <<'EOF'
name: orphans
inputs:
  xs: {type: "list[int]", default: [0]}
  dir: {type: str}
tasks:
  hold:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        if [ -e "$d/ready" ]; then
            echo "$$" >"$d/again"
            echo 7
            exit 0
        fi
        sleep 300 & echo $! >>"$d/pids"
        sleep 300 & echo $! >>"$d/pids"
        echo $$ >>"$d/pids"
        touch "$d/ready"
        wait
nodes:
  held: {map: hold, over: {x: $inputs.xs}, with: {dir: $inputs.dir}}
output: $held
EOF

# stat_of PID: the fields of /proc/PID/stat after the name (state
# first), or nothing.
stat_of() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    echo "${s##*) }"
}
# token PID: "PID@START", START its start time, so that a later process
# given the same pid is not taken for it.
token() {
    local f
    read -ra f <<<"$(stat_of "$1")"
    echo "$1@${f[19]}"
}
# dead PID|TOKEN: gone, a zombie nobody reaped yet, or (a token) another
# process now.
dead() {
    local pid=${1%@*} f
    read -ra f <<<"$(stat_of "$pid")"
    [ "${#f[@]}" -eq 0 ] || [ "${f[0]}" = Z ] ||
        { [ "$pid" != "$1" ] && [ "${f[19]}" != "${1#*@}" ]; }
}
alive() { ! dead "$1"; }
all_dead() {
    local p
    for p in "$@"; do dead "$p" || return 1; done
}
count_alive() {
    local p n=0
    for p in "$@"; do alive "$p" && n=$((n + 1)); done
    echo "$n"
}
# kill_task_group: kills the group the task's shell leads, while one of
# the task's processes is still the one read (a group id outlives its
# leader only while the group has members: otherwise the pid may be
# another's now).
kill_task_group() {
    [ "$(count_alive "${task[@]}")" -eq 0 ] ||
        kill -KILL -- "-${task[2]%@*}" 2>/dev/null
}
has_lines() { [ "$(cat "$1" 2>/dev/null | wc -l)" -ge "$2" ]; }
# the_guard AGENT: the agent's guardian, its one child that is no command.
the_guard() { pgrep -P "$1" -x mapq-agent; }
# stop_wait PID [SECS]: waits (bounded) for PID; its exit status in RC.
stop_wait() {
    if ! wait_for "${2:-10}" dead "$1"; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        RC="still running after ${2:-10} s"
        return 0
    fi
    wait "$1"
    RC=$?
}

# hold NAME DIR: starts agent NAME (its pid last in PIDS) and a run of the
# workflow with DIR (its pid in run_pid), waits for the first attempt to
# hold its processes and reads their pids into task. The agent is started
# as start_agents does, but with SIGINT at its default: a background job
# of a script inherits it ignored, which would hide a guardian that does
# not ignore it itself.
hold() {
    local i

    mkdir -p "$2"
    env --default-signal=INT "$AGENT" --name "$1" --slots 2 --lease 1s \
        >>"$TMP/agents.log" 2>&1 &
    PIDS+=($!)
    "$MAPQ" run "$TMP/orphans.yaml" --input dir="$2" \
        >"$2.out" 2>"$2.err" &
    run_pid=$!
    wait_for 10 test -e "$2/ready"
    wait_for 5 has_lines "$2/pids" 3
    mapfile -t task < "$2/pids"
    for i in "${!task[@]}"; do task[i]=$(token "${task[i]}"); done
}

D=$TMP/d
hold orphans-a "$D"
a=${PIDS[0]}
check "the subtask's shell and its two sleeps run" "3" "$(count_alive "${task[@]}")"
guard=$(the_guard "$a")
check "the agent has a guardian process" "yes" \
    "$([ -n "$guard" ] && alive "$guard" && echo yes || echo no)"

# Signals meant for the agent: the guardian must still be there to act on
# the kill below. Sent first, they reach it before it can see the agent die.
kill -INT "$guard" 2>/dev/null
kill -TERM "$guard" 2>/dev/null
kill -HUP "$guard" 2>/dev/null
{ # quietly: no "Killed" notice
    kill -KILL "$a"
    wait "$a"
} 2>/dev/null
wait_for 5 all_dead "${task[@]}"
check "kill -9 of the agent: none of the subtask's processes is left" "0" \
    "$(count_alive "${task[@]}")"
# Whatever is left is the test's to remove: the shell leads the group.
kill_task_group
wait_for 5 dead "$guard"
check "the guardian exits once it has killed them" "yes" \
    "$([ -n "$guard" ] && dead "$guard" && echo yes || echo no)"
check "the guardian says what it killed" "1" \
    "$(grep -c "mapq-guard\[$guard\].*agent $a is gone: killed 1 process groups" \
        "$TMP/agents.log")"

# A new agent takes the subtask back when the dead agent's lease expires.
start_agents 1 --name orphans-b --lease 1s
b=${PIDS[1]}
stop_wait "$run_pid" 30
check "the subtask runs again on the new agent and the run succeeds" "0 [7]" \
    "$RC $(cat "$D.out")"
check "...in a second attempt" "yes" "$([ -s "$D/again" ] && echo yes || echo no)"

kill -TERM "$b"
stop_wait "$b"
check "the new agent exits 0 on SIGTERM" "0" "$RC"

# With its guardian gone first, the process the agent started still dies
# with the agent (its parent-death signal); what that process started is
# the guardian's to kill, so here the test's.
D2=$TMP/d2
hold orphans-c "$D2"
c=${PIDS[2]}
guard=$(the_guard "$c")
{ # quietly: no "Killed" notice
    kill -KILL "$guard"
    wait_for 5 dead "$guard"
    kill -KILL "$c"
    wait "$c"
} 2>/dev/null
wait_for 5 dead "${task[2]}"
check "without its guardian, the agent's kill -9 still ends its command" \
    "dead" "$(dead "${task[2]}" && echo dead || echo alive)"
if alive "${task[2]}"; then # what it was, to tell why
    ps -o pid,ppid,pgid,stat,lstart,args -p "${task[2]%@*}" | sed 's/^/# /'
    grep -E '^(State|PPid|SigBlk|SigIgn|SigCgt)' "/proc/${task[2]%@*}/status" |
        sed 's/^/# /'
fi
kill_task_group
start_agents 1 --name orphans-d --lease 1s
d=${PIDS[3]}
stop_wait "$run_pid" 30
check "...and that subtask runs again and the run succeeds" "0 [7]" \
    "$RC $(cat "$D2.out")"
kill -TERM "$d"
stop_wait "$d"
finish
