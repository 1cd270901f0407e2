#!/usr/bin/env bash
# mapq run's live progress on a real terminal (a pty of a given size):
# every progress line fits the terminal's width, so that the redraw in
# place never meets a wrapped line; after the terminal shrinks (its size
# set, then SIGWINCH) the progress is laid out again for the new width.
# The figures the line has room for are there. Waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 1

cat >"$TMP/narrow.yaml" <<'EOF'
name: narrow
inputs:
  xs: {type: "list[int]", default: [1, 2, 3, 4, 5, 6]}
tasks:
  nap: {inputs: {x: int}, output: int, command: [sh, -c, 'sleep 1; echo "$MAPQ_IN_x"']}
nodes:
  a_rather_long_node_name_for_a_narrow_terminal: {map: nap, over: {x: $inputs.xs}}
output: $a_rather_long_node_name_for_a_narrow_terminal
EOF

python3 - "$MAPQ" "$TMP/narrow.yaml" "$TMP/run.out" >"$TMP/pty.result" 2>&1 <<'PY'
import fcntl, os, pty, re, select, signal, struct, subprocess, sys, termios, time

mapq, workflow, out_path = sys.argv[1:4]
WIDE, NARROW, ROWS = 100, 30, 30

def set_size(fd, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, cols, 0, 0))

master, slave = pty.openpty()
set_size(slave, WIDE)
env = dict(os.environ)
env.pop("COLUMNS", None)
with open(out_path, "wb") as out:
    proc = subprocess.Popen([mapq, "run", workflow], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=slave, env=env)
os.close(slave)
data, marker = b"", None
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    r, _, _ = select.select([master], [], [], 0.1)
    if r:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    # Once a wide progress line has been drawn, the terminal shrinks.
    if marker is None and b"running" in data:
        set_size(master, NARROW)
        marker = len(data)
        proc.send_signal(signal.SIGWINCH)
    if proc.poll() is not None and not r:
        break
rc = proc.wait(timeout=30)
os.close(master)

def progress_lines(b):
    # A progress line is what follows an erase-line sequence up to the
    # end of its row; other escape sequences are not text.
    text = b.decode("utf-8", "replace").replace("\r", "")
    lines = []
    for part in text.split("\x1b[2K")[1:]:
        lines.append(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", part.split("\n")[0]))
    return lines

before = progress_lines(data[:marker or len(data)])
after_all = data[marker:] if marker is not None else b""
# Draws after the one SIGWINCH caused (it clears below first) know the new
# size: the size was set before the signal was sent.
clear = after_all.find(b"\x1b[J")
after = progress_lines(after_all[clear:]) if clear >= 0 else []
print("exit", rc)
print("resized", marker is not None and clear >= 0)
print("wide lines", len(before), "widest", max(map(len, before), default=0))
print("narrow lines", len(after), "widest", max(map(len, after), default=0))
print("wide fits", all(len(l) < WIDE for l in before))
print("narrow fits", all(len(l) < NARROW for l in after))
print("wide figures", any("/6" in l and "running " in l and "failed " in l
                          and "cached " in l for l in before))
print("narrow figures", bool(after) and all("/6" in l for l in after))
print("wide name cut to its column", any(l.startswith("a_rather_long_..")
                                         for l in before))
PY
cat "$TMP/pty.result" | sed 's/^/# /'
got() { sed -n "s/^$1 //p" "$TMP/pty.result"; }
check "mapq run on a pty exits 0" "0" "$(got exit)"
check "the output went to stdout" "[1,2,3,4,5,6]" "$(tr -d ' \n' <"$TMP/run.out")"
check "SIGWINCH: the progress was drawn again, cleared first" "True" "$(got resized)"
check "at 100 columns: no progress line reaches the width" "True" "$(got 'wide fits')"
check "at 100 columns: done/total, running, failed and cached all shown" "True" "$(got 'wide figures')"
check "at 100 columns: the long node name cut to its column" "True" "$(got 'wide name cut to its column')"
check "after shrinking to 30 columns: no progress line reaches the width" "True" "$(got 'narrow fits')"
check "after shrinking to 30 columns: done/total still shown" "True" "$(got 'narrow figures')"
finish
