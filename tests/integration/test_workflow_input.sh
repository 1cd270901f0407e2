#!/usr/bin/env bash
# Hostile and awkward workflow input: costly YAML is refused at once with one
# line (400 KB of nesting, 50,000 anchors, a file over the workflow cap), and
# wide files are answered quickly (40,000 tasks and nodes, 100,000 unknown
# keys: 50 problems listed and the rest counted); a {name} placeholder inside a shell's script
# (also behind wrappers such as timeout, nice, env and xargs) is refused
# with the safe "$MAPQ_IN_name" form unless the task sets
# shell_placeholders: raw, and the safe form keeps a hostile input as data;
# a .json inputs file (and --input NAME=@FILE.json) is read with JSON's
# rules, so the surrogate-pair escapes of Python's json.dump come out as the
# emoji they stand for.
#
# The time bounds below are hang bounds, not speed claims (speed is
# mapq-bench's): 15 s (45 s under a sanitizer), against 38 s that the
# nesting took before and 27 s for 40,000 tasks and nodes, on an idle
# machine. The cases take well under a second each when the machine is
# idle; a loaded CI machine must not fail them.
. "$(dirname "$0")/harness.sh"

# validate_timed NAME FILE: runs mapq validate on FILE (killed after 120 s),
# leaves its exit status in RC, its stderr in $TMP/NAME.err, and the wall
# time in whole milliseconds in MS.
validate_timed() {
    local t0 t1
    t0=$(date +%s%N)
    timeout -s KILL 120 "$MAPQ" validate "$2" >"$TMP/$1.out" 2>"$TMP/$1.err"
    RC=$?
    t1=$(date +%s%N)
    MS=$(( (t1 - t0) / 1000000 ))
}
BOUND_MS=15000
if grep -q __asan_init "$MAPQ" 2>/dev/null; then
    BOUND_MS=45000
fi
fast() { [ "$MS" -lt "$BOUND_MS" ] && echo fast || echo "slow (${MS} ms)"; }
lines() { wc -l <"$TMP/$1.err" | tr -d ' '; }
has() { grep -qF -- "$2" "$TMP/$1.err" && echo yes || echo "no: $(head -c 300 "$TMP/$1.err")"; }

# ---- 1. costly YAML ----------------------------------------------------------
python3 - "$TMP" <<'EOF'
import sys
d = sys.argv[1]
open(d + "/nest.yaml", "w").write("[" * 200000 + "]" * 200000 + "\n")
hdr = ("name: w\ninputs:\n  x: {type: any, default: %s}\ntasks:\n  t:\n"
       "    inputs: {x: any}\n    command: [echo, '{x}']\n"
       "nodes:\n  n: {task: t, with: {x: $inputs.x}}\n")
open(d + "/anchors.yaml", "w").write(hdr % (
    "[" + ", ".join("&a%d %d" % (i, i) for i in range(50000)) + "]"))
open(d + "/keys.yaml", "w").write(
    "".join("k%d: %d\n" % (i, i) for i in range(100000)))
# 40,000 inputs, tasks and nodes; every node names the last task and input
# (valid), or a task and an input that do not exist (80,000 problems).
N = 40000
head = ("name: w\ninputs:\n" +
        "".join("  i%d: {type: int, default: 1}\n" % i for i in range(N)) +
        "tasks:\n" +
        "".join("  t%d: {inputs: {x: int}, command: [echo]}\n" % i
                for i in range(N)) + "nodes:\n")
open(d + "/wide.yaml", "w").write(head + "".join(
    "  n%d: {task: t%d, with: {x: $inputs.i%d}}\n" % (i, N - 1, N - 1)
    for i in range(N)))
open(d + "/wide-bad.yaml", "w").write(head + "".join(
    "  n%d: {task: u%d, with: {x: $inputs.z%d}}\n" % (i, i, i)
    for i in range(N)))
