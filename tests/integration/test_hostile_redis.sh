#!/usr/bin/env bash
# A server that is not Redis, or a Redis that lies: a reply declaring 2^31
# elements (hiredis would allocate 16 GiB for it before reading one) is
# refused at once with one clear line, by the CLI and by an agent, which
# keeps retrying with backoff and stops cleanly; no sanitizer report. The
# fake server is a few lines of Python answering every command alike.
. "$(dirname "$0")/harness.sh"

# fake_redis PORT REPLY: answers each read with REPLY (printf escapes).
fake_redis() {
    python3 - "$1" "$2" <<'EOF' &
import socket, sys, threading
reply = sys.argv[2].encode().decode("unicode_escape").encode("latin1")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
def serve(c):
    try:
        while c.recv(65536):
            c.sendall(reply)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
    PIDS+=($!)
}
listening() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"; }

port=$(free_port)
fake_redis "$port" '*2147483647\r\n'
wait_for 10 listening "$port"
url="redis://127.0.0.1:$port"

# The CLI: one line naming what it could not read, exit 3, within seconds
# (not a read timeout after allocating).
t0=$(date +%s)
timeout -s KILL 30 "$MAPQ" status 000000000000 --redis "$url" >"$TMP/cli.out" 2>"$TMP/cli.err"
rc=$?
took=$(($(date +%s) - t0))
check "huge array reply: mapq exits 3" "3" "$rc"
check "huge array reply: one line saying the reply cannot be read" "1" \
    "$(grep -c "cannot use redis .*cannot read redis's reply: too large" "$TMP/cli.err")"
check "huge array reply: mapq answers within 20 s" "yes" \
    "$([ "$took" -le 20 ] && echo yes || echo "no: ${took}s")"
check "huge array reply: no sanitizer report from mapq" "" \
    "$(grep -i -E 'sanitizer|runtime error' "$TMP/cli.err")"

# An agent: says it once per cause, keeps trying, stops cleanly on TERM.
"$AGENT" --name hostile --redis "$url" >"$TMP/agent.log" 2>&1 &
agent=$!
said() { grep -q 'more than the 16777216 mapq reads' "$TMP/agent.log"; }
wait_for 10 said
check "huge array reply: the agent says why it cannot use redis" "1" \
    "$(grep -c 'redis sent a reply of 2147483647 elements, more than the 16777216 mapq reads' "$TMP/agent.log")"
check "huge array reply: the agent is still running" "yes" \
    "$(kill -0 "$agent" 2>/dev/null && echo yes || echo no)"
kill -TERM "$agent"
wait_for 10 exited "$agent"
wait "$agent"
check "huge array reply: the agent stops with exit 0 on TERM" "0" "$?"
check "huge array reply: no sanitizer report from the agent" "" \
    "$(grep -i -E 'sanitizer|runtime error' "$TMP/agent.log")"

finish
