#!/usr/bin/env bash
# test_multihost.sh - hosts that fail: no subtask is lost or recorded twice.
#
# Root only: it builds its own hosts with network namespaces (netns.sh
# beside this file), each running the real binaries:
#
#   host     address      runs
#   redis    10.231.0.1   redis-server (port 6379); the operator's mapq CLI
#   sched1   10.231.0.11  mapq scheduler --lease 3s
#   sched2   10.231.0.12  mapq scheduler --lease 3s
#   agent1   10.231.0.21  mapq-agent --slots 2 --lease 3s --metrics
#   agent2   10.231.0.22  mapq-agent --slots 2 --lease 3s --metrics
#   agent3   10.231.0.23  mapq-agent --slots 2 --lease 3s --metrics
#
# all joined by veth pairs to a bridge in a "switch" namespace of their
# own; the subnet 10.231.0.0/24 exists only inside these namespaces, and
# nothing in the root namespace (its links, addresses, routes) is touched.
# A link is cut at its switch port: what the host sends is lost silently.
#
# Each scenario starts fresh schedulers and agents, submits one map of
# 2,000 tiny command subtasks from the Redis host (each appends "index
# agent-pid attempt" to a file of the scenario, then prints its index),
# injects its fault once a fifth (a tenth for the schedulers) of the
# results are in, and waits (bounded polls) for the end:
#
#   cut-link       agent1's link is cut for 12 s (past its 3 s lease and
#                  the 10 s a request to Redis may take) and restored: the
#                  subtasks it held run elsewhere, and the results it sends
#                  once back are refused by fencing (its log says so)
#   kill-agent     agent2's mapq-agent is killed with -9: its leases expire
#                  and its subtasks run elsewhere
#   cut-scheduler  the host of the scheduler driving the execution is cut
#                  past the owner lease (3 s), until the other scheduler
#                  has adopted the execution, 4 s in all: restored while
#                  the new owner drives it (when the run lasts that long),
#                  the old one, whose connection outlived the cut, gets
#                  its late replies, must let the execution go, and push,
#                  record and write nothing more for it
#   cut-scheduler-long
#                  the same, cut for 12 s: the old driver's requests time
#                  out, it reconnects after the execution has ended
#   netem          20 ms of delay on every agent host's link (netem), where
#                  the kernel has netem; the run completes
#
# Each prints "lost N, recorded twice N, recovered in T s" and asserts
# that the execution succeeded with its whole output (lost 0: every index
# is in the output), that no subtask has more than one succeeded attempt
# accepted (recorded twice 0; mapq logs) and one result record, while
# every index ran at least once (the runs file: an attempt whose result
# was refused ran, but was not recorded), and that `mapq status` counts
# all of them succeeded once the failed host is back. "Recovered in" is
# the time from the fault until the system stopped waiting for the failed
# host: until every lease held at the fault had been taken back (so the
# failed agent's subtasks were queued again and taken by the others), or
# until the other scheduler owned the execution. How long after the fault
# the run ended is printed beside it: that also counts the work that was
# left anyway, and the faults last longer than the rest of the run.
#
# Skipped (exit 77) when not root or when namespaces cannot be made (an
# unprivileged container); the netem scenario alone is skipped where the
# kernel has no netem. Needs iproute2, redis-server, redis-cli, python3.
# Env: MAPQ_BUILD_DIR (mapq, mapq-agent), MAPQ_SOURCE_DIR; MH_SUBTASKS
# sets the map's size (2000), MH_SCENARIOS which scenarios run (all, in
# the order above), MH_KEEP=1 keeps the logs.
#
# Most functions are called through wait_for or a trap only:
# shellcheck disable=SC2317
set -u

BUILD=${MAPQ_BUILD_DIR:?MAPQ_BUILD_DIR must name the build directory}
: "${MAPQ_SOURCE_DIR:?MAPQ_SOURCE_DIR must name the source directory}"
MAPQ="$BUILD/mapq"
AGENT="$BUILD/mapq-agent"
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=netns.sh
. "$HERE/netns.sh"

if ! mh_netns_usable; then
    echo "# skip: $MH_WHY"
    exit 77
fi
for tool in redis-server redis-cli python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "# skip: $tool is not installed"
        exit 77
    fi
done

