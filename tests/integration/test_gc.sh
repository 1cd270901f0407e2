#!/usr/bin/env bash
# Garbage collection of the embedded store's blobs: a blob stays while an
# execution or a cache entry refers to it, then goes. Inputs stored at
# submit are held by their execution, outputs by the execution that
# recorded them and by its cache entry; an execution that takes a cache
# entry, or recovers another's results, holds their blobs too, so removing
# the first execution or clearing the cache loses nothing still referred
# to. mapq gc reclaims at once, a scheduler as blobs come due. A blob
# held only for a grace (an execution still to be created) is kept until
# the grace ends. A reference given as an input must still be there.
# Real processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2

P=$MAPQ_NAMESPACE
mkdir -p "$TMP/in" "$TMP/fetch"
printf 'alpha\n' >"$TMP/in/a.txt"
printf 'beta\n' >"$TMP/in/b.txt"
printf 'gamma\n' >"$TMP/in/bad.txt"
sha() { sha256sum "$1" | cut -d' ' -f1; }

cat >"$TMP/gc.yaml" <<YAML
name: gc
inputs:
  docs: {type: "list[file]"}
tasks:
  shout:
    inputs: {doc: file}
    outputs: {loud: file, tree: dir}
    cache: {version: "1"}
    command:
      - sh
      - -c
      - |
        set -e
        n=\$(basename "\$MAPQ_IN_doc" .txt)
        case "\$n" in bad)
          # Fails once the test opens the gate: after the other element's
          # result is recorded, so that the failure ends nothing early.
          while [ ! -e "$TMP/gate" ]; do sleep 0.05; done
          echo "refused: \$n" >&2; exit 1;;
        esac
        tr a-z A-Z <"\$MAPQ_IN_doc" >"loud-\$n.txt"
        mkdir -p tree/deep
        echo "top \$n" >tree/top.txt
        echo "deep \$n" >tree/deep/d.txt
        echo "{\"loud\": \"loud-\$n.txt\", \"tree\": \"tree\"}"
nodes:
  m: {map: shout, over: {doc: \$inputs.docs}}
output: \$m
YAML
# The same task without a cache, for mapq recover.
sed -e 's/^name: gc$/name: gcr/' -e '/cache: {version/d' "$TMP/gc.yaml" >"$TMP/gcr.yaml"

