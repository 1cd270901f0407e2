# harness.sh - shared setup for mapq's integration tests.
#
# Starts a private redis-server on a unix socket in a temp dir, or uses the
# Redis of MAPQ_TEST_REDIS_URL (any URL mapq takes: redis://[user][:pass]@
# host[:port][/db] or unix:///path[?db=N]) with a namespace of its own, so
# tests never touch other data and leave no key behind; starts real
# mapq-agent processes, and tears everything down on exit. Tests that
# change the server itself (CONFIG SET, ACL, FLUSHALL, a restart) ask for
# a private one with start_redis --own. Waits are bounded polls, never
# fixed sleeps.
set -u

BUILD=${MAPQ_BUILD_DIR:?MAPQ_BUILD_DIR must name the build directory}
SRC=${MAPQ_SOURCE_DIR:?MAPQ_SOURCE_DIR must name the source directory}
MAPQ="$BUILD/mapq"
AGENT="$BUILD/mapq-agent"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mapq-it-XXXXXX")
# Agents' working directories live in here too, so that those of agents a
# test kills with -9 go with the rest.
export TMPDIR="$TMP"
export MAPQ_NAMESPACE="it$$"
# A second namespace a test may use (agents and runs apart from its
# first): within the test ACL's key pattern, and cleaned up too.
NS2="${MAPQ_NAMESPACE}b"
PIDS=()
PASSED=0
FAILED=0

cleanup() {
    local rc=$? p left ns
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "${REDIS_PID:-}" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
    elif [ "${REDIS_SHARED:-0}" = 1 ]; then
        # The test's keys go; any left is a failure of the run.
        for ns in "$MAPQ_NAMESPACE" ${NS2:+"$NS2"}; do
            redis_cli --scan --pattern "$ns:*" |
                xargs -r -d '\n' -n 500 redis-cli --no-auth-warning \
                    "${REDIS_CLI_ARGS[@]}" DEL >/dev/null
            left=$(redis_cli --scan --pattern "$ns:*" | wc -l)
            if [ "$left" -ne 0 ]; then
                echo "not ok - $left keys of $ns left in the shared redis"
                rc=1
            fi
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

# redis_url_args URL: prints, one per line, the redis-cli arguments that
# reach URL (the password as "--pass P"), or fails on a URL it cannot read.
redis_url_args() {
    python3 - "$1" <<'PY'
import sys
from urllib.parse import urlsplit, parse_qs
u = urlsplit(sys.argv[1])
args = []
if u.scheme == "unix":
    args += ["-s", u.path]
    db = parse_qs(u.query).get("db", ["0"])[0]
elif u.scheme == "redis":
    args += ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 6379)]
    db = u.path.lstrip("/") or "0"
else:
    sys.exit("harness: cannot use redis URL scheme %r" % u.scheme)
if u.username:
    args += ["--user", u.username]
if u.password is not None:
    args += ["--pass", u.password]
args += ["-n", db]
print("\n".join(args))
PY
}

# The redis-cli arguments for the Redis the test uses (set by start_redis).
REDIS_CLI_ARGS=()

redis_cli() {
    redis-cli --no-auth-warning "${REDIS_CLI_ARGS[@]}" "$@"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds.
wait_for() {
    local limit=$(( $1 * 50 )) i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge "$limit" ] && return 1
        sleep 0.02
    done
}