N=${MH_SUBTASKS:-2000}
LEASE=3s         # agents' leases and the schedulers' owner lease
AGENT_CUT_MS=12000 # how long agent1's link stays cut
METRICS_PORT=9464  # each agent's --metrics, on its own namespace's loopback
FAULT_AT=$((N / 5)) # results recorded before a fault is injected
PORT=6379
REDIS_URL="redis://$(mh_addr 1):$PORT"
export MAPQ_NAMESPACE=mh
P=$MAPQ_NAMESPACE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mapq-mh-XXXXXX")
PASSED=0
FAILED=0

# Ends the processes the run started that still run (background jobs of
# this shell, so never a pid that was reused), then whatever is left in the
# hosts' namespaces, and removes them.
cleanup() {
    local rc=$? p
    {
        for p in $(jobs -p); do kill -KILL "$p"; done
        wait
    } 2>/dev/null
    mh_net_down
    if [ -n "${MH_KEEP:-}" ]; then
        echo "# kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it
# succeeds, for SECONDS at most (by the clock: a poll that runs a command
# on another host takes time of its own).
wait_for() {
    local until=$(($(now_ms) + $1 * 1000))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -ge "$until" ] && return 1
        sleep 0.05
    done
}

# shellcheck source=../check.sh
. "$MAPQ_SOURCE_DIR/tests/check.sh"
yes_no() { if "$@"; then echo yes; else echo no; fi; }

# The operator's tools, run on the Redis host.
rcli() { mh_in redis redis-cli -h "$(mh_addr 1)" -p "$PORT" "$@"; }
mq() { mh_in redis "$MAPQ" "$@" --redis "$REDIS_URL"; }

# ---- the hosts ---------------------------------------------------------------
net_up() {
    mh_switch_up &&
        mh_host_add redis 1 &&
        mh_host_add sched1 11 && mh_host_add sched2 12 &&
        mh_host_add agent1 21 && mh_host_add agent2 22 && mh_host_add agent3 23
}
if ! net_up; then
    echo "not ok - the hosts' namespaces and links could be made"
    exit 1
fi

ip netns exec "$(mh_ns redis)" redis-server --bind "$(mh_addr 1)" --port "$PORT" \
    --protected-mode no --save '' --appendonly no --dir "$TMP" \
    >"$TMP/redis.log" 2>&1 &
redis_up() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }
if ! wait_for 10 redis_up; then
    echo "not ok - redis-server answers on its host"
    sed 's/^/#   /' "$TMP/redis.log"
    exit 1
fi
reaches_all() {
    local h
    for h in sched1 sched2 agent1 agent2 agent3; do
        mh_reaches "$h" "$(mh_addr 1)" "$PORT" || return 1
    done
}
check "every host reaches redis at $(mh_addr 1):$PORT" yes "$(yes_no wait_for 5 reaches_all)"
echo "# hosts: redis $(mh_addr 1), sched1-2 $(mh_addr 11)-12, agent1-3 $(mh_addr 21)-23 (namespaces mq*-$MH_ID)"

cat >"$TMP/mark.yaml" <<'EOF'
name: multihost
inputs:
  xs: {type: "list[int]"}
  runs: {type: str}
tasks:
  mark:
    inputs: {x: int, runs: str}
    output: int
    command:
      - sh
      - -c
      - 'echo "$MAPQ_IN_x $PPID $MAPQ_ATTEMPT" >>"$MAPQ_IN_runs"; echo "$MAPQ_IN_x"'
nodes:
  marked: {map: mark, over: {x: $inputs.xs}, with: {runs: $inputs.runs}}
output: $marked
EOF
XS="[$(seq -s, 0 $((N - 1)))]"

# figures STATUS LOGS RUNS N [PID NAME]: from `mapq status --json`,
# `mapq logs --json` and the runs file, prints "lost twice records runs
# distinct lost-attempts" (lost attempts: leases that expired) and, given
# an agent's pid and name, how many of its runs were not recorded as its
# own (their results refused, or never sent).
cat >"$TMP/figures.py" <<'EOF'
import collections, json, sys
try:
    status = json.load(open(sys.argv[1]))
    logs = json.load(open(sys.argv[2]))
except ValueError as e:  # a CLI error: every figure unknown
    print("figures:", e, file=sys.stderr)
    print(*[-1] * 7)
    sys.exit(0)
n = int(sys.argv[4])
out = status.get("output")
if isinstance(out, list):
    lost = n - sum(1 for i, v in enumerate(out[:n]) if v == i)
else:
    lost = n - status["nodes"][0]["counts"]["succeeded"]
