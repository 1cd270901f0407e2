#!/usr/bin/env bash
# container-test.sh - mapq against Redis in a container, with agents in
# containers from the image of ./Dockerfile:
#   1. builds the mapq image and a Redis image (debian:bookworm-slim and
#      Debian's redis-server; the official redis:7 when it is at hand);
#   2. starts Redis in a container with a password, loads the function
#      library as its admin (`mapq setup`) and runs the whole integration
#      suite on this host against it (MAPQ_TEST_REDIS_URL) as the
#      least-privilege user that docs/OPERATIONS.md ("Redis users") gives
#      schedulers and agents, its ACL line read from that file;
#   3. starts three agents in containers against the same Redis, runs the
#      examples and a larger map from this host, checks the image's health
#      check, its user, and that `podman stop` drains an agent (exit 0, its
#      subtask finished, the run complete);
#   4. removes every container and image it made.
# Needs root (podman). Prints ok / not ok per check; exits 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/container-lib.sh

need_podman
base_image
scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null

run_id=$$
MAPQ_IMAGE=localhost/mapq:ct-$run_id
REDIS_IMAGE=localhost/mapq-ct-redis:$run_id
REDIS_CT=mapq-ct-redis-$run_id
NS=ct$run_id
TMP=$(mktemp -d /tmp/mapq-ct-XXXXXX)
AGENTS=()
made_images=()
failed=0

