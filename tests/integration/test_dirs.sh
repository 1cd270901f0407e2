#!/usr/bin/env bash
# Directories as values: a map over list[dir] given as local directories.
# mapq run stores every file of each and its manifest; agents that share
# nothing with it but Redis (their own working directories) write each
# tree out again and the task sees a local directory, nested paths and
# executable bits kept. Tasks return directories, which the next task
# reads on whichever agent and mapq result --fetch writes out. Cache keys
# take a directory's content, not its name. Symlinks are refused on both
# sides, naming them. Then the same through a shared directory. Real
# processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2

P=$MAPQ_NAMESPACE
mk() { # mk DIR: a tree of three files, one executable, one nested
    mkdir -p "$1/bin" "$1/data/deep" "$1/empty"
    printf '#!/bin/sh\necho ran %s\n' "$(basename "$1")" >"$1/bin/run.sh"
    chmod 755 "$1/bin/run.sh"
    printf 'alpha %s\n' "$(basename "$1")" >"$1/data/deep/a.txt"
    printf 'top\n' >"$1/top.txt"
}
mk "$TMP/in/one"
mk "$TMP/in/two"

cat >"$TMP/dirs.yaml" <<YAML
name: dirs
inputs:
  sets: {type: "list[dir]"}
tasks:
  index:
    inputs: {d: dir}
    outputs: {listing: str, out: dir}
    cache: {version: "1"}
    command:
      - sh
      - -c
      - |
        set -e
        echo "\$MAPQ_IN_d" >>"$TMP/ran.log"
        case "\$MAPQ_IN_d" in "$TMP/in/"*) echo "the submitter's path" >&2; exit 1;; esac
        work=\$PWD
        cd "\$MAPQ_IN_d"
        ran=\$(./bin/run.sh)
        listing=\$(find . -type f | sort | tr '\n' ' ')
        mkdir -p "\$work/out/lens"
        for f in \$(find . -type f | sort); do wc -c <"\$f" | tr -d ' ' >"\$work/out/lens/\$(basename "\$f").len"; done
        echo "\$ran" >"\$work/out/ran.txt"
        echo "{\"listing\": \"\$(basename "\$MAPQ_IN_d"): \$listing\", \"out\": \"out\"}"
  merge:
    inputs: {outs: "list[dir]"}
    output: str
    command:
      - python3
      - -c
      - |
        import json, os, sys
        outs = json.load(sys.stdin)["outs"]
        print(json.dumps(" | ".join(open(os.path.join(d, "ran.txt")).read().strip() for d in outs)))
nodes:
  i: {map: index, over: {d: \$inputs.sets}}
  m: {task: merge, with: {outs: \$i.out}}
output: {listing: \$i.listing, merged: \$m, outs: \$i.out}
YAML
inputs() { list_input "$1" sets "${@:2}"; } # inputs FILE PATH...
ran() { [ -f "$TMP/ran.log" ] && wc -l <"$TMP/ran.log" | tr -d ' ' || echo 0; }

# ---- directories in and out ------------------------------------------------------
inputs "$TMP/in.json" "$TMP/in/one" "$TMP/in/two/"
(cd "$TMP" && timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/in.json" --json \
    >"$TMP/run1.json" 2>"$TMP/run1.err")
rc=$?
check "each task sees its directory, nested paths and executable bit kept" \
    "0 one: ./bin/run.sh ./data/deep/a.txt ./top.txt |two: ./bin/run.sh ./data/deep/a.txt ./top.txt " \
    "$rc $(python3 -c 'import json, sys; print("|".join(json.load(open(sys.argv[1]))["output"]["listing"]))' "$TMP/run1.json" 2>&1)"
check "the next task reads the directories the first returned" "ran one | ran two" \
    "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["output"]["merged"])' "$TMP/run1.json")"
check "a dir value names its manifest and how many files it holds" "yes" \
    "$(python3 - "$TMP/run1.json" <<'PY'
import json, re, sys
outs = json.load(open(sys.argv[1]))["output"]["outs"]
ok = len(outs) == 2 and all(
    sorted(o) == ["files", "sha256", "size", "uri"] and o["files"] == 4 and
    re.fullmatch(r"mapq:sha256/[0-9a-f]{64}/out", o["uri"]) and
    o["uri"].split("/")[1] == o["sha256"] for o in outs)
print("yes" if ok else outs)
PY
)"

x1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run1.json")
"$MAPQ" result "$x1" --node i --fetch "$TMP/got" >/dev/null 2>"$TMP/fetch.err"
check "mapq result --fetch writes the directories out" \
    "0 mapq: 8 files written to $TMP/got|ran one|ran two|4|23|4" \
    "$? $(cat "$TMP/fetch.err")|$(cat "$TMP/got/out/ran.txt")|$(cat "$TMP/got/2-out/ran.txt")|$(cat "$TMP/got/out/lens/top.txt.len" "$TMP/got/out/lens/run.sh.len" | tr '\n' '|')$(cat "$TMP/got/2-out/lens/top.txt.len")"

