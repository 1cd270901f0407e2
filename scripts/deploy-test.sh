#!/usr/bin/env bash
# deploy-test.sh - the package and the files of deploy/, as a user runs
# them. First the .deb (cpack) installed with apt in the pristine Debian 12
# image: its programs, pkg-config file, unit and a local-mode run. Then
# deploy/compose.yaml, as a user runs it: Debian's
# docker-compose driving podman (through `podman system service`), with
# the images of ./Dockerfile and of Debian's redis-server:
#   1. up with 2 agents: Redis with AOF and a password, the scheduler, the
#      agents register; a workflow runs from this host; a submitted one is
#      driven by the compose scheduler;
#   2. scale to 3 agents;
#   3. `stop agent` while subtasks run: every agent drains and exits 0, the
#      run completes, nothing is interrupted, retried or failed;
#   4. deploy/k8s/agent.yaml under `podman kube play` (the Deployment's
#      pods, host networking, the same Redis): `podman pod stop` sends
#      SIGTERM with terminationGracePeriodSeconds: the agents drain the same;
#   5. deploy/mapq-agent.service and mapq-scheduler.service under a real
#      systemd (PID 1 of a privileged container): start waits for READY=1,
#      `systemctl stop` drains the agent, the unit ends with success;
#   6. down -v: nothing is left.
# Needs root (podman). Prints ok / not ok per check; exits 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/container-lib.sh

need_podman
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "installing: docker-compose"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends docker-compose >/dev/null
fi
base_image
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mapq mapq-agent >/dev/null

run_id=$$
TMP=$(mktemp -d /tmp/mapq-dt-XXXXXX)
export MAPQ_IMAGE=localhost/mapq:dt-$run_id
export MAPQ_REDIS_IMAGE=localhost/mapq-dt-redis:$run_id
export MAPQ_REDIS_PASSWORD
MAPQ_REDIS_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PROJECT=mapqdt$run_id
SD_IMAGE=localhost/mapq-dt-systemd:$run_id
SD_CT=mapq-dt-systemd-$run_id
service_pid=
failed=0