cleanup() {
    local c
    for c in "${AGENTS[@]}" "$REDIS_CT"; do
        podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    for c in "${made_images[@]}"; do
        podman rmi -f "$c" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== images"
podman_build -q -t "$MAPQ_IMAGE" . >/dev/null
made_images+=("$MAPQ_IMAGE")
echo "# $MAPQ_IMAGE: $(podman image inspect --format '{{.Size}}' "$MAPQ_IMAGE" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
if podman image exists docker.io/library/redis:7; then
    REDIS_IMAGE=docker.io/library/redis:7
else
    redis_image "$REDIS_IMAGE"
    made_images+=("$REDIS_IMAGE")
fi

echo "== redis in a container"
port=$(free_port)
pass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
podman_run -d --name "$REDIS_CT" --network host "$REDIS_IMAGE" \
    redis-server --port "$port" --bind 127.0.0.1 --requirepass "$pass" \
    --save '' --appendonly no >/dev/null
rcli() { REDISCLI_AUTH=$pass redis-cli -h 127.0.0.1 -p "$port" "$@"; }
pong() { [ "$(rcli PING 2>&1)" = PONG ]; }
wait_for 30 pong || { podman logs "$REDIS_CT"; exit 1; }
URL="redis://:$pass@127.0.0.1:$port"

echo "== the integration suite against it, as the documented ACL user"
# The documented line, for the suite's namespaces (it<pid>) and a
# password of its own.
upass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
acl=$(sed -n 's/^ *ACL SETUSER mapq-sched /mapq-sched /p' docs/OPERATIONS.md)
check "docs/OPERATIONS.md gives the scheduler user's ACL line" "yes" \
    "$([ -n "$acl" ] && echo yes || echo no)"
acl=${acl//\~P:\*/\~it*}
set -f # one argument per rule, as ACL SETUSER takes them, none a glob
# shellcheck disable=SC2086
rcli ACL SETUSER ${acl//SCHED-PASSWORD/$upass} >/dev/null
set +f
# mapq never sends MULTI; integration.loss does, to expire and reap a
# lease in one step.
rcli ACL SETUSER mapq-sched +multi +exec >/dev/null
check "the user is made" "on" "$(rcli ACL GETUSER mapq-sched | sed -n '2p')"
check "mapq setup as the admin loads the library" "0" \
    "$(./build/mapq setup --redis "$URL/1" >/dev/null 2>&1; echo $?)"
set +e
(cd build && MAPQ_TEST_REDIS_URL="redis://mapq-sched:$upass@127.0.0.1:$port/1" \
    ctest -L integration -j"$((jobs + 1))" --output-on-failure >"$TMP/ctest.log" 2>&1)
rc=$?
set -e
tail -n 4 "$TMP/ctest.log"
[ "$rc" -eq 0 ] || grep -E 'not ok|Failed|\*\*\*' "$TMP/ctest.log" | head -40
check "integration suite against redis in a container" "0" "$rc"
check "the suite used it: a test says so" "yes" \
    "$(grep -q "# redis: redis://mapq-sched:\*\*\*@127.0.0.1:$port/1 (shared)" build/Testing/Temporary/LastTest.log && echo yes || echo no)"
check "no key left behind in db 1" "0" "$(rcli -n 1 DBSIZE)"

echo "== agents in containers"
export MAPQ_REDIS_URL="$URL/2" MAPQ_NAMESPACE="$NS"
for i in 1 2 3; do
    AGENTS+=("mapq-ct-agent-$run_id-$i")
    podman_run -d --name "mapq-ct-agent-$run_id-$i" --network host \
        -e MAPQ_REDIS_URL -e MAPQ_NAMESPACE "$MAPQ_IMAGE" \
        --name "ct-agent-$i" --slots 2 --grace 60s >/dev/null
done
agents_up() { [ "$(./build/mapq agents 2>/dev/null | grep -c '^ct-agent-')" = 3 ]; }
wait_for 30 agents_up
check "three agents in containers register" "3" \
    "$(./build/mapq agents 2>/dev/null | grep -c '^ct-agent-')"
check "anomalies.yaml on containerised agents" "5" \
    "$(timeout 120 ./build/mapq run examples/anomalies.yaml 2>"$TMP/run1.err")"
check "zip.yaml on containerised agents" "[111,122,133]" \
    "$(timeout 120 ./build/mapq run examples/zip.yaml 2>"$TMP/run2.err" | tr -d ' \n')"

cat >"$TMP/wide.yaml" <<'EOF'
name: wide
inputs:
  xs: {type: "list[int]"}
tasks:
  sq: {inputs: {x: int}, output: int, command: [sh, -c, 'echo $(($MAPQ_IN_x * $MAPQ_IN_x))']}
nodes:
  n: {map: sq, over: {x: $inputs.xs}}
output: $n
EOF
want=$(python3 -c 'print([i * i for i in range(300)])' | tr -d ' ')
xs=$(python3 -c 'print(list(range(300)))' | tr -d ' ')
check "a 300-element map on containerised agents" "$want" \
    "$(timeout 180 ./build/mapq run "$TMP/wide.yaml" --input "xs=$xs" 2>"$TMP/run3.err" | tr -d ' \n')"

healthy() { podman healthcheck run "${AGENTS[0]}" >/dev/null 2>&1; }
wait_for 30 healthy
check "the image's health check: healthy" "0" "$(podman healthcheck run "${AGENTS[0]}" >/dev/null 2>&1; echo $?)"
check "agents run as the image's user (uid 10001)" "10001" \
    "$(podman exec "${AGENTS[1]}" id -u)"

# Drain: a subtask of 3 s runs on agent 1 when it is stopped; it finishes
# there (the agent waits for it within --grace), the agent exits 0, and the
# run completes.
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  xs: {type: "list[int]"}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 3; echo "$MAPQ_IN_x"']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
timeout 120 ./build/mapq run "$TMP/slow.yaml" --input 'xs=[1,2,3,4,5,6]' \
    >"$TMP/slow.out" 2>"$TMP/slow.err" &
run_pid=$!
# busy: all six leased (the fields of each $NS:lease:<agent> of
# $NS:leases; KEYS is a dangerous command).
busy() {
    [ "$(rcli -n 2 EVAL "local n = 0 for _, a in ipairs(redis.call('ZRANGE', ARGV[1] .. ':leases', 0, -1)) do n = n + redis.call('HLEN', ARGV[1] .. ':lease:' .. a) end return n" 0 "$NS")" -ge 6 ]
}
wait_for 30 busy
podman stop -t 60 "${AGENTS[0]}" >/dev/null
check "podman stop: the agent drains and exits 0" "0" \
    "$(podman inspect --format '{{.State.ExitCode}}' "${AGENTS[0]}")"
check "podman stop: the agent said it drained" "1" \
    "$(podman logs "${AGENTS[0]}" 2>&1 | grep -c 'drained; exiting')"
wait "$run_pid"
check "the run goes on and completes: exit 0" "0" "$?"
check "the run's output is complete" "[1,2,3,4,5,6]" "$(tr -d ' \n' <"$TMP/slow.out")"
check "no subtask was interrupted: none retried" "0" \
    "$(grep -c -i 'interrupt' "$TMP/slow.err")"

if [ "$failed" -ne 0 ]; then
    echo "# container test: $failed failed"
    for c in "${AGENTS[@]}"; do podman logs --tail 20 "$c" 2>&1 | sed "s/^/# $c: /"; done
    exit 1
fi
echo "# container test: all passed"