# ---- cache keys take content, not names --------------------------------------
cp -a "$TMP/in/one" "$TMP/renamed"
inputs "$TMP/in2.json" "$TMP/renamed"
before=$(ran)
timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/in2.json" >/dev/null 2>"$TMP/run2.err"
check "the same tree under another name is a cache hit" "0 $before" "$? $(ran)"
printf 'changed\n' >>"$TMP/renamed/data/deep/a.txt"
timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/in2.json" >/dev/null 2>"$TMP/run3.err"
check "a changed file deep inside is a miss" "0 $((before + 1))" "$? $(ran)"
chmod 644 "$TMP/renamed/bin/run.sh"
sed -i 's/echo "\\$MAPQ_IN_d"/echo "\\$MAPQ_IN_d" #/' "$TMP/dirs.yaml" # keeps ran.log
timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/in2.json" >/dev/null 2>"$TMP/run4.err"
check "... and so is a changed mode (the task now cannot run it)" \
    "1 $((before + 2))" "$? $(ran)"

# ---- bad input --------------------------------------------------------------------
execs_before=$(redis_cli ZCARD "$P:execs")
mk "$TMP/in/linked"
ln -s ../top.txt "$TMP/in/linked/data/link"
inputs "$TMP/bad.json" "$TMP/in/one" "$TMP/in/linked"
timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/bad.json" >/dev/null 2>"$TMP/bad.err"
check "a symlink inside an input directory is refused, naming it" \
    "2 yes" "$? $(grep -q "^mapq: \$inputs.sets\[1\]: '$TMP/in/linked/data/link': a symlink" "$TMP/bad.err" && echo yes || cat "$TMP/bad.err")"
inputs "$TMP/missing.json" "$TMP/in/nope"
timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" --inputs "$TMP/missing.json" >/dev/null 2>"$TMP/missing.err"
check "a missing directory is refused, naming the element" \
    "2 mapq: \$inputs.sets[0]: no such directory: $TMP/in/nope" "$? $(cat "$TMP/missing.err")"
check "... and nothing is submitted" "$execs_before" "$(redis_cli ZCARD "$P:execs")"

cat >"$TMP/badout.yaml" <<'YAML'
name: badout
inputs:
  kinds: {type: "list[str]"}
tasks:
  give:
    inputs: {k: str}
    output: dir
    command:
      - sh
      - -c
      - |
        mkdir -p d/sub && echo x >d/sub/f && echo x >plain
        [ "$MAPQ_IN_k" = link ] && ln -s /etc/hostname d/sub/escape
        case "$MAPQ_IN_k" in file) echo '"plain"';; *) echo '"d"';; esac
nodes:
  g: {map: give, over: {k: $inputs.kinds}, min_success_ratio: 0.1}
output: $g
YAML
timeout -s KILL 60 "$MAPQ" run "$TMP/badout.yaml" --input 'kinds=[ok, file, link]' \
    >"$TMP/badout.out" 2>"$TMP/badout.err"
rc=$?
x=$(exec_of "$TMP/badout.err")
errors=$("$MAPQ" logs "$x" g --json | python3 -c '
import json, sys
print(" | ".join(sorted(set(e["error"] for e in json.load(sys.stdin) if e.get("error")))))')
check "an output that is no directory, or holds a symlink, fails only its subtask" \
    "0 output: d/sub/escape is not a regular file or directory | output: plain is not a directory" \
    "$rc $errors"

# ---- through a shared directory ------------------------------------------------
mkdir -p "$TMP/share" "$TMP/a3"
(cd "$TMP/a3" && exec "$AGENT" --name it-agent-share --slots 2 --namespace "$NS2" \
    --store "file://$TMP/share" >>"$TMP/agents.log" 2>&1) &
PIDS+=($!)
(cd "$TMP" && MAPQ_NAMESPACE="$NS2" timeout -s KILL 60 "$MAPQ" run "$TMP/dirs.yaml" \
    --store "file://$TMP/share" --inputs "$TMP/in.json" --json >"$TMP/share.json" 2>"$TMP/share.err")
rc=$?
check "directories through a shared directory: the same listing and merge" "0 yes" \
    "$rc $(python3 -c '
import json, sys
a, b = (json.load(open(p))["output"] for p in sys.argv[1:])
print("yes" if (a["listing"], a["merged"]) == (b["listing"], b["merged"]) else (a, b))' "$TMP/run1.json" "$TMP/share.json")"
check "... every file and manifest is a blob there, none in Redis" "yes 0" \
    "$(python3 - "$TMP/share.json" "$TMP/share" <<'PY'
import json, os, sys
outs = json.load(open(sys.argv[1]))["output"]["outs"]
ok = all(o["uri"].startswith("file://%s/sha256/" % sys.argv[2]) and o["uri"].endswith("#out")
         and os.path.isfile(o["uri"][7:].split("#")[0]) for o in outs)
print("yes" if ok else outs)
PY
) $(redis_cli --scan --pattern "$NS2:blob*" | wc -l | tr -d ' ')"

finish
