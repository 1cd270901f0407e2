#!/usr/bin/env bash
# Interruptible agents (SPEC section 4): an --interruptible agent takes only
# interruptible tasks; SIGTERM drains within --grace, then kills the rest and
# hands them back at once without using user retries; a second signal skips
# the grace; after interruptible_failures interruptions a subtask runs only
# on non-interruptible agents. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

P=$MAPQ_NAMESPACE
start_redis

# One task for every case. Each attempt appends its agent's pid (the shell's
# parent) to agent.X. mode wait: touch run.X, then wait for the file go
# (bounded: 30 s). mode sleep: append the shell's pid to pids.X, then sleep
# 60 s unless go exists. Either way the output is 10 * x.
# make_wf NAME INTERRUPTIBLE [NODE SETTINGS]
make_wf() {
    cat >"$TMP/$1.yaml" <<EOF
name: $1
inputs:
  xs: {type: "list[int]", default: [0, 1]}
  dir: {type: str}
  mode: {type: str, default: quick}
tasks:
  work:
    inputs: {x: int, dir: str, mode: str}
    output: int
    retries: 0
    interruptible: $2
    command:
      - sh
      - -c
      - |
        d=\$MAPQ_IN_dir x=\$MAPQ_IN_x
        echo \$PPID >>"\$d/agent.\$x"
        case \$MAPQ_IN_mode in
        wait)
            touch "\$d/run.\$x"
            i=0
            while [ ! -e "\$d/go" ] && [ \$i -lt 1500 ]; do
                sleep 0.02; i=\$((i + 1))
            done ;;
        sleep)
            echo \$\$ >>"\$d/pids.\$x"
            [ -e "\$d/go" ] || exec sleep 60 ;;
        esac
        echo \$((x * 10))
nodes:
  all: {map: work, over: {x: \$inputs.xs}, with: {dir: \$inputs.dir, mode: \$inputs.mode}${3:+, $3}}
output: \$all
EOF
}
make_wf plain false
make_wf spot true
make_wf demote1 true "interruptible_failures: 1"
make_wf demote2 true "interruptible_failures: 2"