EOF
validate_timed nest "$TMP/nest.yaml"
check "400 KB of nesting: exit 2, one line naming line and column, within the hang bound" \
    "2 1 yes fast" \
    "$RC $(lines nest) $(has nest "$TMP/nest.yaml:1:65: YAML nested more than 64 levels deep") $(fast)"
validate_timed anchors "$TMP/anchors.yaml"
check "50,000 anchors: exit 2, one line, within the hang bound" "2 1 yes fast" \
    "$RC $(lines anchors) $(has anchors "YAML document has more than 1000 anchors (&name)") $(fast)"
validate_timed keys "$TMP/keys.yaml"
check "100,000 unknown keys (and no name): exit 2, 50 problems and a count of the rest" \
    "2 51 yes" \
    "$RC $(lines keys) $(has keys "$TMP/keys.yaml: 99951 more problems not shown")"
validate_timed wide "$TMP/wide.yaml"
check "40,000 inputs, tasks and nodes: valid, within the hang bound" "0 fast" "$RC $(fast)"
validate_timed wide-bad "$TMP/wide-bad.yaml"
check "40,000 unknown task names: exit 2, 51 lines, within the hang bound" \
    "2 51 yes fast" \
    "$RC $(lines wide-bad) $(has wide-bad "more problems not shown") $(fast)"
# A regular file over the cap is refused by its size, before it is read.
truncate -s 9M "$TMP/huge.yaml"
validate_timed huge "$TMP/huge.yaml"
check "a workflow file over 8 MiB: exit 2, one line, within the hang bound" "2 1 yes fast" \
    "$RC $(lines huge) $(has huge "cannot read '$TMP/huge.yaml': larger than 8 MiB") $(fast)"

# ---- 2. placeholders inside a shell's script ---------------------------------
# shell_wf NAME COMMAND [EXTRA TASK LINE]
shell_wf() {
    cat >"$TMP/$1.yaml" <<EOF
name: inj
inputs:
  x: {type: str, default: a}
tasks:
  t:
    inputs: {x: str}
    output: str
    output_format: text
    command: $2
${3:-}
nodes:
  n: {task: t, with: {x: \$inputs.x}}
output: \$n
EOF
}
shell_wf sh "[sh, -c, 'echo {x}']"
shell_wf bash "[/bin/bash, -euc, 'echo {x}']"
shell_wf env "[env, LC_ALL=C, sh, -c, 'echo {x}']"
for f in sh bash env; do
    validate_timed "$f" "$TMP/$f.yaml"
    check "{x} in the script of '$f': exit 2, one line with the safe form" \
        "2 1 yes yes" \
        "$RC $(lines "$f") $(has "$f" "write \"\$MAPQ_IN_x\" in the script instead") $(has "$f" "in task 't'")"
done
# Behind wrappers, nested, with their options: still the shell's script.
shell_wf timeout "[timeout, 5, bash, -c, 'echo {x}']"
shell_wf nice-env "[nice, -n, 5, env, sh, -ec, 'echo {x}']"
shell_wf xargs "[timeout, -s, KILL, --kill-after=5, 30, xargs, -I, '{}', bash, --norc, -O, extglob, -c, 'echo {x} {}']"
for pair in timeout:bash nice-env:sh xargs:bash; do
    f=${pair%%:*} shell=${pair#*:}
    validate_timed "$f" "$TMP/$f.yaml"
    check "{x} in the script of '$shell' behind '$f': exit 2, one line naming the shell" \
        "2 1 yes yes" \
        "$RC $(lines "$f") $(has "$f" "write \"\$MAPQ_IN_x\" in the script instead") $(has "$f" "the script that '$shell' runs")"
