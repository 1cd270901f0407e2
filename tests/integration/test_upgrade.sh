#!/usr/bin/env bash
# Upgrades: the function library in Redis changes only forward. A process
# loads it when Redis has none, replaces an older revision (saying so), and
# uses a newer one as it is (saying so) instead of putting its own back; a
# short-lived CLI command never replaces it. A rolling upgrade, agent by
# agent, with a workflow running loses nothing. The newer release is the
# same library with a higher REVISION: what a newer build loads. Waits are
# bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis --own
LUA="$SRC/common/mapq_functions.lua"
own=$(sed -n 's/^local REVISION = \([0-9]*\)$/\1/p' "$LUA")

# revision_of: what FCALL_RO mapq1_version says ("missing" when Redis has
# no such function).
revision_of() {
    local v
    v=$(redis_cli FCALL_RO mapq1_version 0 2>&1)
    case $v in
    *"Function not found"*) echo missing ;;
    *) echo "$v" ;;
    esac
}
# load_revision N: loads the library as revision N; N "none" loads it as
# it was before revisions (no REVISION, no mapq1_version).
load_revision() {
    if [ "$1" = none ]; then
        sed -e '/^local REVISION = /d' \
            -e "/^redis.register_function{function_name = 'mapq1_version',/,+1d" \
            "$LUA" >"$TMP/lib.lua"
    else
        sed "s/^local REVISION = .*/local REVISION = $1/" "$LUA" >"$TMP/lib.lua"
    fi
    redis_cli -x FUNCTION LOAD REPLACE <"$TMP/lib.lua" >/dev/null
}
said() { grep -q -F -- "$2" "$1"; }

check "the library source has a revision" "1" "$([ "$own" -ge 1 ] && echo 1)"

# ---- an older library is replaced; one too old to use, by anyone ----------
oldest=$(sed -n 's/^#define MAPQ_FUNCTIONS_OLDEST *\([0-9]*\)$/\1/p' \
    "$SRC/common/mapq_redis.h")
check "the oldest revision a process can use is known" "yes" \
    "$([ "${oldest:-0}" -ge 1 ] && [ "$oldest" -le "$own" ] && echo yes)"
load_revision "$oldest"
"$MAPQ" status 0123456789ab >/dev/null 2>&1
check "a CLI command uses an older library and does not replace it" \
    "$oldest" "$(revision_of)"
load_revision none
check "the old library has no mapq1_version" "missing" "$(revision_of)"
"$MAPQ" status 0123456789ab >/dev/null 2>&1
check "a CLI command replaces a library older than revisions: it cannot use it" \
    "$own" "$(revision_of)"
load_revision none
"$AGENT" --name up-1 --slots 1 >"$TMP/up-1.log" 2>&1 &
a=$!
PIDS+=("$a")
held0="redis held revision 0 of the mapq1 functions: replaced it with this process's revision $own"
check "an agent replaces it and says so" "0" \
    "$(wait_for 10 said "$TMP/up-1.log" "$held0"; echo $?)"
check "Redis now holds this revision" "$own" "$(revision_of)"
kill -TERM "$a"
wait "$a" 2>/dev/null

# ---- a newer library is used as it is ---------------------------------------
newer=$((own + 1))
load_revision "$newer"
"$AGENT" --name up-2 --slots 2 >"$TMP/up-2.log" 2>&1 &
PIDS+=($!)
check "an older agent says it uses the newer library" "0" \
    "$(wait_for 10 said "$TMP/up-2.log" "redis holds revision $newer of the mapq1 functions, newer than this process's $own: using it"; echo $?)"
out=$("$MAPQ" run "$SRC/examples/zip.yaml" 2>"$TMP/run1.err")
check "a workflow runs on the newer library" "0 [111,122,133]" \
    "$? $(echo "$out" | tr -d ' \n')"
check "and nobody put the older one back" "$newer" "$(revision_of)"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
PIDS=()

# ---- a rolling upgrade with a workflow running ------------------------------
# Agents on revision $own run a map; the first upgraded agent loads
# revision $next as a newer build would; then each old agent is stopped
# (it drains) and an upgraded one takes its place, one at a time.
load_revision "$own"
next=$((own + 2))
# Every attempt logs "index attempt" to $TMP/attempts.
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
tasks:
  t:
    inputs: {x: int, dir: str}
    output: int
    command:
      - sh
      - -c
      - 'echo "$MAPQ_INDEX $MAPQ_ATTEMPT" >>"$MAPQ_IN_dir/attempts"; sleep 0.05; echo $MAPQ_IN_x'
nodes:
  n: {map: t, over: {x: $inputs.xs}, with: {dir: $inputs.dir}}
output: $n
EOF
N=120
"$MAPQ" run "$TMP/slow.yaml" --input "xs=[$(seq -s, 0 $((N - 1)))]" \
    --input dir="$TMP" >"$TMP/roll.out" 2>"$TMP/roll.err" &
run=$!
old=()
for i in 1 2 3; do
    "$AGENT" --name old-$i --slots 2 >"$TMP/old-$i.log" 2>&1 &
    old+=($!)
