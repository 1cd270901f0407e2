#!/usr/bin/env bash
# Working directories: every attempt starts in an empty directory of mode
# 0700 at a path no other attempt had, whatever the attempts before left
# in theirs (a file, a wider mode); one left empty and as it was made is
# given out again under a new name rather than removed and made again
# (its inode shows up at a new path). One agent with one slot, so that
# attempts follow each other. Real processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
"$AGENT" --name it-workdirs --slots 1 >>"$TMP/agents.log" 2>&1 &
PIDS+=($!)

# Each attempt prints what it found, then leaves its directory as x says:
# as it was (x % 3 = 0), holding a file (1), or of mode 0755 (2).
cat >"$TMP/wd.yaml" <<'EOF2'
name: workdirs
inputs:
  xs: {type: "list[int]"}
tasks:
  look:
    inputs: {x: int}
    output: str
    output_format: text
    command:
      - sh
      - -c
      - |
        echo "$PWD $(stat -c %a .) $(ls -A | wc -l) $(stat -c %i@%w . | tr ' ' _)"
        case $((MAPQ_IN_x % 3)) in
        1) echo left >left ;;
        2) chmod 0755 . ;;
        esac
nodes:
  n: {map: look, over: {x: $inputs.xs}}
output: $n
EOF2

N=60
timeout -s KILL 120 "$MAPQ" run "$TMP/wd.yaml" \
    --input "xs=[$(seq -s, 0 $((N - 1)))]" >"$TMP/wd.out" 2>"$TMP/wd.err"
check "the map of $N attempts succeeds" "0" "$?"
python3 -c '
import json, sys
for line in json.load(open(sys.argv[1])):
    print(line)' "$TMP/wd.out" >"$TMP/seen" 2>"$TMP/seen.err"
check "each attempt said where it ran" "$N" "$(wc -l <"$TMP/seen" | tr -d ' ')"
check "no two attempts ran at the same path" "$N" \
    "$(awk '{ print $1 }' "$TMP/seen" | sort -u | wc -l | tr -d ' ')"
check "every attempt started in an empty directory of mode 0700" "" \
    "$(awk '$2 != "700" || $3 != "0"' "$TMP/seen")"
# The same inode made at the same moment (its birth time, to the
# nanosecond) at two paths: one directory given out again, renamed. A
# directory removed and made again may get the same inode number, not the
# same birth time.
check "an empty directory was given out again under a new name" "yes" \
    "$(awk '{ print $4 }' "$TMP/seen" | sort | uniq -d | grep -q . && echo yes || echo no)"
finish
