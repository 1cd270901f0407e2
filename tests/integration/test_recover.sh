#!/usr/bin/env bash
# mapq recover (SPEC section 5): a new execution of a failed one's workflow
# and inputs that takes every success from it (RECOVERED) and runs only what
# failed, was aborted or never ran, with caching off. Tests count
# executions. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 3

status_line() { "$MAPQ" status "$1" 2>&1 | sed -n "s/^  $2  *//p"; }
count() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }

# prep runs once and yields an offset; work adds it to each element, and
# fails while a file broken.<x> exists (the fault, fixed before recovering).
cat >"$TMP/wf.yaml" <<'EOF'
name: recoverable
inputs:
  n: {type: int, default: 1000}
  dir: {type: str}
tasks:
  prep:
    inputs: {n: int, dir: str}
    output: "list[int]"
    command: [sh, -c, 'echo prep >>"$MAPQ_IN_dir/prep.runs"; seq -s, 0 $((MAPQ_IN_n - 1)) | sed "s/^/[/; s/$/]/"']
  work:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - |
        echo "$MAPQ_IN_x" >>"$MAPQ_IN_dir/work.runs"
        if [ -e "$MAPQ_IN_dir/broken.$MAPQ_IN_x" ]; then echo broken >&2; exit 1; fi
        echo $((MAPQ_IN_x * 3))
nodes:
  prep: {task: prep, with: {n: $inputs.n, dir: $inputs.dir}}
  work: {map: work, over: {x: $prep}, with: {dir: $inputs.dir}, run_all: true}
output: $work
EOF
expected() { seq -s, 0 3 $((3 * ($1 - 1))) | sed 's/^/[/; s/$/]/'; }

# ---- three subtasks of 1,000 fail; recover runs exactly those ---------------
mkdir "$TMP/a"
touch "$TMP/a/broken.10" "$TMP/a/broken.500" "$TMP/a/broken.999"
"$MAPQ" run "$TMP/wf.yaml" --input dir="$TMP/a" >/dev/null 2>"$TMP/a1.err"
check "the first execution fails" "1" "$?"
check "its error names the three" "1" \
    "$(grep -c "997 of 1000 subtasks succeeded, 1000 needed: 10,500,999: exit status 1: broken" "$TMP/a1.err")"
first=$(exec_of "$TMP/a1.err")
rm "$TMP/a"/broken.* "$TMP/a/work.runs" "$TMP/a/prep.runs"
out=$("$MAPQ" recover "$first" 2>"$TMP/a2.err")
check "recover succeeds with the full output" "0 yes" \
    "$? $([ "$out" = "$(expected 1000)" ] && echo yes || echo no)"
check "recover ran exactly the three that failed" "10 500 999" \
    "$(sort -n "$TMP/a/work.runs" | tr '\n' ' ' | sed 's/ $//')"
check "recover did not run the node that had succeeded" "0" "$(count "$TMP/a/prep.runs")"
second=$(exec_of "$TMP/a2.err")
check "a new execution, not the old one" "yes" \
    "$([ -n "$second" ] && [ "$second" != "$first" ] && echo yes || echo no)"
check "the rest is RECOVERED" "succeeded  total 1000  SUCCEEDED 3  RECOVERED 997" \
    "$(status_line "$second" work)"
check "the old execution is left as it was" "failed" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$first" state)"

# ---- early failure: the aborted and never started ones run too ----------------
sed 's/, run_all: true//' "$TMP/wf.yaml" >"$TMP/early.yaml"
mkdir "$TMP/b"
touch "$TMP/b/broken.3"
"$MAPQ" run "$TMP/early.yaml" --input n=200 --input dir="$TMP/b" --priority 30 \
    >/dev/null 2>"$TMP/b1.err"
check "early failure: the first execution fails" "1" "$?"
first=$(exec_of "$TMP/b1.err")
# Subtasks its agents had already taken (running or prefetched) end within
# about a second, recorded or aborted: wait for them before counting.
no_leases() { [ "$(lease_count)" = 0 ]; }
wait_for 10 no_leases
succeeded=$(redis_cli EVAL "local n = 0
    for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
        if cmsgpack.unpack(v).p == 3 then n = n + 1 end
    end
    return n" 1 "$MAPQ_NAMESPACE:r:$first:1")
rm "$TMP/b/broken.3" "$TMP/b/work.runs"
out=$("$MAPQ" recover "$first" 2>"$TMP/b2.err")
check "early failure: recover succeeds with the full output" "0 yes" \
    "$? $([ "$out" = "$(expected 200)" ] && echo yes || echo no)"
check "early failure: recover ran exactly the ones without a success" \
    "$((200 - succeeded))" "$(count "$TMP/b/work.runs")"
check "early failure: the recovery keeps the run's --priority" "30 30" \
    "$(redis_cli HGET "$MAPQ_NAMESPACE:x:$first" priority) $(redis_cli HGET "$MAPQ_NAMESPACE:x:$(exec_of "$TMP/b2.err")" priority)"
echo "# early failure: $succeeded of 200 had succeeded before the abort"

# ---- a node that succeeded under a threshold ---------------------------------------
# Its failed element runs again; the rest is taken.
sed 's/, run_all: true/, min_success_ratio: 0.5/' "$TMP/wf.yaml" >"$TMP/ratio.yaml"
mkdir "$TMP/c"
touch "$TMP/c/broken.2"
out=$("$MAPQ" run "$TMP/ratio.yaml" --input n=5 --input dir="$TMP/c" 2>"$TMP/c1.err")
check "threshold: the first execution succeeds with a null" "0 [0,3,null,9,12]" "$? $out"
rm "$TMP/c/broken.2" "$TMP/c/work.runs"
out=$("$MAPQ" recover "$(exec_of "$TMP/c1.err")" 2>/dev/null)
check "threshold: recover runs the failed element only, and fills it in" \
    "0 [0,3,6,9,12] 2" "$? $out $(cat "$TMP/c/work.runs")"

# ---- what recover refuses --------------------------------------------------------
"$MAPQ" recover 000000000000 >/dev/null 2>"$TMP/err"
check "recover of an unknown execution: exit 1" "1 1" "$? $(wc -l <"$TMP/err" | tr -d ' ')"
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
tasks:
  nap:
    output: int
    command: [sh, -c, 'sleep 30; echo 1']
nodes:
  n: {task: nap}
output: $n
EOF
"$MAPQ" run "$TMP/slow.yaml" >/dev/null 2>"$TMP/s.err" &
slow=$!
wait_for 10 grep -q "^mapq: execution" "$TMP/s.err"
"$MAPQ" recover "$(exec_of "$TMP/s.err")" >/dev/null 2>"$TMP/err"
check "recover of a running execution: exit 2, says so" "2 1" \
    "$? $(grep -c 'is still running' "$TMP/err")"
kill -INT "$slow"
wait "$slow"
finish
