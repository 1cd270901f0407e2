#!/usr/bin/env bash
# mapq status and mapq logs agree on every subtask of a failed execution,
# also on those that end after it failed. A map of 8: element 0 fails (the
# first time only), the others end a moment later, some at about the same
# time as the failure and some well after it, while the execution is
# failing or has ended. For every run: the phase each subtask's last
# attempt has in mapq logs --json, counted, equals the counts mapq status
# --json gives; nothing that status calls ABORTED is SUCCEEDED in logs; an
# ABORTED attempt says why. mapq recover then
# reuses exactly the results status called succeeded (RECOVERED), and runs
# the rest. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 1 --slots 8

# wf DELAY: the workflow, its late elements sleeping DELAY seconds.
wf() {
    cat <<EOF
name: late
inputs:
  xs: {type: "list[int]", default: [0, 1, 2, 3, 4, 5, 6, 7]}
tasks:
  t:
    inputs: {x: int}
    output: int
    command:
      - sh
      - -c
      - |
        if [ "\$MAPQ_IN_x" = 0 ] && [ ! -e "$TMP/failed-\$MAPQ_IN_x-$1" ]; then
          touch "$TMP/failed-\$MAPQ_IN_x-$1"; sleep 0.2; exit 3
        fi
        # Odd elements end with the failure, even ones after it.
        if [ \$((MAPQ_IN_x % 2)) = 1 ]; then sleep 0.2; else sleep $1; fi
        echo "\$MAPQ_IN_x"
nodes:
  m: {map: t, over: {x: \$inputs.xs}}
output: \$m
EOF
}

# status_counts EXEC: "succeeded failed aborted" of node m, from mapq status.
status_counts() {
    "$MAPQ" status "$1" --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["nodes"][0]["counts"]
print(c.get("succeeded", 0), c.get("failed", 0), c.get("aborted", 0))'
}

# logs_counts EXEC: the same, from the last attempt of each subtask in mapq
# logs, then how many of the 8 have an attempt, then how many ABORTED
# attempts say why (stopped by their agent, or ended after the abort).
logs_counts() {
    "$MAPQ" logs "$1" m --json | python3 -c '
import json, sys
last = {}
late = 0
for a in json.load(sys.stdin):
    last[a["index"]] = a["phase"]
    late += a["phase"] == "aborted" and "abort" in a.get("error", "")
ph = list(last.values())
print(ph.count("succeeded"), ph.count("failed"), ph.count("aborted"),
      len(last), late)'
}

# all_logged EXEC: every subtask's attempt is logged and the agent holds
# none of them any more.
all_logged() {
    set -- $(logs_counts "$1") "$1"
    [ "${4:-0}" = 8 ] && [ "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$6" h:0)" = 0 ]
}

for delay in 0.6 1.5 0.25; do
    wf "$delay" >"$TMP/late.yaml"
    timeout -s KILL 60 "$MAPQ" run "$TMP/late.yaml" >"$TMP/run.out" 2>"$TMP/run.err"
    rc=$?
    x=$(exec_of "$TMP/run.err")
    check "delay $delay: the run fails (exit 1)" "1" "$rc"
    wait_for 30 all_logged "$x"
    check "delay $delay: every subtask's last attempt is logged" "0" "$?"
    s=$(status_counts "$x")
    set -- $(logs_counts "$x")
    l="$1 $2 $3"
    late=$5
    check "delay $delay: status (succeeded failed aborted) = the last attempts in logs" \
        "$s" "$l"
    set -- $s
    check "delay $delay: one failed, and all 8 accounted for" "1 8" \
        "$2 $(($1 + $2 + $3))"
    check "delay $delay: every ABORTED attempt in logs says it was aborted" \
        "$3" "$late"
    echo "# delay $delay: status $s, logs $l, $late after the abort"
    succeeded=$1

    # Recover: what status called succeeded is reused, the rest runs.
    timeout -s KILL 60 "$MAPQ" recover "$x" >"$TMP/rec.out" 2>"$TMP/rec.err"
    check "delay $delay: recover succeeds with the full output" \
        "0 [0,1,2,3,4,5,6,7]" "$? $(tr -d ' \n' <"$TMP/rec.out")"
    y=$(exec_of "$TMP/rec.err")
    recovered=$("$MAPQ" status "$y" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["nodes"][0]["counts"].get("recovered", 0))')
    check "delay $delay: recover reuses exactly the $succeeded results status called succeeded" \
        "$succeeded" "$recovered"
done
finish