ok = collections.Counter(a["index"] for a in logs if a.get("phase") == "succeeded")
twice = sum(1 for c in ok.values() if c > 1)
runs = [l.split() for l in open(sys.argv[3]) if l.strip()]
lost_attempts = sum(1 for a in logs if a.get("phase") == "lost")
line = [lost, twice, sum(ok.values()), len(runs), len({r[0] for r in runs}), lost_attempts]
if len(sys.argv) > 6:
    mine = sum(1 for r in runs if r[1] == sys.argv[5])
    kept = sum(1 for a in logs if a.get("phase") == "succeeded" and a.get("agent") == sys.argv[6])
    line.append(mine - kept)
print(*line)
EOF

# ---- each scenario's processes ------------------------------------------------
declare -A PID_OF # host -> the pid of what it runs in this scenario
DIR=              # the scenario's directory (logs, runs)
FAILED_BEFORE=0   # FAILED when the scenario began: more, show its logs

start_scheduler() {
    ip netns exec "$(mh_ns "$1")" "$MAPQ" scheduler --redis "$REDIS_URL" --lease "$LEASE" \
        >"$DIR/$1.log" 2>&1 &
    PID_OF[$1]=$!
}
start_agent() {
    ip netns exec "$(mh_ns "$1")" "$AGENT" --redis "$REDIS_URL" --name "$1-$SCEN" --slots 2 \
        --lease "$LEASE" --grace 2s --metrics "127.0.0.1:$METRICS_PORT" >"$DIR/$1.log" 2>&1 &
    PID_OF[$1]=$!
}
# refusals_counted: agent1's metric of refused results equals the
# refusals its log shows, and is not 0.
refusals_counted() {
    local m
    m=$(agent_metric agent1 mapq_results_refused_total 2>/dev/null) &&
        [ "$m" != none ] && [ "$m" -gt 0 ] &&
        [ "$m" = "$(grep -c "refused: not this attempt's lease" "$DIR/agent1.log")" ]
}
# agent_metric HOST NAME: the value of metric NAME (no labels) that HOST's
# agent serves, from inside its namespace ("none" when it is not served).
agent_metric() {
    ip netns exec "$(mh_ns "$1")" python3 - "$2" "$METRICS_PORT" <<'PY'
import sys, urllib.request
name, port = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5).read().decode()
vals = [l.split()[1] for l in text.splitlines() if l.startswith(name + " ")]
print(int(float(vals[0])) if vals else "none")
PY
}
connected() { grep -q "connected to redis" "$DIR/$1.log"; }
sched_up() { grep -q "scheduler running" "$DIR/$1.log"; }

# scenario_start NAME: fresh schedulers and agents, connected.
scenario_start() {
    local h
    SCEN=$1
    DIR="$TMP/$SCEN"
    FAILED_BEFORE=$FAILED
    mkdir -p "$DIR"
    : >"$DIR/runs"
    start_scheduler sched1
    start_scheduler sched2
    for h in agent1 agent2 agent3; do start_agent "$h"; done
    for h in agent1 agent2 agent3; do
        wait_for 10 connected "$h" || echo "# $SCEN: $h did not connect"
    done
    for h in sched1 sched2; do
        wait_for 10 sched_up "$h" || echo "# $SCEN: $h did not start"
    done
}

