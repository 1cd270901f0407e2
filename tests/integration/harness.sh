# harness.sh - shared setup for mapq's integration tests.
#
# Starts a private redis-server on a unix socket in a temp dir (or uses
# MAPQ_TEST_REDIS_URL, with a namespace of its own so tests never touch
# other data), starts real mapq-agent processes, and tears everything down
# on exit. Waits are bounded polls, never fixed sleeps.
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
PIDS=()
PASSED=0
FAILED=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "${REDIS_PID:-}" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
    elif [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
        redis_cli --scan --pattern "$MAPQ_NAMESPACE:*" | while read -r k; do
            redis_cli DEL "$k" >/dev/null
        done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

redis_cli() {
    if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
        redis-cli -u "$MAPQ_TEST_REDIS_URL" "$@"
    else
        redis-cli -s "$TMP/redis.sock" "$@"
    fi
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

start_redis() {
    if [ -n "${MAPQ_TEST_REDIS_URL:-}" ]; then
        export MAPQ_REDIS_URL="$MAPQ_TEST_REDIS_URL"
        wait_for 5 redis_cli PING || { echo "external redis unreachable"; exit 1; }
        return
    fi
    redis-server --port 0 --unixsocket "$TMP/redis.sock" --save '' \
        --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    export MAPQ_REDIS_URL="unix://$TMP/redis.sock"
    wait_for 5 redis_cli PING || { echo "redis-server did not start"; cat "$TMP/redis.log"; exit 1; }
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

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        echo "ok - $1"
        PASSED=$((PASSED + 1))
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#   actual:   $3"
        FAILED=$((FAILED + 1))
    fi
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -ne 0 ]; then
        echo "# agent log tail:"; tail -n 20 "$TMP/agents.log" 2>/dev/null | sed 's/^/#   /'
        exit 1
    fi
    exit 0
}
