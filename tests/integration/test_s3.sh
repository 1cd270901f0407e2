#!/usr/bin/env bash
# The S3 store: files as objects of a bucket on a real S3-protocol server
# (s3rver, from npm, started here on the loopback). mapq run stores input
# files and directories as objects, agents in working directories of
# their own that share only Redis and the bucket read them and store what
# tasks return there, with nothing of the content in Redis; a second run
# is all cache hits; mapq result --fetch reads the objects back. An agent
# not given the bucket reads nothing from it; a bucket that does not
# exist is refused at submit. Waits are bounded.
. "$(dirname "$0")/harness.sh"

# s3rver: on the PATH, or installed once into a cache of the tests'.
s3rver_bin() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/mapq-test/s3rver"
    if command -v s3rver >/dev/null 2>&1; then
        command -v s3rver
        return
    fi
    if [ ! -x "$dir/node_modules/.bin/s3rver" ]; then
        mkdir -p "$dir" &&
            (cd "$dir" && timeout 300 npm install --no-audit --no-fund \
                --loglevel=error s3rver@3.7.1 >"$TMP/npm.log" 2>&1) || return 1
    fi
    echo "$dir/node_modules/.bin/s3rver"
}
S3RVER=$(s3rver_bin) || {
    echo "not ok - s3rver could not be installed with npm: $(tail -3 "$TMP/npm.log" 2>/dev/null)"
    exit 1
}

start_redis
port=$(free_port)
mkdir -p "$TMP/s3data"
node "$S3RVER" -d "$TMP/s3data" -a 127.0.0.1 -p "$port" --configure-bucket mapq -s \
    >"$TMP/s3rver.log" 2>&1 &
PIDS+=($!)
up() { python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port"; }
wait_for 30 up || { echo "not ok - s3rver did not start: $(tail -3 "$TMP/s3rver.log")"; exit 1; }
export MAPQ_S3_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
STORE=s3://mapq/runs

mkdir -p "$TMP/a1" "$TMP/a2"
for i in 1 2; do
    (cd "$TMP/a$i" && exec "$AGENT" --name "it-agent-$i" --slots 2 --store "$STORE" \
        >>"$TMP/agents.log" 2>&1) &
    PIDS+=($!)
done

mkdir -p "$TMP/in/tree/sub"
printf 'alpha\n' >"$TMP/in/a.txt"
printf 'beta\n' >"$TMP/in/b.txt"
printf 'leaf\n' >"$TMP/in/tree/sub/leaf.txt"
cat >"$TMP/s3.yaml" <<YAML
name: s3
inputs:
  docs: {type: "list[file]"}
  tree: {type: dir}
tasks:
  shout:
    inputs: {doc: file, tree: dir}
    output: file
    cache: {version: "1"}
    command:
      - sh
      - -c
      - |
        echo "\$MAPQ_IN_doc" >>"$TMP/ran.log"
        { tr a-z A-Z <"\$MAPQ_IN_doc"; cat "\$MAPQ_IN_tree/sub/leaf.txt"; } >"loud-\$(basename "\$MAPQ_IN_doc")"
        echo "\"loud-\$(basename "\$MAPQ_IN_doc")\""
nodes:
  s: {map: shout, over: {doc: \$inputs.docs}, with: {tree: \$inputs.tree}}
output: \$s
YAML
python3 -c 'import json, sys; json.dump({"docs": sys.argv[2:4], "tree": sys.argv[4]}, open(sys.argv[1], "w"))' \
    "$TMP/in.json" "$TMP/in/a.txt" "$TMP/in/b.txt" "$TMP/in/tree"
ran() { [ -f "$TMP/ran.log" ] && wc -l <"$TMP/ran.log" | tr -d ' ' || echo 0; }

(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/s3.yaml" --store "$STORE" \
    --inputs "$TMP/in.json" --json >"$TMP/run1.json" 2>"$TMP/run1.err")
check "a run on the S3 store: files and a dir in, files out" "0" "$?"
check "its outputs are objects of the bucket, under the prefix, keeping their names" "yes" \
    "$(python3 - "$TMP/run1.json" <<'PY'
import json, re, sys
out = json.load(open(sys.argv[1]))["output"]
ok = [re.fullmatch(r"s3://mapq/runs/sha256/%s#loud-%s" % (o["sha256"], n), o["uri"]) is not None
      for o, n in zip(out, ("a.txt", "b.txt"))]
print("yes" if len(out) == 2 and all(ok) else out)
PY
)"
check "... and no file went into Redis" "0" "$(redis_cli --scan --pattern "$MAPQ_NAMESPACE:blob*" | wc -l | tr -d ' ')"
x1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run1.json")
"$MAPQ" result "$x1" --fetch "$TMP/got" >/dev/null 2>"$TMP/fetch.err"
check "mapq result --fetch reads the objects back" \
    "0 mapq: 2 files written to $TMP/got|ALPHA leaf|BETA leaf" \
    "$? $(cat "$TMP/fetch.err")|$(tr '\n' ' ' <"$TMP/got/loud-a.txt" | sed 's/ $//')|$(tr '\n' ' ' <"$TMP/got/loud-b.txt" | sed 's/ $//')"

before=$(ran)
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/s3.yaml" --store "$STORE" \
    --inputs "$TMP/in.json" >/dev/null 2>"$TMP/run2.err")
check "a second run is all cache hits" "0 $before" "$? $(ran)"

# An agent not given the bucket: it reads nothing from it.
for pid in "${PIDS[@]:1}"; do kill "$pid"; done
for pid in "${PIDS[@]:1}"; do wait_for 30 exited "$pid"; done
PIDS=("${PIDS[0]}")
(cd "$TMP/a1" && exec "$AGENT" --name it-agent-plain --slots 1 >>"$TMP/agents.log" 2>&1) &
PIDS+=($!)
printf 'gamma\n' >"$TMP/in/c.txt"
python3 -c 'import json, sys; json.dump({"docs": [sys.argv[2]], "tree": sys.argv[3]}, open(sys.argv[1], "w"))' \
    "$TMP/c.json" "$TMP/in/c.txt" "$TMP/in/tree"
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/s3.yaml" --store "$STORE" \
    --inputs "$TMP/c.json" >/dev/null 2>"$TMP/plain.err")
check "an agent not given the bucket reads nothing from it, saying so" "1 yes" \
    "$? $(grep -q "'s3://mapq/runs/sha256/[0-9a-f]*' is in none of this agent's stores (--store)" "$TMP/plain.err" && echo yes || cat "$TMP/plain.err")"
timeout -s KILL 60 "$MAPQ" run "$TMP/s3.yaml" --store s3://nobucket/x --inputs "$TMP/c.json" \
    >/dev/null 2>"$TMP/nobucket.err"
check "a bucket that does not exist is refused at submit" "2 yes" \
    "$? $(grep -q "^mapq: \$inputs.docs\[0\]: http://127.0.0.1:$port/nobucket/x/sha256/[0-9a-f]*: HTTP 404" "$TMP/nobucket.err" && echo yes || cat "$TMP/nobucket.err")"
env -u AWS_ACCESS_KEY_ID timeout -s KILL 60 "$MAPQ" run "$TMP/s3.yaml" --store "$STORE" \
    --inputs "$TMP/c.json" >/dev/null 2>"$TMP/nocreds.err"
check "no credentials: refused at submit, saying which to set" \
    "2 mapq: \$inputs.docs[0]: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" \
    "$? $(cat "$TMP/nocreds.err")"

finish