# run_bg NAME WF DIR [mapq args]: starts mapq run in the background; its
# pid in RUN_PID, stdout in $TMP/NAME.out, stderr in $TMP/NAME.err.
run_bg() {
    local name=$1 wf=$2 dir=$3
    shift 3
    mkdir -p "$dir"
    "$MAPQ" run "$TMP/$wf.yaml" --input dir="$dir" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    RUN_PID=$!
}
# exec_of NAME: the execution id that run NAME printed.
exec_of() {
    wait_for 10 grep -q '^mapq: execution ' "$TMP/$1.err"
    sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$TMP/$1.err" | head -n 1
}
# agent NAME [args]: starts one agent (2 slots); its pid in AGENT_PID.
agent() {
    local name=$1
    shift
    start_agents 1 --name "$name" "$@"
    AGENT_PID=${PIDS[${#PIDS[@]}-1]}
}
# stop_wait PID [SECS]: waits (bounded) for PID to exit; its exit status in
# RC. One still running then is killed and RC says so. Not in $(...): only
# this shell can wait for its children.
stop_wait() {
    if ! wait_for "${2:-10}" exited "$1"; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        RC="still running after ${2:-10} s"
        return 0
    fi
    wait "$1"
    RC=$?
}
qlen() { queue_len default "$1"; }
qlen_is() { [ "$(qlen "$1")" = "$2" ]; }
claimed_once() { [ -n "$(redis_cli ZSCORE "$P:agents" "$1")" ]; }
stopping() { grep -q "mapq-agent\[$1\].*stopping: no new subtasks" "$TMP/agents.log"; }
count() { ls "$1"/"$2".* 2>/dev/null | wc -l | tr -d ' '; }
has() { [ "$(count "$1" "$2")" -ge "$3" ]; }
all_dead() {
    local f p
    for f in "$1"/pids.*; do
        while read -r p; do
            kill -0 "$p" 2>/dev/null && return 1
        done <"$f"
    done
    return 0
}
any_alive() { ! all_dead "$1"; }
has_lines() { [ "$(cat "$1" 2>/dev/null | wc -l)" -ge "$2" ]; }
ms() { date +%s%3N; }

# ---- 1. an interruptible agent takes only interruptible tasks -------------
run_bg plain plain "$TMP/d1" --input xs='[0]'
plain_pid=$RUN_PID
wait_for 10 qlen_is nc 1
agent spot-a --interruptible
a=$AGENT_PID
wait_for 10 claimed_once spot-a
run_bg spot1 spot "$TMP/d1s"
stop_wait "$RUN_PID" 20
check "only interruptible: the agent runs an interruptible task" "0 [0,10]" \
    "$RC $(cat "$TMP/spot1.out")"
check "only interruptible: ...and ran it itself" "$a $a" \
    "$(cat "$TMP/d1s/agent.0" "$TMP/d1s/agent.1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
check "only interruptible: the plain task is still queued on nc" "1" "$(qlen nc)"
check "only interruptible: the plain task never ran" "0" "$(count "$TMP/d1" agent)"
check "only interruptible: mapq run of the plain task still waits" "yes" \
    "$(kill -0 "$plain_pid" 2>/dev/null && echo yes || echo no)"
agent normal-a
b=$AGENT_PID
stop_wait "$plain_pid" 20
check "only interruptible: a normal agent then runs the plain task" "0 [0] $b" \
    "$RC $(cat "$TMP/plain.out") $(cat "$TMP/d1/agent.0" 2>/dev/null)"
kill -TERM "$a" "$b"
stop_wait "$a"
rc_a=$RC
stop_wait "$b"
check "idle agents exit 0 on SIGTERM" "0 0" "$rc_a $RC"

# ---- 2. SIGTERM: running subtasks finish within the grace ------------------
agent spot-c --interruptible --grace 30s
c=$AGENT_PID
run_bg drain spot "$TMP/d2" --input xs='[0,1,2]' --input mode=wait
drain_pid=$RUN_PID
drain_x=$(exec_of drain)
wait_for 10 has "$TMP/d2" run 2
wait_for 10 qlen_is ic 1
check "drain: two subtasks run, the third is queued" "2 1" \
    "$(count "$TMP/d2" run) $(qlen ic)"
kill -TERM "$c"
wait_for 10 stopping "$c"
# Pushed after the signal: the draining agent must not take it.
run_bg late spot "$TMP/d2l" --input xs='[5]'
late_pid=$RUN_PID
wait_for 10 qlen_is ic 2
touch "$TMP/d2/go"
stop_wait "$c" 40
check "drain: the agent exits 0 once its subtasks finish" "0" "$RC"
check "drain: both finished subtasks are recorded" "2" \
    "$(redis_cli HLEN "$P:r:$drain_x:0")"
check "drain: nothing was claimed after the signal (2 refs still queued)" "2" \
    "$(qlen ic)"
check "drain: the queued and the late subtask never ran" "no no" \
    "$([ -e "$TMP/d2/agent.2" ] && echo ran || echo no) \
$([ -e "$TMP/d2l/agent.5" ] && echo ran || echo no)"
check "drain: nothing is left in flight" "0" "$(lease_count)"
agent normal-c
d=$AGENT_PID
stop_wait "$drain_pid" 20
drain_rc=$RC
stop_wait "$late_pid" 20
check "drain: both runs then succeed on another agent" "0 [0,10,20] 0 [50]" \
    "$drain_rc $(cat "$TMP/drain.out") $RC $(cat "$TMP/late.out")"
check "drain: subtasks 0 and 1 ran once, on the drained agent" "$c $c" \
    "$(cat "$TMP/d2/agent.0" "$TMP/d2/agent.1" | tr '\n' ' ' | sed 's/ $//')"
check "drain: subtask 2 and the late one ran on the new agent" "$d $d" \
    "$(cat "$TMP/d2/agent.2" "$TMP/d2l/agent.5" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$d"
stop_wait "$d"

# ---- 3. SIGTERM: subtasks outlasting the grace are killed, handed back -----
agent spot-e --interruptible --grace 1s
e=$AGENT_PID
run_bg grace spot "$TMP/d3" --input mode=sleep
grace_pid=$RUN_PID
grace_x=$(exec_of grace)
wait_for 10 has "$TMP/d3" pids 2
t0=$(ms)
kill -TERM "$e"
stop_wait "$e" 15
t1=$(ms)
check "grace: the agent exits 0 after killing what outlasted the grace" "0" "$RC"
check "grace: it waited the 1 s grace first" "yes" \
    "$([ $((t1 - t0)) -ge 1000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
check "grace: the running subtasks' processes were killed" "yes" \
    "$(all_dead "$TMP/d3" && echo yes || echo no)"
check "grace: both are handed back at once, as interrupted (u=0 s=1 i=1)" \
    "$grace_x/0/0/0/1/1/default/ic $grace_x/0/1/0/1/1/default/ic" \
    "$(queued_refs default ic | sort | tr '\n' ' ' | sed 's/ $//')"
check "grace: nothing is left in flight (no lease to expire)" "0" \
    "$(lease_count)"
touch "$TMP/d3/go"
t0=$(ms)
agent spot-f --interruptible
f=$AGENT_PID
stop_wait "$grace_pid" 20
check "grace: retries: 0, still succeeds on the next agent" "0 [0,10]" \
    "$RC $(cat "$TMP/grace.out")"
t1=$(ms)
check "grace: ...well before a 30 s lease could expire" "yes" \
    "$([ $((t1 - t0)) -lt 15000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
check "grace: the second attempts ran on the new agent" "$e $f $e $f" \
    "$(cat "$TMP/d3/agent.0" "$TMP/d3/agent.1" | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$f"
stop_wait "$f"

# ---- 4. a second SIGTERM skips the grace -----------------------------------
agent spot-g --interruptible --grace 60s
g=$AGENT_PID
run_bg second spot "$TMP/d4" --input mode=sleep
second_pid=$RUN_PID
second_x=$(exec_of second)
wait_for 10 has "$TMP/d4" pids 2
kill -TERM "$g"
wait_for 10 stopping "$g"
check "second signal: after the first, the agent and its subtasks run on" \
    "yes yes" "$(kill -0 "$g" 2>/dev/null && echo yes || echo no) \
$(any_alive "$TMP/d4" && echo yes || echo no)"
t0=$(ms)
kill -TERM "$g"
stop_wait "$g" 10
t1=$(ms)
check "second signal: the agent exits 0" "0" "$RC"
check "second signal: ...within 5 s, not after the 60 s grace" "yes" \
    "$([ $((t1 - t0)) -lt 5000 ] && echo yes || echo "no ($((t1 - t0)) ms)")"
check "second signal: its subtasks were killed" "yes" \
    "$(all_dead "$TMP/d4" && echo yes || echo no)"
check "second signal: both are handed back as interrupted" \
    "$second_x/0/0/0/1/1/default/ic $second_x/0/1/0/1/1/default/ic" \
    "$(queued_refs default ic | sort | tr '\n' ' ' | sed 's/ $//')"
touch "$TMP/d4/go"
agent normal-h
h=$AGENT_PID
stop_wait "$second_pid" 20
check "second signal: the run then succeeds" "0 [0,10]" "$RC $(cat "$TMP/second.out")"
kill -TERM "$h"
stop_wait "$h"

# ---- 5. interruptible_failures ----------------------------------------------
# interruptible_failures: 1: after one interruption, normal agents only.
agent spot-i --interruptible --grace 100ms
i=$AGENT_PID
run_bg dem1 demote1 "$TMP/d5" --input xs='[0]' --input mode=sleep
dem1_pid=$RUN_PID
dem1_x=$(exec_of dem1)
wait_for 10 has "$TMP/d5" pids 1
kill -TERM "$i"
stop_wait "$i"
check "interruptible_failures 1: the agent exits 0" "0" "$RC"
check "interruptible_failures 1: the ref moved to the normal class" \
    "$dem1_x/0/0/0/1/1/default/nc 0" \
    "$(queued_refs default nc) $(qlen ic)"
agent spot-j --interruptible --grace 100ms
j=$AGENT_PID
wait_for 10 claimed_once spot-j
check "interruptible_failures 1: an interruptible agent leaves it queued" "1 1" \
    "$(qlen nc) $(wc -l <"$TMP/d5/agent.0" | tr -d ' ')"
touch "$TMP/d5/go"
agent normal-k
k=$AGENT_PID
stop_wait "$dem1_pid" 20
check "interruptible_failures 1: a normal agent runs it; the run succeeds" \
    "0 [0] $i $k" "$RC $(cat "$TMP/dem1.out") $(cat "$TMP/d5/agent.0" | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$k"
stop_wait "$k"

# interruptible_failures: 2: the first interruption keeps it interruptible,
# the second demotes it. spot-j is still running and idle.
agent spot-l --interruptible --grace 100ms
l=$AGENT_PID
run_bg dem2 demote2 "$TMP/d6" --input xs='[0]' --input mode=sleep
dem2_pid=$RUN_PID
dem2_x=$(exec_of dem2)
wait_for 10 has "$TMP/d6" pids 1
owner=$(head -n 1 "$TMP/d6/agent.0")
other=$([ "$owner" = "$l" ] && echo "$j" || echo "$l")
kill -TERM "$owner"
stop_wait "$owner"
wait_for 10 has_lines "$TMP/d6/pids.0" 2
check "interruptible_failures 2: after one interruption another interruptible agent takes it" \
    "$owner $other" "$(cat "$TMP/d6/agent.0" | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$other"
stop_wait "$other"
check "interruptible_failures 2: after the second it is on the normal class" \
    "$dem2_x/0/0/0/2/2/default/nc" "$(queued_refs default nc)"
touch "$TMP/d6/go"
agent normal-m
m=$AGENT_PID
stop_wait "$dem2_pid" 20
check "interruptible_failures 2: a normal agent finishes it" "0 [0] $m" \
    "$RC $(cat "$TMP/dem2.out") $(tail -n 1 "$TMP/d6/agent.0")"
kill -TERM "$m"
stop_wait "$m"

# ---- a stopping agent leaves the doorbell to the others -----------------
# An agent with a free slot waits on the doorbells, and Redis gives a ring
# to the agent that has waited longest. n1 claims the subtask and waits
# again before n2 starts, so it is first in line when it stops: it must
# not take the ring of its own hand-back, or n2 sleeps through it (a
# whole doorbell wait, 15 s).
agent normal-n1 --grace 100ms
n1=$AGENT_PID
run_bg bell plain "$TMP/d7" --input xs='[0]' --input mode=sleep
bell_pid=$RUN_PID
wait_for 10 has "$TMP/d7" pids 1
agent normal-n2
n2=$AGENT_PID
wait_for 10 claimed_once normal-n2
touch "$TMP/d7/go" # the next attempt ends at once
kill -TERM "$n1"
stop_wait "$n1"
wait_for 5 has_lines "$TMP/d7/pids.0" 2
check "a stopping agent leaves the ring of its hand-back: another runs it at once" \
    "$n1 $n2" "$(cat "$TMP/d7/agent.0" | tr '\n' ' ' | sed 's/ $//')"
stop_wait "$bell_pid" 20
check "a stopping agent leaves the ring: the run succeeds" "0 [0]" \
    "$RC $(cat "$TMP/bell.out")"
finish
