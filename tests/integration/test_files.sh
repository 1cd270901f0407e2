#!/usr/bin/env bash
# Files as values: a map over list[file] given as local paths. mapq run
# stores each file in Redis (the embedded store) and submits references;
# agents that share nothing with it but Redis (their own working
# directories) fetch each into a directory of the attempt's own and the
# task sees a local path with the file's name. Cache keys take a file's
# content, not its name. A missing path is refused before anything is
# submitted; a blob that is gone fails its subtask naming the URI, after
# system retries. Real processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
# The persistent workers below serve fileops.py through the Python SDK.
mkdir -p "$TMP/py"
cat >"$TMP/py/fileops.py" <<'PY'
import os


def shout(doc):
    name = "loud-" + os.path.basename(doc)
    with open(doc) as f, open(name, "w") as out:
        out.write(f.read().upper())
    return name
PY
export PYTHONPATH="$SRC/sdk/python:$TMP/py"
start_agents 2

P=$MAPQ_NAMESPACE
mkdir -p "$TMP/in" "$TMP/other"
printf 'alpha\n' >"$TMP/in/a.txt"
printf 'beta\n' >"$TMP/in/b.txt"
printf 'alpha\n' >"$TMP/in/c.txt" # same content as a.txt
sha() { sha256sum "$1" | cut -d' ' -f1; }

cat >"$TMP/files.yaml" <<YAML
name: files
inputs:
  docs: {type: "list[file]"}
tasks:
  look:
    inputs: {doc: file}
    output: str
    cache: {version: "1"}
    command:
      - sh
      - -c
      - |
        echo "\$MAPQ_IN_doc" >>"$TMP/ran.log"
        case "\$MAPQ_IN_doc" in "$TMP/in/"*) echo "the submitter's path" >&2; exit 1;; esac
        echo "\"\$(basename "\$MAPQ_IN_doc") \$(sha256sum <"\$MAPQ_IN_doc" | cut -d' ' -f1)\""
nodes:
  m: {map: look, over: {doc: \$inputs.docs}, system_retries: 1}
output: \$m
YAML
inputs() { list_input "$1" docs "${@:2}"; } # inputs FILE PATH...
ran() { [ -f "$TMP/ran.log" ] && wc -l <"$TMP/ran.log" | tr -d ' ' || echo 0; }

# ---- local paths in, content seen by the task -----------------------------------
inputs "$TMP/in.json" "$TMP/in/a.txt" "$TMP/in/b.txt" "$TMP/in/c.txt"
out=$(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/in.json" 2>"$TMP/run1.err")
rc=$?
want=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:], separators=(",", ":")))' \
    "a.txt $(sha "$TMP/in/a.txt")" "b.txt $(sha "$TMP/in/b.txt")" "a.txt $(sha "$TMP/in/c.txt")")
# c.txt holds what a.txt holds: same key, so it takes a.txt's result.
check "each task reads its file by a path of its own, with the file's name" \
    "0 $want" "$rc $(echo "$out" | tr -d '\n' | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))')"
check "the content is stored once per hash (two blobs for three files)" \
    "2" "$(redis_cli --scan --pattern "$P:blob:*" | wc -l | tr -d ' ')"
check "no temporary blob is left" \
    "0" "$(redis_cli --scan --pattern "$P:blobtmp:*" | wc -l | tr -d ' ')"
check "a.txt and c.txt (same content) ran once: the second was a cache hit or follower" \
    "2" "$(ran)"

# ---- cache keys take content, not names -----------------------------------------
cp "$TMP/in/a.txt" "$TMP/other/renamed.txt"
cp "$TMP/in/b.txt" "$TMP/other/b.txt"
inputs "$TMP/in2.json" "$TMP/other/renamed.txt" "$TMP/other/b.txt"
before=$(ran)
timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/in2.json" >"$TMP/run2.out" 2>"$TMP/run2.err"
check "the same content under other names is all cache hits" \
    "0 $before" "$? $(ran)"
printf 'alpha, changed\n' >"$TMP/other/renamed.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/in2.json" >"$TMP/run3.out" 2>"$TMP/run3.err"
check "a changed file is a miss (one more run)" \
    "0 $((before + 1))" "$? $(ran)"

# ---- files out: stored by the agent, then the input of the next task --------
cat >"$TMP/outs.yaml" <<'YAML'
name: outs
inputs:
  docs: {type: "list[file]"}
