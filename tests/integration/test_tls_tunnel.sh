#!/usr/bin/env bash
# TLS through a local sidecar, as docs/OPERATIONS.md ("TLS") writes it:
# Redis listens on a TLS port only; Debian's stunnel4 in client mode takes
# plain connections on a loopback port and carries them over TLS,
# checking Redis's certificate. An agent and mapq run, given the tunnel's
# redis:// address, run a workflow; a plain client on the TLS port gets
# nothing, so the traffic really went through TLS. Waits are bounded polls.
. "$(dirname "$0")/harness.sh"

for prog in stunnel4 openssl; do
    if ! command -v "$prog" >/dev/null; then
        echo "not ok - $prog is not installed (scripts/deps.sh installs it)"
        exit 1
    fi
done
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" \
    -out "$TMP/cert.pem" -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1
check "a certificate for the test" "0" "$?"

started=0
for try in 1 2 3 4 5; do
    TLSPORT=$(free_port)
    redis-server --port 0 --tls-port "$TLSPORT" --bind 127.0.0.1 \
        --tls-cert-file "$TMP/cert.pem" --tls-key-file "$TMP/key.pem" \
        --tls-ca-cert-file "$TMP/cert.pem" --tls-auth-clients no \
        --save '' --appendonly no --dir "$TMP" >"$TMP/redis-tls.log" 2>&1 &
    PIDS+=($!)
    if wait_for 5 redis-cli --tls --cacert "$TMP/cert.pem" -p "$TLSPORT" PING; then
        started=1
        break
    fi
done
[ "$started" = 1 ] || { echo "redis-server did not start"; cat "$TMP/redis-tls.log"; exit 1; }
plain=$(timeout 5 redis-cli -p "$TLSPORT" PING 2>&1)
check "the TLS port answers no plain client" "no" \
    "$([ "$plain" = PONG ] && echo yes || echo no)"

LOCAL=$(free_port)
cat >"$TMP/stunnel.conf" <<EOF
foreground = yes
pid =
[redis]
client = yes
accept = 127.0.0.1:$LOCAL
connect = 127.0.0.1:$TLSPORT
verifyChain = yes
CAfile = $TMP/cert.pem
checkHost = localhost
EOF
stunnel4 "$TMP/stunnel.conf" >"$TMP/stunnel.log" 2>&1 &
PIDS+=($!)
wait_for 10 redis-cli -p "$LOCAL" PING
check "the tunnel answers on loopback" "0" "$?"

export MAPQ_REDIS_URL="redis://127.0.0.1:$LOCAL"
start_agents 1
cat >"$TMP/sq.yaml" <<'EOF'
name: sq
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4]}
tasks:
  t: {inputs: {x: int}, output: int, command: [sh, -c, 'echo $((MAPQ_IN_x * MAPQ_IN_x))']}
nodes:
  m: {map: t, over: {x: $inputs.xs}}
output: $m
EOF
out=$(timeout -s KILL 60 "$MAPQ" run "$TMP/sq.yaml" 2>"$TMP/run.err")
check "a workflow runs through the tunnel" "0 [1,4,9,16]" "$? $(echo "$out" | tr -d ' \n')"
check "the agent registered through it" "1" \
    "$(redis-cli --tls --cacert "$TMP/cert.pem" -p "$TLSPORT" --scan --pattern "$MAPQ_NAMESPACE:agent:*" | wc -l | tr -d ' ')"
finish