done
shell_wf wrapped-arg "[timeout, 5, nice, -n, 5, printf, '%s\n', '{x}']"
validate_timed wrapped-arg "$TMP/wrapped-arg.yaml"
check "{x} as an argv entry of its own behind wrappers: accepted" "0" "$RC"
shell_wf raw "[sh, -c, 'echo {x}']" "    shell_placeholders: raw"
validate_timed raw "$TMP/raw.yaml"
check "shell_placeholders: raw: accepted" "0" "$RC"
shell_wf arg "[printf, '%s\n', '{x}']"
validate_timed arg "$TMP/arg.yaml"
check "{x} as an argv entry of its own: accepted" "0" "$RC"
shell_wf bad "[sh, -c, 'echo {x}']" "    shell_placeholders: yes"
validate_timed bad "$TMP/bad.yaml"
check "shell_placeholders: yes: exit 2, one line" "2 1 yes" \
    "$RC $(lines bad) $(has bad "'shell_placeholders' must be 'refuse' or 'raw'")"

# ---- 3. runs: the safe form, JSON inputs ---------------------------------------
start_redis
start_agents 2

# The safe form keeps every payload text: nothing runs, nothing is created
# (the script runs in $TMP, where a payload's file would appear). The
# payloads go in through a JSON inputs file, newline and all.
shell_wf safe "[sh, -c, 'cd \"\$0\" && printf %s \"\$MAPQ_IN_x\"', '$TMP']"
norm() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), ensure_ascii=False, separators=(",", ":")))' 2>&1; }
i=0
for payload in '$(touch pwned1)' '`touch pwned2`' 'a; touch pwned3' "$(printf 'b\ntouch pwned4')"; do
    i=$((i + 1))
    python3 -c 'import json,sys; json.dump({"x": sys.argv[2]}, open(sys.argv[1], "w"))' \
        "$TMP/payload$i.json" "$payload"
    out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/safe.yaml" --inputs "$TMP/payload$i.json" 2>"$TMP/safe$i.err")
    RC=$?
    check "safe form: payload $i comes back as text" \
        "0 $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$payload")" \
        "$RC $(printf '%s' "$out" | norm)"
done
check "safe form: no payload ran" "" "$(ls "$TMP" | grep pwned)"
# mapq run makes the same check, before anything is submitted.
execs() { redis_cli --scan --pattern "$MAPQ_NAMESPACE:x:*" | wc -l | tr -d ' '; }
before=$(execs)
timeout -s KILL 60 "$MAPQ" run "$TMP/sh.yaml" >/dev/null 2>"$TMP/run-sh.err"
RC=$?
check "mapq run refuses {x} in a shell's script too: exit 2, one line" \
    "2 1 yes" "$RC $(lines run-sh) $(has run-sh "\"\$MAPQ_IN_x\"")"
check "run refused: nothing submitted" "$before" "$(execs)"


cat >"$TMP/emoji.yaml" <<'EOF'
name: emoji
inputs:
  xs: {type: "list[str]"}
tasks:
  echo:
    inputs: {x: str}
    output: str
    command: [python3, -c, "import json,sys; print(json.dumps(json.load(sys.stdin)['x']))"]
nodes:
  e: {map: echo, over: {x: $inputs.xs}}
output: $e
EOF
# As Python's json.dump writes it: an escaped surrogate pair.
printf '{"xs": ["\\ud83d\\ude00", "a"]}\n' >"$TMP/in.json"
printf '["\\ud83d\\ude00"]\n' >"$TMP/xs.json"
want=$(python3 -c 'import json; print(json.dumps(["\U0001F600", "a"], ensure_ascii=False, separators=(",", ":")))')
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/emoji.yaml" --inputs "$TMP/in.json" 2>"$TMP/emoji.err")
RC=$?
check "--inputs FILE.json with \"\\ud83d\\ude00\": exit 0, the emoji in the output" \
    "0 $want" "$RC $(printf '%s' "$out" | norm)"
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/emoji.yaml" --input xs=@"$TMP/xs.json" 2>"$TMP/emoji2.err")
RC=$?
check "--input xs=@FILE.json: exit 0, the emoji in the output" \
    "0 $(python3 -c 'import json; print(json.dumps(["\U0001F600"], ensure_ascii=False, separators=(",", ":")))')" \
    "$RC $(printf '%s' "$out" | norm)"

finish