tasks:
  twice:
    inputs: {doc: file}
    outputs: {copies: "list[file]", n: int}
    command:
      - sh
      - -c
      - |
        b=$(basename "$MAPQ_IN_doc")
        mkdir out
        for i in 1 2; do { cat "$MAPQ_IN_doc"; echo "copy $i"; } >"out/$i-$b"; done
        echo "{\"copies\": [\"out/1-$b\", \"$PWD/out/2-$b\"], \"n\": 2}"
  join:
    inputs: {lists: "list[list[file]]"}
    output: str
    command:
      - python3
      - -c
      - |
        import json, sys
        a = json.load(sys.stdin)
        print(json.dumps("".join(open(p).read() for l in a["lists"] for p in l)))
nodes:
  t: {map: twice, over: {doc: $inputs.docs}}
  j: {task: join, with: {lists: $t.copies}}
output: {files: $t.copies, joined: $j}
YAML
inputs "$TMP/outs.json" "$TMP/in/a.txt" "$TMP/in/b.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/outs.yaml" --inputs "$TMP/outs.json" >"$TMP/outs.out" 2>"$TMP/outs.err"
rc=$?
verdict=$(python3 - "$TMP/outs.out" <<'PY'
import hashlib, json, sys
out = json.load(open(sys.argv[1]))
want = []
for name, text in (("a.txt", "alpha\n"), ("b.txt", "beta\n")):
    want.append([(f"{i}-{name}", (text + f"copy {i}\n").encode()) for i in (1, 2)])
bad = [] if len(out["files"]) == 2 else ["files: " + str(out["files"])]
for got_l, want_l in zip(out["files"], want):
    for got, (name, data) in zip(got_l, want_l):
        h = hashlib.sha256(data).hexdigest()
        if got != {"uri": f"mapq:sha256/{h}/{name}", "sha256": h, "size": len(data)}:
            bad.append(f"{name}: {got}")
joined = "".join(d.decode() for l in want for _, d in l)
print("files:" + ("yes" if not bad else "no: " + "; ".join(bad)))
print("joined:" + ("yes" if out["joined"] == joined else repr(out["joined"])))
PY
)
check "files a task writes come back as references to what it wrote, with their names" \
    "0 files:yes" "$rc $(echo "$verdict" | grep '^files:')"
check "... and the next task reads them (on whichever agent)" \
    "joined:yes" "$(echo "$verdict" | grep '^joined:')"

cat >"$TMP/badout.yaml" <<'YAML'
name: badout
inputs:
  paths: {type: "list[str]"}
tasks:
  give:
    inputs: {p: str}
    output: file
    command: [sh, -c, 'echo x >here.txt; echo "\"$MAPQ_IN_p\""']
nodes:
  g: {map: give, over: {p: $inputs.paths}, min_success_ratio: 0.1}
output: $g
YAML
timeout -s KILL 60 "$MAPQ" run "$TMP/badout.yaml" --input 'paths=[here.txt, nope.txt, /etc/hostname, .]' \
    >"$TMP/badout.out" 2>"$TMP/badout.err"
rc=$?
x=$(exec_of "$TMP/badout.err")
errors=$("$MAPQ" logs "$x" g --json | python3 -c '
import json, sys
print(" | ".join(sorted(set(e["error"] for e in json.load(sys.stdin) if e.get("error")))))')
check "an output path that is missing, outside the working directory or no file fails only its subtask" \
    "0 output: . is not a regular file | output: /etc/hostname is outside the task's working directory | output: no such file: nope.txt" \
    "$rc $errors"

# Two files of one name but other content, written out side by side.
cat >"$TMP/same.yaml" <<'YAML'
name: same
inputs:
  xs: {type: "list[int]"}
tasks:
  write:
    inputs: {x: int}
    output: file
    command: [sh, -c, 'echo "number $MAPQ_IN_x" >out.txt; echo "\"out.txt\""']
nodes:
  w: {map: write, over: {x: $inputs.xs}}
output: $w
YAML
timeout -s KILL 60 "$MAPQ" run "$TMP/same.yaml" --input 'xs=[1, 2]' >/dev/null 2>"$TMP/same.err"
x=$(exec_of "$TMP/same.err")
"$MAPQ" result "$x" --fetch "$TMP/same" >/dev/null 2>&1
check "mapq result --fetch keeps two files of one name apart" "number 1|number 2" \
    "$(cat "$TMP/same/out.txt")|$(cat "$TMP/same/2-out.txt")"

# A persistent worker (the Python SDK) reads a file and returns one.
cat >"$TMP/shout.yaml" <<'YAML'
name: shout
inputs:
  docs: {type: "list[file]"}
tasks:
  shout:
    inputs: {doc: file}
    output: file
    worker: true
    command: [python3, -m, mapq_worker, "fileops:shout"]
nodes:
  s: {map: shout, over: {doc: $inputs.docs}}
output: $s
YAML
inputs "$TMP/shout.json" "$TMP/in/a.txt" "$TMP/in/b.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/shout.yaml" --inputs "$TMP/shout.json" >/dev/null 2>"$TMP/shout.err"
rc=$?
x=$(exec_of "$TMP/shout.err")
"$MAPQ" result "$x" --fetch "$TMP/shout" >/dev/null 2>&1
check "a persistent worker takes files and returns files" "0 ALPHA|BETA" \
    "$rc $(cat "$TMP/shout/loud-a.txt")|$(cat "$TMP/shout/loud-b.txt")"

# A map's output long enough to be paged (65,537 elements): --fetch reads
# it page by page. The test plugin's echo hands back each reference given.
ref=$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["output"][0]))' \
    <(timeout -s KILL 60 "$MAPQ" run "$TMP/shout.yaml" --inputs "$TMP/shout.json" --json 2>/dev/null))