done
wait_for 10 test -s "$TMP/roll.err"
id=$(exec_of "$TMP/roll.err")
results() { redis_cli HLEN "$MAPQ_NAMESPACE:r:$id:0"; }
at_least() { [ "$(results)" -ge "$1" ]; }
wait_for 30 at_least 10
load_revision "$next"
new=()
for i in 1 2 3; do
    kill -TERM "${old[$((i - 1))]}"
    wait "${old[$((i - 1))]}" 2>/dev/null
    "$AGENT" --name new-$i --slots 2 >"$TMP/new-$i.log" 2>&1 &
    new+=($!)
    PIDS+=($!)
done
wait_for 120 exited "$run"
wait "$run"
check "rolling upgrade: the run succeeds" "0" "$?"
check "rolling upgrade: the output is complete and in order" \
    "[$(seq -s, 0 $((N - 1)))]" "$(tr -d ' \n' <"$TMP/roll.out")"
check "rolling upgrade: each result recorded once" "$N" "$(results)"
check "rolling upgrade: every subtask ran once, as its first attempt" \
    "$N $N" "$(wc -l <"$TMP/attempts") $(awk '$2 == 1' "$TMP/attempts" | wc -l)"
# Attempts run by agents named <$1>-<n>, as mapq logs lists them.
ran_by() { "$MAPQ" logs "$id" n --json | grep -o "\"agent\":\"$1-[0-9]" | wc -l; }
check "rolling upgrade: old and upgraded agents both ran subtasks" "yes yes" \
    "$([ "$(ran_by old)" -ge 10 ] && echo yes) $([ "$(ran_by new)" -ge 1 ] && echo yes)"
check "rolling upgrade: the old agents drained" "3" \
    "$(cat "$TMP"/old-*.log | grep -c 'drained; exiting')"
check "rolling upgrade: Redis holds the newest revision" "$next" "$(revision_of)"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
PIDS=()

# ---- an older library that a process may not replace ------------------------
# Its user has no FUNCTION (docs/OPERATIONS.md, "Redis users"): the agent
# and the scheduler warn and use it, sending only what that revision takes.
# Revision 16 keeps every attempt record under its subtask's own field,
# without log pages, and its mapq1_push takes indices, not body fields:
# this one is made so by taking the body fields' branch out.
sed -e "s/^local REVISION = .*/local REVISION = 16/" \
    -e "/^    if args\[6\] and string.find(args\[6\], '\/', 1, true) then\$/,/^    end\$/d" \
    "$LUA" >"$TMP/lib16.lua"
check "the older library has no body fields' branch" "1 0" \
    "$(grep -c -F "local function push(keys, args)" "$TMP/lib16.lua") $(grep -c -F "string.find(args[6], '/', 1, true)" "$TMP/lib16.lua")"
redis_cli -x FUNCTION LOAD REPLACE <"$TMP/lib16.lua" >/dev/null
redis_cli ACL SETUSER old-lib on ">pw-old-lib" "~$MAPQ_NAMESPACE:*" \
    resetchannels -@all +@read +@write +@scripting +@connection +@blocking \
    +time -@dangerous -function >/dev/null
PORT=$(free_port)
redis_cli CONFIG SET bind 127.0.0.1 >/dev/null
redis_cli CONFIG SET port "$PORT" >/dev/null
user_url="redis://old-lib:pw-old-lib@127.0.0.1:$PORT/0"
"$AGENT" --redis "$user_url" --name held-1 --slots 2 >"$TMP/held-1.log" 2>&1 &
PIDS+=($!)
check "an agent that may not replace an older library warns and uses it" "0" \
    "$(wait_for 10 said "$TMP/held-1.log" "redis holds revision 16 of the mapq1 functions"; echo $?)"
out=$(timeout -s KILL 30 "$MAPQ" run "$TMP/slow.yaml" --redis "$user_url" \
    --input "xs=[$(seq -s, 0 19)]" --input dir="$TMP" 2>"$TMP/held.err")
check "a workflow runs on it" "0 [$(seq -s, 0 19)]" "$? $(echo "$out" | tr -d ' \n')"
id=$(exec_of "$TMP/held.err")
check "its attempt records are under their subtasks' own fields" "20 0" \
    "$(redis_cli HLEN "$MAPQ_NAMESPACE:log:$id") $(redis_cli HEXISTS "$MAPQ_NAMESPACE:log:$id" 0/p0)"
check "and nobody replaced it" "16" "$(revision_of)"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
PIDS=()

# ---- older revisions as they were committed ---------------------------------
# Every revision from the oldest a process can use on serves this release:
# each is taken from this repository's history (the commit that made it),
# held for the user that may not replace it, and runs a workflow of
# commands that fail once and retry, plugins and persistent workers. A
# clone without that history (a shallow one) fails the first check here.
# lib_of REV: revision REV of the library, as the commit that made it had it.
lib_of() {
    local c
    c=$(git -C "$SRC" log --reverse --format=%H -G "^local REVISION = $1\$" \
        -- common/mapq_functions.lua | head -n 1)
    [ -n "$c" ] && git -C "$SRC" show "$c:common/mapq_functions.lua"
}
check "this repository's history holds revision $oldest (git)" "$oldest" \
    "$(lib_of "$oldest" | sed -n 's/^local REVISION = \([0-9]*\)$/\1/p')"