# start_redis [--own]: the Redis of MAPQ_TEST_REDIS_URL when it is set
# (shared), else, or with --own, a private redis-server ($REDIS_PID) on a
# unix socket. Sets MAPQ_REDIS_URL and REDIS_CLI_ARGS, and says which.
start_redis() {
    local args
    if [ -n "${MAPQ_TEST_REDIS_URL:-}" ] && [ "${1:-}" != --own ]; then
        args=$(redis_url_args "$MAPQ_TEST_REDIS_URL") || exit 1
        mapfile -t REDIS_CLI_ARGS <<<"$args"
        export MAPQ_REDIS_URL="$MAPQ_TEST_REDIS_URL"
        REDIS_SHARED=1
        wait_for 5 redis_pong || {
            echo "not ok - redis of MAPQ_TEST_REDIS_URL: $(redis_cli PING 2>&1 | head -2 | tr '\n' ' ')"
            exit 1
        }
        echo "# redis: $(redis_shown "$MAPQ_TEST_REDIS_URL") (shared), redis_version $(redis_cli INFO server | sed -n 's/^redis_version:\(.*\)\r$/\1/p'), namespace $MAPQ_NAMESPACE"
        return
    fi
    redis-server --port 0 --unixsocket "$TMP/redis.sock" --save '' \
        --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    REDIS_CLI_ARGS=(-s "$TMP/redis.sock")
    export MAPQ_REDIS_URL="unix://$TMP/redis.sock"
    wait_for 5 redis_pong || { echo "redis-server did not start"; cat "$TMP/redis.log"; exit 1; }
    echo "# redis: a private redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') on $MAPQ_REDIS_URL"
}

# redis_pong: whether Redis answers PING (redis-cli exits 0 on NOAUTH too).
redis_pong() { [ "$(redis_cli PING 2>&1)" = PONG ]; }

# redis_shown URL: URL with its password hidden.
redis_shown() {
    echo "$1" | sed -E 's#(://[^:@/]*:)[^@/]*@#\1***@#'
}

# free_port: a TCP port of the loopback that was free a moment ago (for a
# redis-server with a password: unix URLs take none). Callers retry on a
# clash.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_agents N [extra args]: starts N agents with 2 slots each.
start_agents() {
    local n=$1 i
    shift
    for i in $(seq 1 "$n"); do
        "$AGENT" --name "it-agent-$i" --slots 2 "$@" >>"$TMP/agents.log" 2>&1 &
        PIDS+=($!)
    done
}

# exited PID: whether process PID has ended (a zombie not yet waited for
# counts as ended).
exited() {
    ! kill -0 "$1" 2>/dev/null ||
        [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# exec_of FILE: the execution id that mapq printed to FILE (its stderr).
exec_of() { sed -n 's/^mapq: execution \([0-9a-f]*\)$/\1/p' "$1" | head -n 1; }

# queued_refs QUEUE CLS: the refs waiting on queue QUEUE, class CLS (nc,
# np, ic or ip), of every execution, one per line (each execution's in
# order); queue_len QUEUE CLS: how many.
queued_refs() {
    local l
    redis_cli --scan --pattern "$MAPQ_NAMESPACE:q:$1:$2:*" |
        while read -r l; do redis_cli LRANGE "$l" 0 -1; done
}
queue_len() { queued_refs "$1" "$2" | wc -l | tr -d ' '; }

# lease_refs [NS]: the refs agents hold leases on (the fields of every
# NS:lease:<agent>, found by SCAN: KEYS is a dangerous command the
# documented ACL users may not run; NS defaults to $MAPQ_NAMESPACE), one per
# line; lease_count [NS]: how many.
lease_refs() {
    local k
    redis_cli --scan --pattern "${1:-$MAPQ_NAMESPACE}:lease:*" |
        while read -r k; do redis_cli HKEYS "$k"; done
}
lease_count() { lease_refs "$@" | awk 'NF { n++ } END { print n + 0 }'; }

# list_input FILE NAME VALUE...: writes the inputs file {"NAME": [VALUE,
# ...]} (each VALUE a string: a path, a URL) to FILE.
list_input() {
    python3 -c 'import json, sys; json.dump({sys.argv[2]: sys.argv[3:]}, open(sys.argv[1], "w"))' "$@"
}

# shellcheck source=../check.sh
. "$SRC/tests/check.sh"

finish() {
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -ne 0 ]; then
        echo "# agent log tail:"; tail -n 20 "$TMP/agents.log" 2>/dev/null | sed 's/^/#   /'
        exit 1
    fi
    exit 0
}
