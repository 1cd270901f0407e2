#!/usr/bin/env bash
# A corrupt attempt log: mapq logs refuses impossible msgpack lengths
# instead of allocating for them (256 GiB under the old code: ASan abort).
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

finish