# stop PID: SIGTERM, then SIGKILL after 10 s.
stop() {
    kill -TERM "$1" 2>/dev/null
    wait_for 10 gone "$1" || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
gone() {
    ! kill -0 "$1" 2>/dev/null ||
        [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# scenario_end: stops its processes; shows their logs' tails if a check
# failed.
scenario_end() {
    local h
    for h in "${!PID_OF[@]}"; do stop "${PID_OF[$h]}"; done
    PID_OF=()
    if [ "$FAILED" -gt "$FAILED_BEFORE" ]; then
        for h in sched1 sched2 agent1 agent2 agent3; do
            [ -f "$DIR/$h.log" ] || continue
            echo "# $SCEN: $h log (tail):"
            tail -n 15 "$DIR/$h.log" | sed 's/^/#   /'
        done
    fi
}

# ---- one execution ----------------------------------------------------------------
ID=
submit() {
    ID=$(mq submit "$TMP/mark.yaml" --input "xs=$XS" --input runs="$DIR/runs" 2>"$DIR/submit.err")
    [[ "$ID" =~ ^[0-9a-f]{12}$ ]] || {
        check "$SCEN: mapq submit prints an execution id" "an id" "$ID $(cat "$DIR/submit.err")"
        return 1
    }
}
results() { rcli HLEN "$P:r:$ID:0"; }
has_results() { [ "$(results)" -ge "$1" ]; }
state() { rcli HGET "$P:x:$ID" state; }
ended() { case "$(state)" in succeeded | failed | cancelled) return 0 ;; esac; return 1; }
leased() { leases | awk 'NF { n++ } END { print n + 0 }'; }
none_leased() { [ "$(leased)" = 0 ]; }
# ended_after T_MS: seconds from T_MS to the execution's end, as its
# record says ("never" while it has not ended).
ended_after() {
    local f
    f=$(mq status "$ID" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["finished_ms"] or "")')
    if [ -n "$f" ]; then secs $((f - $1)); else echo never; fi
}

# verdict NAME WHAT_RECOVERED [PID AGENT]: reads the execution back, prints
# the scenario's figures and checks them. WHAT_RECOVERED is printed after
# "lost N, recorded twice N, ". Sets RUNS, LOST_ATTEMPTS and UNRECORDED
# (figures).
verdict() {
    local name=$1 recovered=$2 f lost twice records distinct
    mq status "$ID" --json >"$DIR/status.json" 2>"$DIR/status.err"
    mq logs "$ID" marked --json >"$DIR/logs.json" 2>"$DIR/logs.err"
    f=$(python3 "$TMP/figures.py" "$DIR/status.json" "$DIR/logs.json" "$DIR/runs" "$N" "${@:3}")
    read -r lost twice records RUNS distinct LOST_ATTEMPTS UNRECORDED <<<"$f"
    echo "# $name: lost ${lost:-?}, recorded twice ${twice:-?}, $recovered"
    echo "# $name: $records succeeded attempts recorded, ${LOST_ATTEMPTS:-?} attempts lost (lease expired); $RUNS runs of $distinct subtasks ($((${RUNS:-0} - ${distinct:-0})) ran again)"
    check "$name: the execution succeeded" succeeded "$(state)"
    check "$name: no subtask lost (all $N outputs present and right)" 0 "$lost"
    check "$name: no subtask recorded twice" 0 "$twice"
    check "$name: one result record per subtask" "$N $N" "$(results) $records"
    check "$name: every subtask ran at least once (runs >= records)" "$N yes" \
        "$distinct $(yes_no [ "${RUNS:-0}" -ge "${records:-1}" ])"
    check "$name: nothing left leased" yes "$(yes_no wait_for 5 none_leased)"
    check "$name: mapq status shows the node succeeded: $N succeeded, none queued or running" \
        "succeeded $N 0 0" "$(python3 -c 'import json, sys
n = json.load(open(sys.argv[1]))["nodes"][0]
c = n["counts"]
print(n["state"], c["succeeded"], c["queued"], c["running"])' "$DIR/status.json" 2>&1)"
}

# ---- cut-link: an agent host cut off longer than the lease ----------------------------
# none_held REF...: none of the refs holds a lease any more.
none_held() { ! leases | grep -qxF -f <(printf '%s\n' "$@"); }
# taken_back HOST T0 REF...: waits until none of the refs (what was leased
# when HOST failed at T0) is leased, sets T_TAKEN to when, and checks that
# it took at most the lease + 5 s.
taken_back() {
    local host=$1 t0=$2
    shift 2
    wait_for 20 none_held "$@"
    T_TAKEN=$(now_ms)
    check "$SCEN: $host's subtasks are taken back within the lease + 5 s" yes \
        "$(yes_no [ $((T_TAKEN - t0)) -le 8000 ])"
}
# leases: every ref leased now (the fields of each P:lease:<agent> of
# P:leases), one per line.
leases() {
    rcli EVAL "local out = {}
        for _, a in ipairs(redis.call('ZRANGE', ARGV[1] .. ':leases', 0, -1)) do
            for _, ref in ipairs(redis.call('HKEYS', ARGV[1] .. ':lease:' .. a)) do
                out[#out + 1] = ref
            end
        end
        return out" 0 "$P"
}
# live_agent NAME: NAME's heartbeat is under 2 s old.
live_agent() {
    mq agents --json | python3 -c 'import json, sys
sys.exit(not any(a["name"] == sys.argv[1] and a["heartbeat_ms_ago"] < 2000
                 for a in json.load(sys.stdin)))' "$1"
}

# The link stays cut for 12 s: past the lease (3 s), and past the 10 s
# that a request to Redis may take, so agent1 drops its connection,
# reconnects once back, and sends the results it kept meanwhile.
scenario_cut_link() {
    local t_cut t_back t_taken refused
    local -a held
    scenario_start cut-link
    submit || { scenario_end; return; }
    wait_for 60 has_results "$FAULT_AT"
    mh_cut agent1
    t_cut=$(now_ms)
    # Every lease held now: agent1's, never renewed again, and the
    # others', which end within milliseconds.
    mapfile -t held < <(leases)
    echo "# cut-link: agent1 cut off with $(results) of $N results in"
    taken_back agent1 "$t_cut" "${held[@]}"
    t_taken=$T_TAKEN
    check "cut-link: the execution ends without agent1" yes "$(yes_no wait_for 60 ended)"
    # The rest of the outage.
    sleep "$(awk -v ms=$((AGENT_CUT_MS - ($(now_ms) - t_cut))) 'BEGIN { printf "%.3f", (ms > 0 ? ms : 0) / 1000 }')"
    mh_restore agent1
    t_back=$(now_ms)
    # Back on the network, agent1 sends the results it kept: refused.
    wait_for 15 grep -q "refused: not this attempt's lease" "$DIR/agent1.log"
    refused=$(grep -c "refused: not this attempt's lease" "$DIR/agent1.log")
    verdict cut-link "recovered in $(secs $((t_taken - t_cut))) s (agent1's subtasks taken back; run ended $(ended_after "$t_cut") s after the cut; link cut for $(secs $((t_back - t_cut))) s, lease $LEASE)" \
        "${PID_OF[agent1]}" "agent1-$SCEN"
    echo "# cut-link: agent1 ran $UNRECORDED subtasks whose results were not recorded; it logged $refused refusals"
    check "cut-link: agent1 held leases when cut; they expired (lost attempts logged)" yes \
        "$(yes_no [ "${LOST_ATTEMPTS:-0}" -gt 0 ])"
    check "cut-link: agent1's late results were refused (its log says so)" yes \
        "$(yes_no [ "$refused" -gt 0 ])"
    check "cut-link: agent1's mapq_results_refused_total counts each refusal it logged" yes \
        "$(yes_no wait_for 10 refusals_counted)"
    check "cut-link: agent1 is back (heartbeats again)" yes \
        "$(yes_no wait_for 10 live_agent "agent1-$SCEN")"
    scenario_end
}

# ---- kill-agent: an agent killed with -9 ------------------------------------------------
scenario_kill_agent() {
    local t_kill t_taken victim
    local -a held
    scenario_start kill-agent
    submit || { scenario_end; return; }
    wait_for 60 has_results "$FAULT_AT"
    victim=${PID_OF[agent2]}
    { # quietly: no "Killed" notice
        kill -KILL "$victim"
        t_kill=$(now_ms)
        wait "$victim"
    } 2>/dev/null
    unset 'PID_OF[agent2]'
    mapfile -t held < <(leases)
    echo "# kill-agent: agent2 killed with $(results) of $N results in"
    taken_back agent2 "$t_kill" "${held[@]}"
    t_taken=$T_TAKEN
    check "kill-agent: the execution ends" yes "$(yes_no wait_for 60 ended)"
    verdict kill-agent "recovered in $(secs $((t_taken - t_kill))) s (agent2's subtasks taken back; run ended $(ended_after "$t_kill") s after the kill; lease $LEASE)"
    scenario_end
}

# ---- cut-scheduler: the driving scheduler's host cut off ----------------------------------
# driver: the host whose scheduler owns the execution (its pid is in the
# owner, "host/pid/random").
driver() {
    local pid h
    pid=$(rcli HGET "$P:x:$ID" owner | cut -d/ -f2)
    for h in sched1 sched2; do
        [ "${PID_OF[$h]}" = "$pid" ] && echo "$h"
    done
}
driven_by() { [ "$(driver)" = "$1" ]; }
driven() { [ -n "$(driver)" ]; }
# cut_scheduler NAME CUT_MS: the driving scheduler's link stays cut past
# the owner lease (3 s), until the other scheduler has taken over, and for
# CUT_MS in all. Then, back on the network, the old driver must let the
# execution go and write nothing more to it: the check of `mapq status`'s
# counts comes once it has said so and 3 s more have passed (a write it
# had parked is sent again within 2 s of its reconnect).
cut_scheduler() {
    local name=$1 cut_ms=$2 t_cut t_back t_adopt old new during
    scenario_start "$name"
    submit || { scenario_end; return; }
    wait_for 10 driven
    old=$(driver)
    check "$name: a scheduler drives the execution" yes "$(yes_no [ -n "$old" ])"
    [ -n "$old" ] || { scenario_end; return; }
    new=sched1
    [ "$old" = sched1 ] && new=sched2
    wait_for 60 has_results $((N / 10))
    mh_cut "$old"
    t_cut=$(now_ms)
    echo "# $name: $old (driving) cut off with $(results) of $N results in"
    wait_for 20 driven_by "$new"
    t_adopt=$(now_ms)
    check "$name: $new takes the execution over within the owner lease + 5 s" yes \
        "$(yes_no grep -q "adopting execution $ID" "$DIR/$new.log" && [ $((t_adopt - t_cut)) -le 8000 ])"
    sleep "$(awk -v ms=$((cut_ms - (t_adopt - t_cut))) 'BEGIN { printf "%.3f", (ms > 0 ? ms : 0) / 1000 }')"
    during=$(state)
    mh_restore "$old"
    t_back=$(now_ms)
    echo "# $name: $old restored after $(secs $((t_back - t_cut))) s with $(results) of $N results in, the execution $during"
    check "$name: the execution ends" yes "$(yes_no wait_for 60 ended)"
    # Back on the network, the old driver finds the execution taken.
    wait_for 30 grep -q "execution $ID left" "$DIR/$old.log"
    echo "# $name: $old says: $(grep "execution $ID left" "$DIR/$old.log" | sed 's/.*execution /execution /' | head -n 1)"
    sleep 3 # the old driver's parked writes, if any, land meanwhile
    verdict "$name" "recovered in $(secs $((t_adopt - t_cut))) s ($new took over; run ended $(ended_after "$t_cut") s after the cut; link cut for $(secs $((t_back - t_cut))) s, owner lease $LEASE)"
    check "$name: the old driver lets the execution go once back" 1 \
        "$(grep -c "execution $ID left" "$DIR/$old.log")"
    check "$name: no subtask ran twice (neither driver pushed one again)" "$N" "$RUNS"
    check "$name: only $new records the end" "0 1" \
        "$(grep -c "execution $ID succeeded" "$DIR/$old.log") $(grep -c "execution $ID succeeded" "$DIR/$new.log")"
    check "$name: $new owns it to the end" "$new" "$(driver)"
    scenario_end
}
# Restored soon after the takeover, while the new owner still drives the
# execution (when the run lasts that long): the old driver's connection
# outlives the cut (a request may take 10 s), and it gets the replies it
# was waiting for late.
scenario_cut_scheduler() { cut_scheduler cut-scheduler 4000; }
# Restored after 12 s, once the execution has ended: the old driver's
# requests time out, it drops its connection and reconnects.
scenario_cut_scheduler_long() { cut_scheduler cut-scheduler-long 12000; }

# ---- netem: 20 ms between agents and Redis --------------------------------------------------
# netem on each agent host's eth0 delays what it sends by 20 ms: every
# request of an agent to Redis takes 20 ms longer.
scenario_netem() {
    local h g t0
    for h in agent1 agent2 agent3; do
        mh_netem "$h" 20ms && continue
        echo "# skip: netem: $MH_WHY"
        for g in agent1 agent2 agent3; do mh_netem_off "$g"; done
        return
    done
    scenario_start netem
    t0=$(now_ms)
    if submit; then
        check "netem: the execution ends" yes "$(yes_no wait_for 120 ended)"
        verdict netem "ran in $(ended_after "$t0") s with 20 ms added to every agent's requests"
    fi
    scenario_end
    for h in agent1 agent2 agent3; do mh_netem_off "$h"; done
}

for scen in ${MH_SCENARIOS:-cut-link kill-agent cut-scheduler cut-scheduler-long netem}; do
    case $scen in
        cut-link) scenario_cut_link ;;
        kill-agent) scenario_kill_agent ;;
        cut-scheduler) scenario_cut_scheduler ;;
        cut-scheduler-long) scenario_cut_scheduler_long ;;
        netem) scenario_netem ;;
        *) check "MH_SCENARIOS names known scenarios" known "$scen" ;;
    esac
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] || exit 1
exit 0