export PYTHONPATH="$SRC/sdk/python:$SRC/examples/workers"
cat >"$TMP/mixed.yaml" <<'EOF'
name: mixed
inputs:
  xs: {type: "list[int]"}
  dir: {type: str}
tasks:
  once:
    inputs: {x: int, dir: str}
    output: int
    retries: 2
    command:
      - sh
      - -c
      - 'f="$MAPQ_IN_dir/tried.$MAPQ_IN_x"; if [ -e "$f" ]; then echo $((MAPQ_IN_x * MAPQ_IN_x)); else : >"$f"; exit 1; fi'
  plugin:
    inputs: {x: int}
    output: int
    plugin: {library: mapq_example_plugin.so, symbol: square}
  worker:
    inputs: {x: int}
    output: int
    worker: true
    command: [python3, -m, mapq_worker, "square:square"]
nodes:
  a: {map: once, over: {x: $inputs.xs}, with: {dir: $inputs.dir}, concurrency: 3}
  b: {map: plugin, over: {x: $inputs.xs}}
  c: {map: worker, over: {x: $inputs.xs}}
output: {a: $a, b: $b, c: $c}
EOF
squares="[$(for i in $(seq 0 11); do printf '%s%d' "${sep:-}" $((i * i)); sep=,; done)]"
want="{\"a\":$squares,\"b\":$squares,\"c\":$squares}"
pages=$(sed -n 's/^#define MAPQ_FUNCTIONS_LOG_PAGES *\([0-9]*\)$/\1/p' "$SRC/common/mapq_redis.h")
fields=$(sed -n 's/^#define MAPQ_FUNCTIONS_PUSH_FIELDS *\([0-9]*\)$/\1/p' "$SRC/common/mapq_redis.h")
for rev in "$oldest" $((pages - 1)) $((fields - 1)) $((own - 1)); do
    lib_of "$rev" >"$TMP/lib-$rev.lua"
    redis_cli -x FUNCTION LOAD REPLACE <"$TMP/lib-$rev.lua" >/dev/null
    "$AGENT" --redis "$user_url" --name as-was-$rev --slots 2 \
        >"$TMP/as-was-$rev.log" 2>&1 &
    a=$!
    PIDS+=("$a")
    wait_for 10 said "$TMP/as-was-$rev.log" "redis holds revision $rev of the mapq1 functions"
    rm -rf "$TMP/tries-$rev" && mkdir "$TMP/tries-$rev"
    out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/mixed.yaml" --redis "$user_url" \
        --input "xs=[$(seq -s, 0 11)]" --input dir="$TMP/tries-$rev" \
        2>"$TMP/as-was-$rev.err")
    check "revision $rev as committed: a workflow of retried commands, plugins and workers runs on it" \
        "0 $want" "$? $(echo "$out" | tr -d ' \n')"
    check "revision $rev as committed: nobody replaced it" "$rev" "$(revision_of)"
    kill -TERM "$a"
    wait "$a" 2>/dev/null
done
PIDS=()

# ---- a library too old to use, that a process may not replace ---------------
# The revision before the oldest lacks functions a process calls: the
# agent says why it cannot use Redis and keeps trying, mapq run exits 3
# saying so, and once an operator loads this release's, the agent works.
too_old=$((oldest - 1))
lib_of "$too_old" >"$TMP/lib-$too_old.lua"
redis_cli -x FUNCTION LOAD REPLACE <"$TMP/lib-$too_old.lua" >/dev/null
check "revision $too_old as committed is held" "$too_old" "$(revision_of)"
"$AGENT" --redis "$user_url" --name too-old --slots 2 >"$TMP/too-old.log" 2>&1 &
PIDS+=($!)
why="redis holds revision $too_old of the mapq1 functions, older than $oldest, the oldest this process can use, and it may not replace it"
check "an agent says why it cannot use a library too old for it" "0" \
    "$(wait_for 10 said "$TMP/too-old.log" "$why"; echo $?)"
timeout -s KILL 30 "$MAPQ" run "$TMP/slow.yaml" --redis "$user_url" \
    --input "xs=[1]" --input dir="$TMP" >"$TMP/too-old.out" 2>"$TMP/too-old.err"
rc=$?
check "mapq run on it exits 3 with one line saying why" "3 1 1" \
    "$rc $(grep -c -F "$why" "$TMP/too-old.err") $(grep -c . "$TMP/too-old.err")"
check "nothing replaced it" "$too_old" "$(revision_of)"
"$MAPQ" setup >/dev/null 2>&1
check "mapq setup as a user that may replaces it" "$own" "$(revision_of)"
out=$(timeout -s KILL 30 "$MAPQ" run "$TMP/slow.yaml" --redis "$user_url" \
    --input "xs=[$(seq -s, 0 4)]" --input dir="$TMP" 2>"$TMP/too-old2.err")
check "then the same agent runs a workflow" "0 [0,1,2,3,4]" \
    "$? $(echo "$out" | tr -d ' \n')"

finish
