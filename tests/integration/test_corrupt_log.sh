#!/usr/bin/env bash
# A corrupt attempt log: mapq logs refuses impossible msgpack lengths
# instead of allocating for them (256 GiB under the old code: ASan abort),
# shows what it can read and says, for each subtask (or log page), what it
# cannot.
. "$(dirname "$0")/harness.sh"
P=$MAPQ_NAMESPACE
start_redis
x=00000000abcd
redis_cli HSET "$P:x:$x" state succeeded nodes 1 node:0 n >/dev/null
good=$'\x82\xa1a\x01\xa1k\xa1T'
redis_cli HSET "$P:log:$x" 0/0 "$good"$'\xdf\xff\xff\xff\xff' >/dev/null
redis_cli HSET "$P:log:$x" 0/1 $'\xdd\xff\xff\xff\xff' >/dev/null
"$MAPQ" logs "$x" n >"$TMP/logs.out" 2>"$TMP/logs.err"
RC=$?
check "corrupt attempt log: mapq logs exits 0" "0" "$RC"
check "corrupt attempt log: the good record before it is shown" "1" \
    "$(grep -c 'attempt 1:' "$TMP/logs.out")"
check "corrupt attempt log: no sanitizer report" "" "$(grep -i sanitizer "$TMP/logs.err")"
check "corrupt attempt log: each corrupt part said, naming the subtask" "2" \
    "$(grep -c -E "^mapq: n\[[01]\]: the last 5 bytes of its attempt log cannot be read" "$TMP/logs.err")"
"$MAPQ" logs "$x" n --json >"$TMP/logs.json" 2>/dev/null
check "corrupt attempt log: --json lists the corrupt parts" "[[0, 5], [1, 5]]" \
    "$(python3 -c 'import json,sys; print(sorted([e["index"], e["corrupt"]] for e in json.load(open(sys.argv[1])) if "corrupt" in e))' "$TMP/logs.json" 2>&1)"

# A log page (first attempts that succeeded, each record with its i) whose
# tail is corrupt: what comes before it is shown, and the rest is said.
paged=$'\x83\xa1a\x01\xa1i\x10\xa1k\xa1T'
redis_cli HSET "$P:log:$x" 0/p1 "$paged"$'\xdf\xff\xff\xff\xff' >/dev/null
"$MAPQ" logs "$x" n 16 >"$TMP/page.out" 2>"$TMP/page.err"
check "corrupt log page: the record before it is shown, exit 0" "0 1" \
    "$? $(grep -c '^n\[16\] attempt 1:' "$TMP/page.out")"
check "corrupt log page: the rest is said, naming the page" "1" \
    "$(grep -c "^mapq: log page 0/p1: the last 5 bytes cannot be read" "$TMP/page.err")"
"$MAPQ" logs "$x" n >"$TMP/logs2.out" 2>"$TMP/logs2.err"
check "corrupt log page: the whole node's logs show it too" "1 1" \
    "$(grep -c '^n\[16\] attempt 1:' "$TMP/logs2.out") $(grep -c "^mapq: log page 0/p1:" "$TMP/logs2.err")"

finish