inputs() { list_input "$1" docs "${@:2}"; } # inputs FILE PATH...
count() { redis_cli --scan --pattern "$P:$1" | wc -l | tr -d ' '; }
holders() { redis_cli ZRANGE "$P:bh:$1" 0 -1 | sort | tr '\n' ' ' | sed 's/ $//'; }
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
gc_json() { "$MAPQ" gc --json 2>"$TMP/gc.err"; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
run() { # run NAME WORKFLOW PATH...: mapq run; its id in $NAME.id, output in $NAME.out
    local name=$1 wf=$2
    shift 2
    inputs "$TMP/$name.json" "$@"
    (cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$wf" --inputs "$TMP/$name.json" \
        >"$TMP/$name.out" 2>"$TMP/$name.err")
    echo $? >"$TMP/$name.rc"
    exec_of "$TMP/$name.err" >"$TMP/$name.id"
}
A=$(sha "$TMP/in/a.txt")
B=$(sha "$TMP/in/b.txt")
LOUD_A=$(printf 'ALPHA\n' | sha256sum | cut -d' ' -f1)
TOP_A=$(printf 'top a\n' | sha256sum | cut -d' ' -f1)

# ---- held by what refers to them --------------------------------------------------
run one "$TMP/gc.yaml" "$TMP/in/a.txt" "$TMP/in/b.txt"
E1=$(cat "$TMP/one.id")
check "a run with file inputs and file and dir outputs succeeds" "0" "$(cat "$TMP/one.rc")"
# Two inputs, two loud files, two trees of two files and a manifest each.
BLOBS=$(count 'blob:*')
check "its blobs: 2 inputs + 2 outputs + 2 x (2 files + manifest)" "10" "$BLOBS"
check "every blob has holders and a place in the sweep's queue" \
    "$BLOBS $BLOBS" "$(count 'bh:*') $(redis_cli ZCARD "$P:bx")"
check "an input is held by its execution, for as long as it exists (score 0)" \
    "x:$E1 0" "$(redis_cli ZRANGE "$P:bh:$A" 0 -1 WITHSCORES | tr '\n' ' ' | sed 's/ $//')"
CKEY=$(holders "$LOUD_A" | tr ' ' '\n' | grep '^c:' || true)
check "an output is held by its execution and its cache entry" \
    "c:shout:* x:$E1" "$(holders "$LOUD_A" | sed 's/c:shout:[0-9a-f]*/c:shout:*/')"
check "a file inside an output dir is held too" "x:$E1" "$(holders "$TOP_A" | tr ' ' '\n' | grep '^x:')"
check "that cache entry exists" "1" "$(redis_cli EXISTS "$P:$CKEY")"
check "mapq gc reclaims nothing that is held" \
    "$BLOBS 0" "$(gc_json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["checked"], d["reclaimed"])')"

# ---- a second run of the same inputs: all cache hits, and held by it too ---------
run two "$TMP/gc.yaml" "$TMP/in/a.txt" "$TMP/in/b.txt"
E2=$(cat "$TMP/two.id")
check "the second run succeeds from the cache" "0 2" \
    "$(cat "$TMP/two.rc") $("$MAPQ" status "$E2" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["nodes"][0]["counts"].get("cached", 0))')"
check "a cache hit holds the entry's blobs for the execution that took it" \
    "c:shout:* $(sorted "x:$E1" "x:$E2")" "$(holders "$LOUD_A" | sed 's/c:shout:[0-9a-f]*/c:shout:*/')"
check "and the files of its dirs" "$(sorted "x:$E1" "x:$E2")" \
    "$(holders "$TOP_A" | tr ' ' '\n' | grep '^x:' | tr '\n' ' ' | sed 's/ $//')"

"$MAPQ" rm "$E1" --quiet
"$MAPQ" cache clear --quiet
check "with the first run and the cache gone, the second still holds all: nothing reclaimed" \
    "0" "$(gc_json | field reclaimed)"
check "the first run's holds went with it" "x:$E2" "$(holders "$LOUD_A")"
rm -rf "$TMP/fetch"
check "the second run's files are all still there (mapq result --fetch)" "0" \
    "$("$MAPQ" result "$E2" --fetch "$TMP/fetch" >/dev/null 2>"$TMP/fetch.err"; echo $?)"
check "fetched: ALPHA" "ALPHA" "$(cat "$TMP/fetch/loud-a.txt" 2>/dev/null)"

"$MAPQ" rm "$E2" --quiet
out=$(gc_json)
check "once nothing refers to them, mapq gc reclaims every blob" \
    "$BLOBS $BLOBS" "$(echo "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["checked"], d["reclaimed"])')"
check "and says how many bytes went" "1" "$(echo "$out" | python3 -c 'import json, sys; print(int(json.load(sys.stdin)["bytes"] > 40))')"
check "no blob, holder set or queue entry is left" "0 0 0" \
    "$(count 'blob:*') $(count 'bh:*') $(redis_cli ZCARD "$P:bx")"
check "mapq gc says it in words too" "checked 0 blobs, reclaimed 0 (0 bytes)" "$("$MAPQ" gc 2>&1)"
"$MAPQ" gc --json --redis "unix://$TMP/none.sock" >"$TMP/e.out" 2>"$TMP/e.err"
check "gc --json, Redis unreachable: exit 3, nothing on stdout, one line on stderr" "3 0 1" \
    "$? $(wc -c <"$TMP/e.out" | tr -d ' ') $(wc -l <"$TMP/e.err" | tr -d ' ')"

# ---- mapq recover holds what it reuses ---------------------------------------------
recorded() { [ "$(redis_cli HLEN "$P:r:$1:0")" -ge 1 ]; }
has_id() { [ -n "$(exec_of "$TMP/three.err")" ]; }
inputs "$TMP/three.json" "$TMP/in/a.txt" "$TMP/in/bad.txt"
(cd "$TMP" && exec timeout -s KILL 60 "$MAPQ" run "$TMP/gcr.yaml" --inputs "$TMP/three.json" \
    >"$TMP/three.out" 2>"$TMP/three.err") &
three=$!
wait_for 20 has_id
E3=$(exec_of "$TMP/three.err")
wait_for 30 recorded "$E3"
touch "$TMP/gate"
wait "$three"
echo $? >"$TMP/three.rc"
check "a run with one failing element fails" "1" "$(cat "$TMP/three.rc")"
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" recover "$E3" >"$TMP/four.out" 2>"$TMP/four.err")
E4=$(exec_of "$TMP/four.err")
check "mapq recover makes a new execution" "1" "$([ -n "$E4" ] && [ "$E4" != "$E3" ] && echo 1)"
both=$(sorted "x:$E3" "x:$E4")
check "the recovered execution holds the results it took and its inputs" \
    "$both|$both" "$(holders "$LOUD_A")|$(holders "$A")"
"$MAPQ" rm "$E3" --quiet
check "with the first gone, mapq gc keeps what the recovery refers to" "0" "$(gc_json | field reclaimed)"
check "the recovered result's file is still in the store" "1" "$(redis_cli EXISTS "$P:blob:$LOUD_A")"
"$MAPQ" rm "$E4" --quiet
gc_json >/dev/null
check "then both gone: nothing left" "0 0" "$(count 'blob:*') $(count 'bh:*')"

# ---- references given as inputs ------------------------------------------------------
cat >"$TMP/gcd.yaml" <<'YAML'
name: gcd
inputs:
  tree: {type: dir}
tasks:
  count:
    inputs: {t: dir}
    output: int
    command: [sh, -c, 'find "$MAPQ_IN_t" -type f | wc -l']
nodes:
  c: {task: count, with: {t: $inputs.tree}}
output: $c
YAML
run five "$TMP/gc.yaml" "$TMP/in/a.txt"
E5=$(cat "$TMP/five.id")
"$MAPQ" result "$E5" --json >"$TMP/five.json"
python3 -c 'import json, sys; o = json.load(open(sys.argv[1]))[0]; json.dump({"docs": [o["loud"]]}, open(sys.argv[2], "w")); json.dump({"tree": o["tree"]}, open(sys.argv[3], "w"))' \
    "$TMP/five.json" "$TMP/ref.json" "$TMP/dref.json"
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/gc.yaml" --inputs "$TMP/ref.json" >/dev/null 2>"$TMP/six.err")
E6=$(exec_of "$TMP/six.err")
check "an output's reference given as an input is held by the new execution" \
    "1" "$(holders "$LOUD_A" | tr ' ' '\n' | grep -cx "x:$E6")"
out=$(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/gcd.yaml" --inputs "$TMP/dref.json" 2>"$TMP/six-d.err")
E6D=$(exec_of "$TMP/six-d.err")
check "a dir's reference given as an input: the task sees its files" "2" "$out"
check "and the new execution holds its manifest's files" \
    "1" "$(holders "$TOP_A" | tr ' ' '\n' | grep -cx "x:$E6D")"
# The manifest is read checked against its hash: other bytes are refused.
M=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tree"]["sha256"])' "$TMP/dref.json")
redis_cli SETRANGE "$P:blob:$M" 0 "#" >/dev/null
out=$(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/gcd.yaml" --inputs "$TMP/dref.json" 2>"$TMP/six-t.err")
check "a dir reference whose manifest was changed in Redis is refused at submit" \
    "3 mapq: \$inputs.tree: its manifest: content of mapq:sha256/$M does not match its sha256/size" \
    "$? $(head -n 1 "$TMP/six-t.err")"
"$MAPQ" rm "$E5" --quiet
"$MAPQ" rm "$E6" --quiet
"$MAPQ" rm "$E6D" --quiet
"$MAPQ" cache clear --quiet
gc_json >/dev/null
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/gc.yaml" --inputs "$TMP/ref.json" >/dev/null 2>"$TMP/seven.err")
rc=$?
check "a reference to a reclaimed blob is refused at submit, naming the element (exit 2)" \
    "2 mapq: \$inputs.docs[0]: mapq:sha256/$LOUD_A/loud-a.txt is no longer in the store (its executions and cache entries are gone)" \
    "$rc $(head -n 1 "$TMP/seven.err")"
check "nothing was submitted" "0" "$(redis_cli ZCARD "$P:execs")"

# ---- a hold for an execution still to be created ------------------------------------
redis_cli SET "$P:blob:$A" "alpha" >/dev/null
redis_cli FCALL mapq1_blob_hold 0 "$P" x:notyet 3600000 "$A" >/dev/null
check "a blob held for a grace, by an execution that does not exist yet, is kept" \
    "0 1" "$(gc_json | field reclaimed) $(redis_cli EXISTS "$P:blob:$A")"
redis_cli FCALL mapq1_blob_hold 0 "$P" x:notyet 1 "$A" >/dev/null
gone_by_gc() { [ "$(gc_json | field reclaimed)" = 1 ]; }
check "once its grace is over, it goes" "ok" "$(wait_for 5 gone_by_gc && echo ok)"

# ---- a scheduler reclaims what comes due ---------------------------------------------
redis_cli SET "$P:blob:$A" "alpha" >/dev/null
redis_cli SET "$P:blob:$B" "beta" >/dev/null
redis_cli HSET "$P:x:keeper" state succeeded >/dev/null
redis_cli FCALL mapq1_blob_hold 0 "$P" x:gone 0 "$A" >/dev/null
redis_cli FCALL mapq1_blob_hold 0 "$P" x:keeper 0 "$B" >/dev/null
redis_cli ZADD "$P:bx" 0 "$A" 0 "$B" >/dev/null # both due now
PORT=$(free_port)
"$MAPQ" scheduler --metrics "127.0.0.1:$PORT" >"$TMP/sched.log" 2>&1 &
SCHED=$!
PIDS+=("$SCHED")
a_gone() { [ "$(redis_cli EXISTS "$P:blob:$A")" = 0 ]; }
check "a scheduler reclaims a due blob that nothing holds" "ok" "$(wait_for 10 a_gone && echo ok)"
check "and keeps a due one that is held, looking at it again later" "1 1" \
    "$(redis_cli EXISTS "$P:blob:$B") $(python3 -c 'import sys; print(int(float(sys.argv[1]) > 0))' "$(redis_cli ZSCORE "$P:bx" "$B")")"
check "it logs what it reclaimed" "1" "$(grep -c 'reclaimed 1 blobs (5 bytes)' "$TMP/sched.log")"
metric() {
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$PORT/metrics" | sed -n "s/^$1 //p"
}
check "and counts it: mapq_blobs_reclaimed_total, mapq_blob_bytes_reclaimed_total" "1 5" \
    "$(metric mapq_blobs_reclaimed_total) $(metric mapq_blob_bytes_reclaimed_total)"
kill -TERM "$SCHED"
wait "$SCHED" 2>/dev/null
redis_cli DEL "$P:x:keeper" >/dev/null
gc_json >/dev/null

finish