compose() {
    DOCKER_HOST="unix://$TMP/podman.sock" COMPOSE_PROJECT_NAME=$PROJECT \
        docker-compose -f deploy/compose.yaml "$@"
}
# Exits with the script's status, whatever the teardown meets.
cleanup() {
    local rc=$?
    set +e
    compose down -v -t 1 >/dev/null 2>&1
    [ -f "$TMP/agent.yaml" ] && podman kube down "$TMP/agent.yaml" >/dev/null 2>&1
    [ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null
    podman rm -f -t 0 "$SD_CT" >/dev/null 2>&1 || true
    podman rmi -f "$SD_IMAGE" "$MAPQ_IMAGE" "$MAPQ_REDIS_IMAGE" >/dev/null 2>&1 || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

echo "== images"
podman_build -q -t "$MAPQ_IMAGE" . >/dev/null
redis_image "$MAPQ_REDIS_IMAGE"

echo "== the .deb in a pristine Debian 12"
(cd build && cpack -G DEB >"$TMP/cpack.log" 2>&1) || { cat "$TMP/cpack.log"; exit 1; }
deb=$(ls build/mapq_*_*.deb | head -n 1)
check "cpack -G DEB builds a package" yes "$([ -s "$deb" ] && echo yes || echo no)"
check "it holds the programs, man pages, units, header and pkg-config file" 7 \
    "$(dpkg-deb -c "$deb" | grep -c -E '/usr/bin/mapq$|/usr/bin/mapq-agent$|man1/mapq.1$|man1/mapq-agent.1$|system/mapq-agent.service$|include/mapq/plugin.h$|pkgconfig/mapq-plugin.pc$')"
check "and no test, benchmark or test plugin" 0 \
    "$(dpkg-deb -c "$deb" | grep -c -E 'test_|mapq-bench|\.so$')"
# The base image alone, as debootstrap made it: apt resolves the package's
# dependencies from the Debian mirror, and its Recommends (redis-server).
podman_run --rm --network host -v "$PWD/$deb:/tmp/mapq.deb:ro" \
    -v "$PWD/examples:/examples:ro" "$BASE_IMAGE" bash -c '
    set -e
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/mapq.deb \
        pkg-config >/dev/null 2>&1
    echo "version: $(mapq --version) / $(mapq-agent --version)"
    echo "pkg-config: $(pkg-config --modversion mapq-plugin)" \
        "$(pkg-config --variable=includedir mapq-plugin)"
    echo "unit: $(grep "^ExecStart=" /usr/lib/systemd/system/mapq-agent.service)"
    cd /tmp && echo "run: $(timeout 120 mapq run /examples/anomalies.yaml --agents 2 2>/tmp/run.err)"
' >"$TMP/deb.out" 2>"$TMP/deb.err" || { tail -n 20 "$TMP/deb.err"; }
check "apt installs it: both programs run" \
    "version: mapq 0.1.0 (protocol 1) / mapq-agent 0.1.0 (protocol 1)" \
    "$(grep '^version:' "$TMP/deb.out")"
check "pkg-config finds mapq-plugin" "pkg-config: 0.1.0 /usr/share/pkgconfig/../../include" \
    "$(grep '^pkg-config:' "$TMP/deb.out")"
check "the installed unit starts /usr/bin/mapq-agent" \
    'unit: ExecStart=/usr/bin/mapq-agent $MAPQ_AGENT_ARGS' "$(grep '^unit:' "$TMP/deb.out")"
check "mapq run works there in local mode (redis-server came as recommended)" \
    "run: 5" "$(grep '^run:' "$TMP/deb.out")"

echo "== compose up"
# The containers the service starts get what podman_run gives its own:
# runc where installed, and limits within the host's hard ones.
{
    echo '[containers]'
    echo 'default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]'
    if command -v runc >/dev/null 2>&1; then
        echo '[engine]'
        echo "runtime = \"$(command -v runc)\""
    fi
} >"$TMP/containers.conf"
CONTAINERS_CONF="$TMP/containers.conf" podman system service --time=0 \
    "unix://$TMP/podman.sock" >"$TMP/service.log" 2>&1 &
service_pid=$!
wait_for 30 test -S "$TMP/podman.sock"
export MAPQ_REDIS_PORT
MAPQ_REDIS_PORT=$(free_port)
export MAPQ_REDIS_URL="redis://:$MAPQ_REDIS_PASSWORD@127.0.0.1:$MAPQ_REDIS_PORT"
export MAPQ_NAMESPACE=mapq
compose up -d --scale agent=2 >"$TMP/up.log" 2>&1 ||
    { cat "$TMP/up.log"; exit 1; }
agents() { ./build/mapq agents 2>/dev/null | awk 'NR > 1' | wc -l; }
agents_are() { [ "$(agents)" = "$1" ]; }
wait_for 60 agents_are 2 || true
check "up: two agents register" 2 "$(agents)"
check "up: redis keeps an append-only file" "yes" \
    "$(REDISCLI_AUTH=$MAPQ_REDIS_PASSWORD redis-cli -p "$MAPQ_REDIS_PORT" \
        CONFIG GET appendonly | tail -n 1)"
check "up: redis wants its password" "1" \
    "$(redis-cli -p "$MAPQ_REDIS_PORT" PING 2>&1 | grep -c NOAUTH)"
check "a workflow from this host runs on the compose agents" "5" \
    "$(timeout 120 ./build/mapq run examples/anomalies.yaml 2>"$TMP/run1.err")"
id=$(./build/mapq submit examples/zip.yaml 2>"$TMP/submit.err")
finished() { ./build/mapq status "$id" | grep -q "execution $id: succeeded"; }
wait_for 60 finished || true
check "the compose scheduler drives a submitted execution" "[111,122,133]" \
    "$(./build/mapq result "$id" 2>&1 | tr -d ' \n')"

echo "== scale"
compose up -d --scale agent=3 >"$TMP/scale.log" 2>&1 ||
    { cat "$TMP/scale.log"; exit 1; }
wait_for 60 agents_are 3 || true
check "scale: three agents" 3 "$(agents)"

echo "== stop agent: they drain"
# Each subtask sleeps 8 s: long enough to be running still when a loaded
# host gets round to `compose stop`, well under the 45 s grace.
cat >"$TMP/slow.yaml" <<'EOF'
name: slow
inputs:
  xs: {type: "list[int]"}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 8; echo "$MAPQ_IN_x"']}
nodes:
  n: {map: nap, over: {x: $inputs.xs}}
output: $n
EOF
timeout 180 ./build/mapq run "$TMP/slow.yaml" --input 'xs=[1,2,3,4,5,6]' \
    >"$TMP/slow.out" 2>"$TMP/slow.err" &
run_pid=$!
# leased_at_least N: agents hold N leases or more (the fields of each
# mapq:lease:<agent> of mapq:leases; KEYS is a dangerous command).
leased_at_least() {
    [ "$(REDISCLI_AUTH=$MAPQ_REDIS_PASSWORD redis-cli -p "$MAPQ_REDIS_PORT" \
        EVAL "local n = 0 for _, a in ipairs(redis.call('ZRANGE', ARGV[1] .. ':leases', 0, -1)) do n = n + redis.call('HLEN', ARGV[1] .. ':lease:' .. a) end return n" 0 mapq)" -ge "$1" ]
}
leased() { leased_at_least 6; }
check "all six subtasks leased before the stop" 0 \
    "$(wait_for 60 leased; echo $?)"
start=$(date +%s)
compose stop agent >"$TMP/stop.log" 2>&1
check "stop: it took under the 45 s grace (the agents drained)" "yes" \
    "$([ $(($(date +%s) - start)) -lt 40 ] && echo yes || echo no)"
codes=$(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=agent" \
    --format '{{.ExitCode}}' | sort | uniq -c | tr -s ' ' | sed 's/^ //')
check "stop: every agent exits 0" "3 0" "$codes"
drained=0
held=0
for c in $(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=agent" --format '{{.Names}}'); do
    drained=$((drained + $(podman logs "$c" 2>&1 | grep -c 'drained; exiting')))
    n=$(podman logs "$c" 2>&1 |
        sed -n 's/.*stopping: no new subtasks; \([0-9]*\) running.*/\1/p')
    held=$((held + ${n:-0}))
done
check "stop: subtasks were running when the agents got SIGTERM" yes \
    "$([ "$held" -ge 1 ] && echo yes || echo "no ($held)")"
check "stop: every agent said it drained" 3 "$drained"
rc=0
wait "$run_pid" || rc=$?
check "the run completes: exit 0" 0 "$rc"
check "the run's output is complete" "[1,2,3,4,5,6]" "$(tr -d ' \n' <"$TMP/slow.out")"
check "each subtask ran once and succeeded: nothing interrupted or retried" \
    "6 6" "$(./build/mapq logs "$(sed -n 's/^mapq: execution //p' "$TMP/slow.err" | head -1)" n 2>&1 |
        awk '{ n++ } / attempt 1: .*, SUCCEEDED$/ { ok++ } END { print n + 0, ok + 0 }')"

echo "== deploy/k8s: what ties the manifests together"
python3 - deploy/k8s/*.yaml >"$TMP/k8s.txt" 2>&1 <<'PY' || true
import sys, yaml
docs = {}
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        docs[(d["kind"], d["metadata"]["name"])] = d
def labels(kind, name):
    return docs[(kind, name)]["spec"]["template"]["metadata"]["labels"]
agent = docs[("Deployment", "mapq-agent")]["spec"]
pdb = docs[("PodDisruptionBudget", "mapq-agent")]["spec"]
keda = docs[("ScaledObject", "mapq-agent")]["spec"]
sched = docs[("Deployment", "mapq-scheduler")]["spec"]
redis = docs[("Service", "redis")]["spec"]
c = agent["template"]["spec"]["containers"][0]
print("pdb selects the agents:",
      pdb["selector"]["matchLabels"].items() <= labels("Deployment", "mapq-agent").items())
print("keda scales the agent Deployment:", keda["scaleTargetRef"]["name"] == "mapq-agent")
print("keda asks for mapq_queue_length:", "mapq_queue_length" in keda["triggers"][0]["metadata"]["query"])
print("agent liveness is --check-health:", "--check-health" in c["livenessProbe"]["exec"]["command"])
print("redis Service selects the StatefulSet:",
      redis["selector"].items() <= labels("StatefulSet", "redis").items())
print("scheduler runs mapq scheduler:",
      sched["template"]["spec"]["containers"][0]["command"][-1] == "scheduler")
PY
for q in "pdb selects the agents" "keda scales the agent Deployment" \
    "keda asks for mapq_queue_length" "agent liveness is --check-health" \
    "redis Service selects the StatefulSet" "scheduler runs mapq scheduler"; do
    check "k8s: $q" True "$(sed -n "s/^$q: //p" "$TMP/k8s.txt")"
done

echo "== deploy/k8s/agent.yaml under podman kube play: pods drain"
# The Deployment as podman runs it: the image is this test's, the Redis URL
# a literal (podman 4.3 cannot read Kubernetes secrets), host networking
# (so no port list, and no metrics port: two pods would share it).
python3 - "$MAPQ_IMAGE" "$MAPQ_REDIS_URL" deploy/k8s/agent.yaml \
    >"$TMP/agent.yaml" <<'PY'
import sys
image, url, path = sys.argv[1:]
text = open(path).read()
ref = """valueFrom:
                secretKeyRef: {name: mapq-redis, key: url}"""
ports = """          ports:
            - {name: metrics, containerPort: 9100}
"""
assert ref in text and ports in text
assert "registry.example.com/mapq:0.1.0" in text
metrics = ',\n                 --metrics, ":9100"]'
assert metrics in text
print(text.replace(ref, 'value: "%s"' % url).replace(ports, "")
      .replace(metrics, "]")
      .replace("registry.example.com/mapq:0.1.0", image))
PY
CONTAINERS_CONF="$TMP/containers.conf" podman kube play --network host \
    "$TMP/agent.yaml" >"$TMP/play.log" 2>&1 || { cat "$TMP/play.log"; exit 1; }
pods=$(podman pod ps --filter name=mapq-agent-pod --format '{{.Name}}')
wait_for 60 agents_are 2 || true
check "kube play: the Deployment's two agents register" 2 "$(agents)"
timeout 180 ./build/mapq run "$TMP/slow.yaml" --input 'xs=[1,2,3,4,5,6]' \
    >"$TMP/slow2.out" 2>"$TMP/slow2.err" &
run_pid=$!
check "all six subtasks leased before the stop" 0 \
    "$(wait_for 60 leased; echo $?)"
# As the kubelet does: SIGTERM, and SIGKILL only after the pod's
# terminationGracePeriodSeconds (podman 4.3 does not read it: say it).
grace=$(sed -n 's/^ *terminationGracePeriodSeconds: \([0-9]*\)$/\1/p' \
    deploy/k8s/agent.yaml)
check "agent.yaml: terminationGracePeriodSeconds above the agents' --grace 30s" \
    yes "$([ "${grace:-0}" -gt 30 ] && echo yes || echo no)"
start=$(date +%s)
# shellcheck disable=SC2086
podman pod stop -t "$grace" $pods >/dev/null
check "pod stop: the agents drained well within the grace" yes \
    "$([ $(($(date +%s) - start)) -lt 30 ] && echo yes || echo no)"
codes=$(for p in $pods; do
    podman ps -a --filter "pod=$p" --format '{{.Names}} {{.ExitCode}}' |
        grep -v infra | awk '{ print $2 }'
done | sort | uniq -c | tr -s ' ' | sed 's/^ //')
check "pod stop: both agents exit 0" "2 0" "$codes"
rc=0
wait "$run_pid" || rc=$?
check "the run completes: exit 0" 0 "$rc"
check "the run's output is complete" "[1,2,3,4,5,6]" "$(tr -d ' \n' <"$TMP/slow2.out")"
check "each subtask ran once and succeeded: nothing interrupted or retried" \
    "6 6" "$(./build/mapq logs "$(sed -n 's/^mapq: execution //p' "$TMP/slow2.err" | head -1)" n 2>&1 |
        awk '{ n++ } / attempt 1: .*, SUCCEEDED$/ { ok++ } END { print n + 0, ok + 0 }')"
CONTAINERS_CONF="$TMP/containers.conf" podman kube down "$TMP/agent.yaml" \
    >/dev/null 2>&1
check "kube down: no pod is left" 0 \
    "$(podman pod ps --filter name=mapq-agent-pod -q | wc -l)"

echo "== deploy/*.service under systemd: the agent drains on systemctl stop"
# systemd as PID 1 of a container (privileged: the units' DynamicUser and
# PrivateTmp need namespaces), the image's binaries, the units as shipped.
podman_build -q -t "$SD_IMAGE" -f - . >/dev/null <<EOF
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        systemd systemd-sysv libhiredis0.14 libmsgpackc2 libevent-2.1-7 \
        libjansson4 libyajl2 libssl3 libyaml-0-2 libsystemd0 libcurl4 >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY --from=$MAPQ_IMAGE /usr/local/bin/ /usr/local/bin/
CMD ["/sbin/init"]
EOF
podman_run -d --privileged --systemd=always --network host --name "$SD_CT" \
    "$SD_IMAGE" >/dev/null
sd() { podman exec "$SD_CT" "$@"; }
booted() { sd systemctl is-system-running | grep -q -E '^(running|degraded)$'; }
wait_for 60 booted || true
podman cp deploy/mapq-agent.service "$SD_CT:/etc/systemd/system/"
podman cp deploy/mapq-scheduler.service "$SD_CT:/etc/systemd/system/"
sd systemctl daemon-reload
printf 'MAPQ_REDIS_URL=%s\nMAPQ_AGENT_ARGS=--slots 2 --name sd-agent\n' \
    "$MAPQ_REDIS_URL" | podman exec -i "$SD_CT" sh -c 'cat >/etc/default/mapq-agent'
printf 'MAPQ_REDIS_URL=%s\n' "$MAPQ_REDIS_URL" |
    podman exec -i "$SD_CT" sh -c 'cat >/etc/default/mapq-scheduler'
check "systemctl start mapq-agent returns once the agent is ready" 0 \
    "$(timeout 60 podman exec "$SD_CT" systemctl start mapq-agent; echo $?)"
check "... and it has registered by then (Type=notify)" 1 \
    "$(./build/mapq agents 2>/dev/null | grep -c '^sd-agent ')"
check "systemctl start mapq-scheduler: active" active \
    "$(timeout 60 podman exec "$SD_CT" systemctl start mapq-scheduler; sd systemctl is-active mapq-scheduler)"
timeout 180 ./build/mapq run "$TMP/slow.yaml" --input 'xs=[1,2]' \
    >"$TMP/slow3.out" 2>"$TMP/slow3.err" &
run_pid=$!
leased2() { leased_at_least 2; }
check "both subtasks leased before the stop" 0 "$(wait_for 60 leased2; echo $?)"
start=$(date +%s)
sd systemctl stop mapq-agent
check "systemctl stop: drained well within TimeoutStopSec" yes \
    "$([ $(($(date +%s) - start)) -lt 30 ] && echo yes || echo no)"
check "systemctl stop: the unit's result is success, exit status 0" \
    "success 0" \
    "$(sd systemctl show -p Result --value mapq-agent) $(sd systemctl show -p ExecMainStatus --value mapq-agent)"
check "systemctl stop: the agent said it drained" 1 \
    "$(sd journalctl -u mapq-agent --no-pager | grep -c 'drained; exiting')"
rc=0
wait "$run_pid" || rc=$?
check "the run completes: exit 0" 0 "$rc"
check "each subtask ran once and succeeded: nothing interrupted or retried" \
    "2 2" "$(./build/mapq logs "$(sed -n 's/^mapq: execution //p' "$TMP/slow3.err" | head -1)" n 2>&1 |
        awk '{ n++ } / attempt 1: .*, SUCCEEDED$/ { ok++ } END { print n + 0, ok + 0 }')"
sd systemctl stop mapq-scheduler
check "systemctl stop mapq-scheduler: success" success \
    "$(sd systemctl show -p Result --value mapq-scheduler)"
podman rm -f -t 0 "$SD_CT" >/dev/null

echo "== down"
compose down -v >"$TMP/down.log" 2>&1
check "down -v: no container of the project is left" 0 \
    "$(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" -q | wc -l)"
check "down -v: its volume is gone" 0 \
    "$(podman volume ls -q | grep -c "^${PROJECT}_" || true)"

if [ "$failed" -ne 0 ]; then
    echo "# deploy test: $failed failed"
    compose logs --tail 20 2>&1 | sed 's/^/# /' || true
    exit 1
fi
echo "# deploy test: all passed"
