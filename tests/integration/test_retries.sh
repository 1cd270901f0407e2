#!/usr/bin/env bash
# Retries, timeouts, system retries and success thresholds (SPEC sections 3
# and 4), on real agents: attempts are counted by the tasks themselves in
# files, phases are read back from the result records on Redis. Waits are
# bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 3

# exited PID: gone, or a zombie (orphans are reparented to PID 1, which may
# reap them late; a zombie has been killed all the same).
alive() { ! exited "$1"; }
now_ms() { date +%s%3N; }
# lines FILE: the file's lines joined by spaces ("" when missing).
lines() { [ -f "$1" ] && tr '\n' ' ' <"$1" | sed 's/ $//'; }
# records EXEC K FIELD: FIELD of every result record of node K, decoded
# from msgpack by Redis itself, sorted and joined by spaces.
records() {
    redis_cli EVAL "local out = {}
        for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
            out[#out + 1] = tostring(cmsgpack.unpack(v)[ARGV[1]])
        end
        table.sort(out)
        return out" 1 "$MAPQ_NAMESPACE:r:$1:$2" "$3" | tr '\n' ' ' | sed 's/ $//'
}
# node_status EXEC NODE: "STATE TOTAL timed_out=N" of NODE, from mapq status
# --json.
node_status() {
    "$MAPQ" status "$1" --json 2>/dev/null | python3 -c '
import json, sys
n = [n for n in json.load(sys.stdin)["nodes"] if n["name"] == sys.argv[1]][0]
print(n["state"], n["total"], "timed_out=%d" % n["counts"]["timed_out"])' "$2" 2>&1
}

# ---- retries ----------------------------------------------------------------
# Each attempt appends $MAPQ_ATTEMPT to a file of its element; the first
# `fails` attempts of every element fail.
cat >"$TMP/retry.yaml" <<'EOF'
name: retry
inputs:
  xs: {type: "list[int]", default: [1, 2]}
  dir: {type: str}
  fails: {type: int, default: 2}
tasks:
  flaky:
    inputs: {x: int, dir: str, fails: int}
    output: int
    retries: 2
    command:
      - sh
      - -c
      - |
        f="$MAPQ_IN_dir/att.$MAPQ_IN_x"
        echo "$MAPQ_ATTEMPT" >>"$f"
        n=$(wc -l <"$f")
        if [ "$n" -le "$MAPQ_IN_fails" ]; then
            echo "attempt $n failed" >&2
            exit 1
        fi
        echo $((MAPQ_IN_x * 10))
nodes:
  tries: {map: flaky, over: {x: $inputs.xs}, with: {dir: $inputs.dir, fails: $inputs.fails}}
output: $tries
EOF

mkdir "$TMP/r2"
out=$("$MAPQ" run "$TMP/retry.yaml" --input dir="$TMP/r2" 2>"$TMP/r2.err")
rc=$?
check "retries 2: two failed attempts, the third succeeds (exit 0)" "0" "$rc"
check "retries 2: the output" "[10,20]" "$out"
check "retries 2: exactly 3 attempts of element 0, numbered 1 2 3" "1 2 3" \
    "$(lines "$TMP/r2/att.1")"
check "retries 2: exactly 3 attempts of element 1, numbered 1 2 3" "1 2 3" \
    "$(lines "$TMP/r2/att.2")"
check "retries 2: both recorded SUCCEEDED" "3 3" "$(records "$(exec_of "$TMP/r2.err")" 0 p)"

# The node overrides the task's retries with 1; run_all lets both elements
# use their whole budget, so the counts are exact.
sed 's/fails: $inputs.fails}}/fails: $inputs.fails}, retries: 1, run_all: true}/' \
    "$TMP/retry.yaml" >"$TMP/retry1.yaml"
mkdir "$TMP/r1"
out=$("$MAPQ" run "$TMP/retry1.yaml" --input dir="$TMP/r1" 2>"$TMP/r1.err")
rc=$?
id=$(exec_of "$TMP/r1.err")
check "retries 1: the same task fails, mapq run exits 1" "1" "$rc"
check "retries 1: nothing on stdout" "" "$out"
check "retries 1: the error summarises both indices with the stderr tail" "1" \
    "$(grep -c "^mapq: execution $id failed: node 'tries' failed: 0 of 2 subtasks succeeded, 2 needed: 0-1: exit status 1: attempt 2 failed$" "$TMP/r1.err")"
check "retries 1: exactly 2 attempts of element 0" "1 2" "$(lines "$TMP/r1/att.1")"
check "retries 1: exactly 2 attempts of element 1" "1 2" "$(lines "$TMP/r1/att.2")"
check "retries 1: recorded FAILED (phase 6) at attempt 2" "6 6/2 2" \
    "$(records "$id" 0 p)/$(records "$id" 0 a)"

# ---- timeout ----------------------------------------------------------------
# The first attempt starts a background child in its process group, records
# both pids, then sleeps past its timeout; later attempts answer at once.
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  dir: {type: str}
tasks:
  nap:
    inputs: {dir: str}
    output: int
    timeout: 1s
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        echo "$MAPQ_ATTEMPT" >>"$d/attempts"
        if [ "$(wc -l <"$d/attempts")" -eq 1 ]; then
            sleep 60 &
            echo "$! $$" >"$d/pids.tmp"
            mv "$d/pids.tmp" "$d/pids"
            sleep 30
        fi
        echo 42
nodes:
  naps: {task: nap, with: {dir: $inputs.dir}}
output: $naps
EOF

# timed_run NAME FILE: runs FILE in the background and checks that the
# first attempt's whole process group dies within 2 s after its 1 s timeout.
timed_run() {
    local name=$1 t0 t1 child parent
    mkdir "$TMP/$name"
    "$MAPQ" run "$2" --input dir="$TMP/$name" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    run_pid=$!
    wait_for 20 test -s "$TMP/$name/pids"
    t0=$(now_ms)
    read -r child parent <"$TMP/$name/pids"
    check "timeout ($name): the attempt's background child was running" "yes" \
        "$(alive "${child:-0}" && echo yes || echo no)"
    wait_for 3 exited "${child:-0}"
    t1=$(now_ms)
    check "timeout ($name): background child killed with the group, < 3 s after start" \
        "yes" "$(exited "${child:-0}" && [ $((t1 - t0)) -lt 3000 ] && echo yes || echo no)"
    check "timeout ($name): the attempt's shell killed too" "yes" \
        "$(exited "${parent:-0}" && echo yes || echo no)"
    echo "# $name: group dead $((t1 - t0)) ms after the attempt was seen running"
    wait_for 20 exited "$run_pid"
    wait "$run_pid"
    run_rc=$?
}

timed_run t0 "$TMP/slow.yaml"
id=$(exec_of "$TMP/t0.err")
check "timeout, retries 0: mapq run exits 1" "1" "$run_rc"
check "timeout, retries 0: the error says it timed out" "1" \
    "$(grep -c "^mapq: execution $id failed: node 'naps' failed: timed out after 1s$" "$TMP/t0.err")"
check "timeout, retries 0: one attempt only (no system retry)" "1" "$(lines "$TMP/t0/attempts")"
check "timeout, retries 0: recorded TIMED_OUT (phase 7)" "7" "$(records "$id" 0 p)"
check "timeout, retries 0: mapq status counts it TIMED_OUT" "failed 1 timed_out=1" \
    "$(node_status "$id" naps)"

sed 's/with: {dir: $inputs.dir}}/with: {dir: $inputs.dir}, retries: 1}/' \
    "$TMP/slow.yaml" >"$TMP/slow1.yaml"
timed_run t1 "$TMP/slow1.yaml"
check "timeout, retries 1: the timeout used the user retry, attempt 2 succeeds" \
    "0 42" "$run_rc $(cat "$TMP/t1.out")"
check "timeout, retries 1: exactly 2 attempts" "1 2" "$(lines "$TMP/t1/attempts")"

# ---- system retries -----------------------------------------------------------
# Two agents on a queue of their own with a 2 s lease. The first attempt
# records its agent's pid (its parent) and sleeps; the test kills that agent
# with SIGKILL. retries is 0, so only the system budget can run it again.
for i in 1 2; do
    "$AGENT" --name "it-lossy-$i" --slots 1 --queue lossy --lease 2s \
        >>"$TMP/agents.log" 2>&1 &
    PIDS+=($!)
done
lossy_pids=" ${PIDS[*]: -2} "
cat >"$TMP/lost.yaml" <<'EOF'
name: lost
inputs:
  dir: {type: str}
tasks:
  once:
    inputs: {dir: str}
    output: int
    retries: 0
    queue: lossy
    command:
      - sh
      - -c
      - |
        d=$MAPQ_IN_dir
        echo "$MAPQ_ATTEMPT" >>"$d/attempts"
        if [ "$(wc -l <"$d/attempts")" -eq 1 ]; then
            echo "$PPID $$" >"$d/first.tmp"
            mv "$d/first.tmp" "$d/first"
            exec sleep 60
        fi
        echo 7
nodes:
  one: {task: once, with: {dir: $inputs.dir}, system_retries: 1}
output: $one
EOF
mkdir "$TMP/s"
"$MAPQ" run "$TMP/lost.yaml" --input dir="$TMP/s" >"$TMP/s.out" 2>"$TMP/s.err" &
run_pid=$!
wait_for 20 test -s "$TMP/s/first"
read -r victim orphan <"$TMP/s/first"
check "system retries: the first attempt runs on a lossy agent" "yes" \
    "$(case "$lossy_pids" in *" ${victim:-x} "*) echo yes ;; *) echo no ;; esac)"
kill -KILL "${victim:-0}" 2>/dev/null
wait "${victim:-0}" 2>/dev/null # reaped quietly: no "Killed" notice
kill -KILL "${orphan:-0}" 2>/dev/null # the dead agent's task lives on: clean up
wait_for 30 exited "$run_pid"
wait "$run_pid"
rc=$?
check "system retries: lost with retries 0, still succeeds on the other agent" \
    "0 7" "$rc $(cat "$TMP/s.out")"
check "system retries: two attempts; the second is attempt 2" "1 2" \
    "$(lines "$TMP/s/attempts")"

# ---- thresholds -----------------------------------------------------------------
# Elements in the list bad fail with "boom" (exit 1), in odd with "other"
# (exit 2). With hold, the others wait until a failure is recorded, then
# 2 s more: long enough that an abort would kill them.
# thresh_yaml FILE NODE_OPTIONS
thresh_yaml() {
    cat >"$1" <<EOF
name: thresh
inputs:
  xs: {type: "list[int]"}
  bad: {type: "list[int]", default: []}
  odd: {type: "list[int]", default: []}
  hold: {type: bool, default: false}
  rcli: {type: str, default: ""}
  rkey: {type: str, default: ""}
  dir: {type: str}
tasks:
  val:
    inputs: {x: int, bad: "list[int]", odd: "list[int]", hold: bool, rcli: str, rkey: str, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        case ",\$(echo "\$MAPQ_IN_bad" | tr -d '[] ')," in *",\$MAPQ_IN_x,"*)
            echo "boom" >&2; exit 1 ;;
        esac
        case ",\$(echo "\$MAPQ_IN_odd" | tr -d '[] ')," in *",\$MAPQ_IN_x,"*)
            echo "other" >&2; exit 2 ;;
        esac
        if [ "\$MAPQ_IN_hold" = true ]; then
            i=0
            while [ "\$(redis-cli \$MAPQ_IN_rcli HLEN "\$MAPQ_IN_rkey:\$MAPQ_EXECUTION:0")" -lt 1 ] &&
                [ \$i -lt 500 ]; do
                sleep 0.02; i=\$((i + 1))
            done
            sleep 2
        fi
        touch "\$MAPQ_IN_dir/done.\$MAPQ_IN_x"
        echo \$((MAPQ_IN_x * 10))
  after:
    inputs: {vals: "list[int?]", dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        touch "\$MAPQ_IN_dir/after"
        python3 -c 'import json,sys; print(sum(v for v in json.load(sys.stdin)["vals"] if v is not None))'
nodes:
  vals: {map: val, over: {x: \$inputs.xs}, with: {bad: \$inputs.bad, odd: \$inputs.odd, hold: \$inputs.hold, rcli: \$inputs.rcli, rkey: \$inputs.rkey, dir: \$inputs.dir}$2}
  total: {task: after, with: {vals: \$vals, dir: \$inputs.dir}}
output: {vals: \$vals, total: \$total}
EOF
}
count_done() { ls "$1"/done.* 2>/dev/null | wc -l; }

thresh_yaml "$TMP/ratio.yaml" ", min_success_ratio: 0.75"
mkdir "$TMP/h1"
out=$("$MAPQ" run "$TMP/ratio.yaml" --input 'xs=[0,1,2,3]' --input 'bad=[1]' \
    --input dir="$TMP/h1" 2>"$TMP/h1.err")
rc=$?
id=$(exec_of "$TMP/h1.err")
check "ratio 0.75, 1 of 4 fails: succeeds" "0" "$rc"
check "ratio 0.75, 1 of 4 fails: null in its slot, downstream ran on it" \
    '{"vals":[0,null,20,30],"total":50}' "$out"
check "ratio 0.75, 1 of 4 fails: three SUCCEEDED, one FAILED" "3 3 3 6" "$(records "$id" 0 p)"

mkdir "$TMP/h2"
out=$("$MAPQ" run "$TMP/ratio.yaml" --input 'xs=[0,1,2,3]' --input 'bad=[1,2]' \
    --input dir="$TMP/h2" 2>"$TMP/h2.err")
rc=$?
check "ratio 0.75, 2 of 4 fail: fails (ceil(0.75 x 4) = 3 needed)" "1" "$rc"
check "ratio 0.75, 2 of 4 fail: the error says 3 needed" "1" \
    "$(grep -c "node 'vals' failed: [0-9] of 4 subtasks succeeded, 3 needed: " "$TMP/h2.err")"
check "ratio 0.75, 2 of 4 fail: downstream did not run" "no" \
    "$([ -e "$TMP/h2/after" ] && echo yes || echo no)"

# min_successes wins over min_success_ratio.
thresh_yaml "$TMP/mins.yaml" ", min_success_ratio: 1, min_successes: 3"
mkdir "$TMP/h3"
out=$("$MAPQ" run "$TMP/mins.yaml" --input 'xs=[0,1,2,3,4]' --input 'bad=[0,4]' \
    --input dir="$TMP/h3" 2>"$TMP/h3.err")
check "min_successes 3 (ratio 1), 2 of 5 fail: succeeds with nulls" \
    '0 {"vals":[null,10,20,30,null],"total":60}' "$? $out"

thresh_yaml "$TMP/mins4.yaml" ", min_successes: 4, run_all: true"
mkdir "$TMP/h4"
out=$("$MAPQ" run "$TMP/mins4.yaml" --input 'xs=[0,1,2,3,4]' --input 'bad=[0,4]' \
    --input dir="$TMP/h4" 2>"$TMP/h4.err")
rc=$?
id=$(exec_of "$TMP/h4.err")
check "min_successes 4, 2 of 5 fail: exits 1" "1" "$rc"
check "min_successes 4, 2 of 5 fail: the error" "1" \
    "$(grep -c "^mapq: execution $id failed: node 'vals' failed: 3 of 5 subtasks succeeded, 4 needed: 0,4: exit status 1: boom$" "$TMP/h4.err")"

# run_all: the threshold is out of reach at once, yet every other subtask,
# running or still queued (10 elements, 6 slots), runs to its end; the node
# still fails, the error groups the indices, and downstream never runs.
thresh_yaml "$TMP/all.yaml" ", run_all: true"
mkdir "$TMP/h5"
rcli="--no-auth-warning ${REDIS_CLI_ARGS[*]}"
t0=$(now_ms)
out=$("$MAPQ" run "$TMP/all.yaml" --input 'xs=[0,1,2,3,4,5,6,7,8,9]' \
    --input 'bad=[0,1,2,3,7]' --input 'odd=[5]' --input hold=true \
    --input rcli="$rcli" --input rkey="$MAPQ_NAMESPACE:r" \
    --input dir="$TMP/h5" 2>"$TMP/h5.err")
rc=$?
t1=$(now_ms)
id=$(exec_of "$TMP/h5.err")
check "run_all: the node still fails, mapq run exits 1" "1" "$rc"
check "run_all: all 4 others ran to the end before mapq run returned" "4" "$(count_done "$TMP/h5")"
check "run_all: the others waited for the failure (run took >= 2 s)" "yes" \
    "$([ $((t1 - t0)) -ge 2000 ] && echo yes || echo no)"
check "run_all: phases recorded: 4 SUCCEEDED, 5 FAILED, 1 FAILED, none ABORTED" \
    "3 3 3 3 6 6 6 6 6 6" "$(records "$id" 0 p)"
check "run_all: the error summarises by index ranges" "1" \
    "$(grep -c "^mapq: execution $id failed: node 'vals' failed: 4 of 10 subtasks succeeded, 10 needed: 0-3,7: exit status 1: boom; 5: exit status 2: other$" "$TMP/h5.err")"
check "run_all: downstream node did not run" "no" \
    "$([ -e "$TMP/h5/after" ] && echo yes || echo no)"
check "run_all: the execution is recorded failed" "failed" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$id" state)"
# ---- retry_backoff ----------------------------------------------------------
# Each attempt appends its start time (ms) to a file; the first two fail.
# With {initial: 1s, factor: 2} retry 1 waits 0.5-1 s and retry 2 1-2 s
# (jitter: half to all of the step), parked in P:delayed meanwhile.
cat >"$TMP/backoff.yaml" <<'EOF'
name: backoff
inputs:
  dir: {type: str}
tasks:
  flaky:
    inputs: {x: int, dir: str}
    output: int
    retries: 2
    retry_backoff: {initial: 1s, factor: 2}
    command:
      - sh
      - -c
      - |
        f="$MAPQ_IN_dir/t.$MAPQ_IN_x"
        date +%s%3N >>"$f"
        [ "$(wc -l <"$f")" -ge 3 ] && echo "$MAPQ_IN_x" || exit 1
nodes:
  m: {map: flaky, over: {x: [1, 2]}, with: {dir: $inputs.dir}}
output: $m
EOF
mkdir "$TMP/bo"
"$MAPQ" run "$TMP/backoff.yaml" --input dir="$TMP/bo" >"$TMP/bo.out" 2>"$TMP/bo.err" &
bo_pid=$!
parked() { [ "$(redis_cli ZCARD "$MAPQ_NAMESPACE:delayed")" -ge 1 ]; }
wait_for 10 parked
check "backoff: a failed attempt waits in P:delayed" "yes" \
    "$(parked && echo yes || echo no)"
wait_for 30 exited "$bo_pid"
wait "$bo_pid"
check "backoff: the third attempt succeeds" "0 [1,2]" "$? $(cat "$TMP/bo.out")"
# gaps FILE: the gaps between successive attempt starts, in ms.
gaps() { awk 'NR > 1 { printf "%s%d", sep, $1 - p; sep = " " } { p = $1 }' "$1"; }
for x in 1 2; do
    g=$(gaps "$TMP/bo/t.$x")
    check "backoff: element $x waited >= 0.5 s, then >= 1 s (gaps: $g ms)" "yes" \
        "$(set -- $g; [ "$#" -eq 2 ] && [ "$1" -ge 500 ] && [ "$2" -ge 1000 ] && echo yes || echo no)"
done
check "backoff: nothing left parked" "0" "$(redis_cli ZCARD "$MAPQ_NAMESPACE:delayed")"
finish
