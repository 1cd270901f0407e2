#!/usr/bin/env bash
# mapq-agent --allow-exec DIR: the agent runs only programs whose real path
# lies under DIR. A script in DIR runs; sh (outside it), a symlink in DIR
# to a program outside it, and a relative path are refused before anything
# runs, each as a security error that is not retried (the task asks for 2
# retries). The same for plugins: a library outside DIR is refused and
# never loaded (the agent's /proc/PID/maps shows it), one under DIR runs.
# A bad --allow-exec is refused at startup with exit 2. Waits are bounded
# polls.
. "$(dirname "$0")/harness.sh"

start_redis
mkdir -p "$TMP/allowed" "$TMP/marks"
export MARKS="$TMP/marks"
cat >"$TMP/allowed/square" <<'EOF'
#!/bin/sh
echo $((MAPQ_IN_x * MAPQ_IN_x))
EOF
chmod +x "$TMP/allowed/square"
ln -s "$(command -v touch)" "$TMP/allowed/touch"
"$AGENT" --name it-allow --slots 2 --queue allowq --allow-exec "$TMP/allowed" \
    >>"$TMP/agents.log" 2>&1 &
agent=$!
PIDS+=($agent)

# wf PROGRAM ARG...: a map of 2 on queue allowq running PROGRAM ARG...
wf() {
    local argv="" a
    for a in "$@"; do argv="$argv\"$a\", "; done
    cat <<EOF
name: allow
inputs:
  xs: {type: "list[int]", default: [2, 3]}
tasks:
  t:
    inputs: {x: int}
    output: int
    retries: 2
    queue: allowq
    command: [${argv%, }]
nodes:
  m: {map: t, over: {x: \$inputs.xs}}
output: \$m
EOF
}

# attempts EXEC: how many attempts were logged, and how many name
# --allow-exec.
attempts() {
    "$MAPQ" logs "$1" m --json | python3 -c '
import json, sys
a = json.load(sys.stdin)
print(len(a), sum("allow-exec" in e.get("error", "") for e in a))'
}

wf "$TMP/allowed/square" >"$TMP/ok.yaml"
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/ok.yaml" 2>"$TMP/ok.err")
check "a program under --allow-exec runs" "0 [4,9]" "$? $(echo "$out" | tr -d ' \n')"

n=0
for prog in "sh -c touch\ \$MARKS/ran-sh" "$TMP/allowed/touch $MARKS/ran-link" \
    "./square"; do
    n=$((n + 1))
    eval "wf $prog" >"$TMP/bad$n.yaml"
    timeout -s KILL 60 "$MAPQ" run "$TMP/bad$n.yaml" >/dev/null 2>"$TMP/bad$n.err"
    rc=$?
    x=$(exec_of "$TMP/bad$n.err")
    check "refused ($prog): the run fails" "1" "$rc"
    check "refused ($prog): the error names --allow-exec" "1" \
        "$(grep -c "security: program '.*' is not under a directory of --allow-exec" "$TMP/bad$n.err")"
    check "refused ($prog): one attempt per subtask, not retried" "2 2" "$(attempts "$x")"
done
check "nothing refused ever ran (no marker files)" "0" "$(ls "$MARKS" | wc -l | tr -d ' ')"

# pwf LIBRARY: a map of 2 on queue allowq calling crash_on of LIBRARY
# (which returns x unless x = bad).
pwf() {
    cat <<EOF
name: allowp
inputs:
  xs: {type: "list[int]", default: [2, 3]}
tasks:
  t:
    inputs: {x: int, bad: int}
    output: int
    retries: 2
    queue: allowq
    plugin: {library: $1, symbol: crash_on}
nodes:
  m: {map: t, over: {x: \$inputs.xs}, with: {bad: 99}}
output: \$m
EOF
}
loaded() { grep -c mapq_fault_plugin "/proc/$agent/maps"; }
# Found next to mapq-agent, in the build directory: outside DIR.
pwf mapq_fault_plugin.so >"$TMP/pbad.yaml"
timeout -s KILL 60 "$MAPQ" run "$TMP/pbad.yaml" >/dev/null 2>"$TMP/pbad.err"
rc=$?
x=$(exec_of "$TMP/pbad.err")
check "refused plugin: the run fails" "1" "$rc"
check "refused plugin: the error names --allow-exec" "1" \
    "$(grep -c "security: plugin library 'mapq_fault_plugin.so' is not under a directory of --allow-exec" "$TMP/pbad.err")"
check "refused plugin: one attempt per subtask, not retried" "2 2" "$(attempts "$x")"
check "refused plugin: never loaded into the agent" "0" "$(loaded)"
cp "$BUILD/mapq_fault_plugin.so" "$TMP/allowed/"
pwf "$TMP/allowed/mapq_fault_plugin.so" >"$TMP/pok.yaml"
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/pok.yaml" 2>"$TMP/pok.err")
check "a plugin under --allow-exec runs" "0 [2,3]" "$? $(echo "$out" | tr -d ' \n')"
check "and is loaded into the agent" "1" "$([ "$(loaded)" -ge 1 ] && echo 1 || echo 0)"

"$AGENT" --allow-exec "$TMP/nonexistent" >"$TMP/bad-opt.out" 2>&1
check "a bad --allow-exec: exit 2, one line naming it" "2 1" \
    "$? $(grep -c "allow-exec '$TMP/nonexistent' is not a directory" "$TMP/bad-opt.out")"
finish
