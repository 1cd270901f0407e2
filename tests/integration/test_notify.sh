#!/usr/bin/env bash
# The agent under systemd (Type=notify): READY=1 once it has reached Redis,
# WATCHDOG=1 from its loop at half the watchdog interval whether or not
# Redis answers, STOPPING=1 when SIGTERM starts its drain; mapq scheduler
# the same; and the units in deploy/ pass systemd-analyze verify. The service manager's side is a
# datagram socket read by python3, as systemd reads NOTIFY_SOCKET. Waits
# are bounded polls.
. "$(dirname "$0")/harness.sh"

start_redis

# listen SOCK OUT: writes each datagram received on the unix socket SOCK,
# one per line ("\n" inside one becomes " "), to OUT until killed.
listen() {
    python3 -u - "$1" "$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
PY
    PIDS+=($!)
    wait_for 5 test -S "$1"
}
has() { grep -q -x -- "$2" "$1"; }
count() { grep -c -x -- "$2" "$1"; }
at_least() { [ "$(count "$1" "$2")" -ge "$3" ]; }

# ---- an agent that reaches Redis ------------------------------------------
listen "$TMP/n1.sock" "$TMP/n1.out"
NOTIFY_SOCKET="$TMP/n1.sock" WATCHDOG_USEC=400000 \
    "$AGENT" --name notify-1 --slots 1 >"$TMP/a1.log" 2>&1 &
a=$!
PIDS+=("$a")
check "READY=1 once it has reached Redis" "0" \
    "$(wait_for 10 has "$TMP/n1.out" READY=1; echo $?)"
check "WATCHDOG=1 again and again (WATCHDOG_USEC 400 ms)" "0" \
    "$(wait_for 10 at_least "$TMP/n1.out" WATCHDOG=1 5; echo $?)"
kill -TERM "$a"
wait "$a"
check "SIGTERM: the agent exits 0" "0" "$?"
check "SIGTERM: STOPPING=1" "0" "$(wait_for 5 has "$TMP/n1.out" STOPPING=1; echo $?)"
check "READY=1 once, before STOPPING=1" "1 READY=1" \
    "$(count "$TMP/n1.out" READY=1) $(grep -x -e READY=1 -e STOPPING=1 "$TMP/n1.out" | head -n 1)"

# ---- an agent that cannot reach Redis ----------------------------------------
# Its loop turns: the watchdog is fed, so systemd does not kill an agent
# that waits for Redis; it is not ready.
listen "$TMP/n2.sock" "$TMP/n2.out"
NOTIFY_SOCKET="$TMP/n2.sock" WATCHDOG_USEC=400000 \
    "$AGENT" --name notify-2 --redis "unix://$TMP/none.sock" >"$TMP/a2.log" 2>&1 &
b=$!
PIDS+=("$b")
wait_for 10 at_least "$TMP/n2.out" WATCHDOG=1 5
check "no Redis: WATCHDOG=1 still comes, READY=1 does not" "yes 0" \
    "$(at_least "$TMP/n2.out" WATCHDOG=1 5 && echo yes) $(count "$TMP/n2.out" READY=1)"
kill -TERM "$b"
wait "$b" 2>/dev/null

# ---- no NOTIFY_SOCKET: nothing is sent, and nothing breaks --------------------
"$AGENT" --name notify-3 --slots 1 >"$TMP/a3.log" 2>&1 &
c=$!
PIDS+=("$c")
registered() { [ "$(redis_cli ZSCORE "$MAPQ_NAMESPACE:agents" notify-3)" != "" ]; }
check "without NOTIFY_SOCKET the agent runs as before" "0" \
    "$(wait_for 10 registered; echo $?)"
kill -TERM "$c"
wait "$c"
check "without NOTIFY_SOCKET: exits 0" "0" "$?"

# ---- mapq scheduler -----------------------------------------------------------
listen "$TMP/n4.sock" "$TMP/n4.out"
NOTIFY_SOCKET="$TMP/n4.sock" WATCHDOG_USEC=400000 \
    "$MAPQ" scheduler >"$TMP/s4.log" 2>&1 &
s=$!
PIDS+=("$s")
check "scheduler: READY=1 once it serves" "0" \
    "$(wait_for 10 has "$TMP/n4.out" READY=1; echo $?)"
check "scheduler: WATCHDOG=1 again and again" "0" \
    "$(wait_for 10 at_least "$TMP/n4.out" WATCHDOG=1 5; echo $?)"
kill -TERM "$s"
wait "$s"
check "scheduler: SIGTERM, exit 0 and STOPPING=1" "0 0" \
    "$? $(wait_for 5 has "$TMP/n4.out" STOPPING=1; echo $?)"

# ---- the units -------------------------------------------------------------
# As installed, the binaries are in /usr/local/bin; here, the build's.
for u in mapq-agent mapq-scheduler; do
    sed "s|/usr/local/bin/|$BUILD/|" "$SRC/deploy/$u.service" >"$TMP/$u.service"
    out=$(systemd-analyze verify "$TMP/$u.service" 2>&1)
    check "systemd-analyze verify $u.service" "0 " "$? $out"
done
for u in mapq-agent mapq-scheduler; do
    f="$SRC/deploy/$u.service"
    check "$u.service waits for READY=1 and keeps a watchdog" "notify main 1" \
        "$(sed -n 's/^Type=//p' "$f") $(sed -n 's/^NotifyAccess=//p' "$f") $(grep -c '^WatchdogSec=' "$f")"
done

finish