python3 -c 'import json, sys; json.dump({"refs": [json.loads(sys.argv[2])] * 65537}, open(sys.argv[1], "w"))' \
    "$TMP/many.json" "$ref"
cat >"$TMP/many.yaml" <<'YAML'
name: many
inputs:
  refs: {type: "list[any]"}
tasks:
  echo:
    inputs: {v: any}
    output: any
    plugin: {library: mapq_fault_plugin.so, symbol: echo}
nodes:
  e: {map: echo, over: {v: $inputs.refs}}
output: $e
YAML
timeout -s KILL 120 "$MAPQ" run "$TMP/many.yaml" --inputs "$TMP/many.json" >/dev/null 2>"$TMP/many.err"
rc=$?
x=$(exec_of "$TMP/many.err")
"$MAPQ" result "$x" --node e --fetch "$TMP/many" >/dev/null 2>"$TMP/manyfetch.err"
check "mapq result --fetch reads a paged output's references, page by page" \
    "0 0 mapq: 1 files written to $TMP/many ALPHA" \
    "$rc $? $(cat "$TMP/manyfetch.err") $(cat "$TMP/many/loud-a.txt" 2>&1)"

# ---- bad input ------------------------------------------------------------------------
execs_before=$(redis_cli ZCARD "$P:execs")
inputs "$TMP/missing.json" "$TMP/in/a.txt" "$TMP/in/nope.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/missing.json" >/dev/null 2>"$TMP/missing.err"
check "a missing local file is refused, naming the element" \
    "2 mapq: \$inputs.docs[1]: no such file: $TMP/in/nope.txt" "$? $(cat "$TMP/missing.err")"
check "... and nothing is submitted" "$execs_before" "$(redis_cli ZCARD "$P:execs")"
truncate -s $((64 * 1024 * 1024 + 1)) "$TMP/in/huge.bin" # sparse: no disk
inputs "$TMP/huge.json" "$TMP/in/a.txt" "$TMP/in/huge.bin"
timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/huge.json" >/dev/null 2>"$TMP/huge.err"
check "a file over the store's cap is refused, naming the element and the sizes" \
    "2 mapq: \$inputs.docs[1]: $TMP/in/huge.bin: 67108865 bytes, over the store's cap of 67108864 bytes" \
    "$? $(cat "$TMP/huge.err")"
check "... and nothing of that run is submitted" "$execs_before" "$(redis_cli ZCARD "$P:execs")"
timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/in.json" --store-max 5 >/dev/null 2>"$TMP/smax.err"
check "--store-max lowers the cap" \
    "2 mapq: \$inputs.docs[0]: $TMP/in/a.txt: 6 bytes, over the store's cap of 5 bytes" \
    "$? $(cat "$TMP/smax.err")"

# ---- the shared-directory store ------------------------------------------------
# An agent given the directory, in a namespace of its own: the inputs are
# copied into the directory at submit, never into Redis, and the task
# reads them under their names. An agent not given it reads nothing there.
mkdir -p "$TMP/share"
(cd "$TMP/other" && exec "$AGENT" --name it-agent-share --slots 2 --namespace "$NS2" \
    --store "file://$TMP/share/" >>"$TMP/agents.log" 2>&1) &
PIDS+=($!)
out=$(cd "$TMP" && MAPQ_NAMESPACE="$NS2" MAPQ_STORE="file://$TMP/share" timeout -s KILL 60 \
    "$MAPQ" run "$TMP/files.yaml" --inputs "$TMP/in.json" 2>"$TMP/share.err")
check "inputs in a shared directory: each task reads its file, with the file's name" \
    "0 $want" "$? $(echo "$out" | tr -d '\n' | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))')"
a=$(sha "$TMP/in/a.txt")
check "... stored there once per hash, read-only, and not in Redis" \
    "2 444 alpha 0" \
    "$(find "$TMP/share/sha256" -type f | wc -l | tr -d ' ') $(stat -c %a "$TMP/share/sha256/${a:0:2}/$a") $(cat "$TMP/share/sha256/${a:0:2}/$a") $(redis_cli --scan --pattern "$NS2:blob*" | wc -l | tr -d ' ')"
xs=$(exec_of "$TMP/share.err")
check "the execution names its store" "file://$TMP/share" "$(redis_cli HGET "$NS2:x:$xs" store)"
MAPQ_NAMESPACE="$NS2" timeout -s KILL 60 "$MAPQ" recover "$xs" >/dev/null 2>"$TMP/recover.err"
check "mapq recover keeps the first run's store" "0 file://$TMP/share" \
    "$? $(redis_cli HGET "$NS2:x:$(exec_of "$TMP/recover.err")" store)"
kill "${PIDS[-1]}"
wait_for 30 exited "${PIDS[-1]}"
unset 'PIDS[-1]'
(cd "$TMP/other" && exec "$AGENT" --name it-agent-noshare --slots 1 --namespace "$NS2" \
    >>"$TMP/agents.log" 2>&1) &
PIDS+=($!)
printf 'delta\n' >"$TMP/in/d.txt"
inputs "$TMP/d.json" "$TMP/in/d.txt"
(cd "$TMP" && MAPQ_NAMESPACE="$NS2" timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" \
    --store "file://$TMP/share" --inputs "$TMP/d.json" >/dev/null 2>"$TMP/noshare.err")
check "an agent not given the directory refuses to read from it, saying so" \
    "1 yes" "$? $(grep -q "cannot fetch file://$TMP/share/sha256/.*#d.txt: '$TMP/share/sha256/.*' is in none of this agent's stores (--store)" "$TMP/noshare.err" && echo yes || cat "$TMP/noshare.err")"
kill "${PIDS[-1]}"
wait_for 30 exited "${PIDS[-1]}"
unset 'PIDS[-1]'
MAPQ_NAMESPACE="$NS2" timeout -s KILL 60 "$MAPQ" run "$TMP/files.yaml" --store "file://$TMP/nowhere" \
    --inputs "$TMP/d.json" >/dev/null 2>"$TMP/nowhere.err"
check "a store directory that is missing is refused at submit" \
    "2 mapq: \$inputs.docs[0]: store directory '$TMP/nowhere' is missing" "$? $(cat "$TMP/nowhere.err")"
"$MAPQ" run "$TMP/files.yaml" --store "ftp://bucket" --inputs "$TMP/d.json" >/dev/null 2>"$TMP/s3.err"
check "a store URI mapq cannot use is a usage error" \
    "2 mapq: --store: store 'ftp://bucket': not 'redis', file:///DIR or s3://BUCKET[/PREFIX]" "$? $(cat "$TMP/s3.err")"

# An agent whose --file-cache cannot be a directory does not start.
: >"$TMP/plain"
timeout -s KILL 10 "$AGENT" --file-cache "$TMP/plain" >/dev/null 2>"$TMP/fc.err"
rc=$?
check "an agent refuses a --file-cache that is no directory, saying why" \
    "3 yes" "$rc $(grep -q "file cache '$TMP/plain' exists and is not a directory" "$TMP/fc.err" && echo yes || cat "$TMP/fc.err")"

# A blob gone from the store: the fetch fails, is retried once
# (system_retries: 1), then the subtask fails naming the URI.
sed 's/version: "1"/version: "2"/' "$TMP/files.yaml" >"$TMP/files2.yaml"
printf 'gamma\n' >"$TMP/in/g.txt"
inputs "$TMP/g.json" "$TMP/in/g.txt"
gsha=$(sha "$TMP/in/g.txt")
execs=$(redis_cli ZCARD "$P:execs")
kill -STOP "${PIDS[@]}"
timeout -s KILL 60 "$MAPQ" run "$TMP/files2.yaml" --inputs "$TMP/g.json" >"$TMP/g.out" 2>"$TMP/g.err" &
run_pid=$!
created() { [ "$(redis_cli ZCARD "$P:execs")" -gt "$execs" ]; }
wait_for 30 created
redis_cli DEL "$P:blob:$gsha" >/dev/null
kill -CONT "${PIDS[@]}"
wait_for 60 exited "$run_pid"
wait "$run_pid"
rc=$?
uri="mapq:sha256/$gsha/g.txt"
check "a blob that is gone fails its subtask (exit 1), naming the URI" \
    "1 yes" "$rc $(grep -q "0: cannot fetch $uri: blob $gsha is not in the store" "$TMP/g.err" && echo yes || cat "$TMP/g.err")"
x=$(exec_of "$TMP/g.err")
phases=$("$MAPQ" logs "$x" m --json | python3 -c '
import json, sys
print(" ".join(e["phase"] for e in json.load(sys.stdin)))')
check "... after one system retry (system_retries: 1)" "system_error failed" "$phases"

finish
