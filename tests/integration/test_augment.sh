#!/usr/bin/env bash
# examples/augment.yaml, Flyte's image augmentation map: draw images, map
# ImageMagick over them (three augmented images each, returned as a list
# of files), coalesce the lists. Agents in working directories of their
# own share nothing with mapq run but Redis. Every output image is
# checked: stored whole, a PNG, and not its input; a second run is all
# cache hits. Then the same example in local mode, one command. Real
# processes; waits are bounded.
. "$(dirname "$0")/harness.sh"

start_redis
start_agents 2
ex="$SRC/examples/augment.yaml"
mkdir -p "$TMP/elsewhere"

(cd "$TMP/elsewhere" && timeout -s KILL 120 "$MAPQ" run "$ex" --json >"$TMP/run1.json" 2>"$TMP/run1.err")
check "augment runs with agents that share only Redis" "0" "$?"

check "4 images drawn, 12 augmented" "4 12" \
    "$(python3 -c 'import json, sys; o = json.load(open(sys.argv[1]))["output"]; print(len(o["images"]), len(o["augmented"]))' "$TMP/run1.json")"

# The files, written out by mapq result --fetch.
x1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run1.json")
"$MAPQ" result "$x1" --fetch "$TMP/got" >/dev/null 2>"$TMP/fetch.err"
check "mapq result --fetch writes the 16 files" "0 mapq: 16 files written to $TMP/got" \
    "$? $(cat "$TMP/fetch.err")"
"$MAPQ" result "$x1" --fetch "$TMP/got" >/dev/null 2>"$TMP/fetch2.err"
check "... and, run again, finds them there" "0 mapq: 0 files written to $TMP/got" \
    "$? $(cat "$TMP/fetch2.err")"
python3 -c '
import json, sys
out = json.load(open(sys.argv[1]))["output"]
for r in out["images"] + out["augmented"]:
    print(r["sha256"], r["size"], r["uri"].rsplit("/", 1)[1])
' "$TMP/run1.json" >"$TMP/refs"
ok=yes
while read -r sha size name; do
    [ "$(sha256sum <"$TMP/got/$name" | cut -d' ' -f1)" = "$sha" ] || ok="no: $name hash"
    [ "$(stat -c %s "$TMP/got/$name")" = "$size" ] || ok="no: $name size"
    [ "$(identify -format '%m %wx%h' "$TMP/got/$name" 2>/dev/null)" = "PNG 96x96" ] || ok="no: $name is no 96x96 PNG"
done <"$TMP/refs"
check "every image is stored whole, under its name, and is a 96x96 PNG" "yes" "$ok"
names=$(cut -d' ' -f3 "$TMP/refs" | sort | tr '\n' ' ')
check "the augmented images are the three of each image" \
    "image-1-blur.png image-1-flop.png image-1-rot90.png image-1.png image-2-blur.png image-2-flop.png image-2-rot90.png image-2.png image-3-blur.png image-3-flop.png image-3-rot90.png image-3.png image-4-blur.png image-4-flop.png image-4-rot90.png image-4.png " \
    "$names"
differs=yes
for i in 1 2 3 4; do
    for kind in flop rot90 blur; do
        cmp -s "$TMP/got/image-$i.png" "$TMP/got/image-$i-$kind.png" && differs="no: image-$i-$kind.png"
    done
done
check "every augmented image differs from its input" "yes" "$differs"

(cd "$TMP/elsewhere" && timeout -s KILL 120 "$MAPQ" run "$ex" --json >"$TMP/run2.json" 2>"$TMP/run2.err")
rc=$?
x=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/run2.json")
counts=$("$MAPQ" status "$x" --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(" ".join("%s:%d/%d" % (n["name"], n["counts"]["cached"], n["total"]) for n in doc["nodes"]))')
check "a second run is all cache hits (draw and augment)" \
    "0 images:4/4 augmented:4/4 all:0/1" "$rc $counts"
check "... with the same output" "yes" \
    "$(python3 -c 'import json, sys; a, b = (json.load(open(p))["output"] for p in sys.argv[1:]); print("yes" if a == b else "no")' "$TMP/run1.json" "$TMP/run2.json")"

# Local mode: no Redis given, one command (its own redis-server and agents).
(cd "$TMP/elsewhere" && env -u MAPQ_REDIS_URL timeout -s KILL 120 "$MAPQ" run "$ex" --agents 2 --json \
    >"$TMP/local.json" 2>"$TMP/local.err")
rc=$?
check "in local mode, one command gives the same images" "0 yes" \
    "$rc $(python3 -c 'import json, sys; a, b = (json.load(open(p))["output"] for p in sys.argv[1:]); print("yes" if a == b else "no")' "$TMP/run1.json" "$TMP/local.json" 2>&1)"

# The shared-directory store: two more agents, each in a working directory
# of its own and in a namespace of their own, share Redis and a directory
# (as NFS would give them). The files go there, none into Redis.
shared="$TMP/shared"
mkdir -p "$shared" "$TMP/a3" "$TMP/a4"
for i in 3 4; do
    (cd "$TMP/a$i" && exec "$AGENT" --name "it-agent-$i" --slots 2 --namespace "$NS2" \
        --store "file://$shared" >>"$TMP/agents.log" 2>&1) &
    PIDS+=($!)
done
(cd "$TMP/elsewhere" && MAPQ_NAMESPACE="$NS2" timeout -s KILL 120 "$MAPQ" run "$ex" \
    --store "file://$shared" --json >"$TMP/shared1.json" 2>"$TMP/shared1.err")
check "augment runs on the shared-directory store" "0" "$?"
python3 -c '
import json, sys
out = json.load(open(sys.argv[1]))["output"]
for r in out["images"] + out["augmented"]:
    print(r["sha256"], r["size"], r["uri"])
' "$TMP/shared1.json" >"$TMP/srefs"
ok=yes
n=0
while read -r sha size uri; do
    n=$((n + 1))
    path=${uri#file://}
    path=${path%%#*}
    case "$uri" in
    "file://$shared/sha256/${sha:0:2}/$sha#image-"*.png) ;;
    *) ok="no: $uri is not a blob of $shared" ;;
    esac
    [ "$(sha256sum <"$path" | cut -d' ' -f1)" = "$sha" ] || ok="no: $path hash"
    [ "$(stat -c %s "$path")" = "$size" ] || ok="no: $path size"
    [ "$(stat -c %a "$path")" = 444 ] || ok="no: $path is writable"
    [ "$(identify -format '%m %wx%h' "$path" 2>/dev/null)" = "PNG 96x96" ] || ok="no: $path is no 96x96 PNG"
done <"$TMP/srefs"
check "its 16 images are whole, read-only blobs of the shared directory" "16 yes" "$n $ok"
check "... and no file went into Redis" "0" \
    "$(redis_cli --scan --pattern "$NS2:blob*" | wc -l)"
check "... the same images as through Redis" "yes" \
    "$(python3 -c '
import json, sys
a, b = (json.load(open(p))["output"] for p in sys.argv[1:])
key = lambda o: [(r["sha256"], r["size"]) for r in o["images"] + o["augmented"]]
print("yes" if key(a) == key(b) else "no")' "$TMP/run1.json" "$TMP/shared1.json")"
differs=yes
while read -r sha size uri; do
    name=${uri##*#}
    case "$name" in
    image-*-*.png) base=${name%-*.png} ;;
    *) continue ;;
    esac
    orig=$(grep "#$base.png\$" "$TMP/srefs" | cut -d' ' -f1)
    [ -n "$orig" ] && [ "$orig" != "$sha" ] || differs="no: $name"
done <"$TMP/srefs"
check "every augmented image differs from its input" "yes" "$differs"
MAPQ_NAMESPACE="$NS2" "$MAPQ" result "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/shared1.json")" \
    --fetch "$TMP/sgot" >/dev/null 2>"$TMP/sfetch.err"
check "mapq result --fetch reads them from the shared directory" \
    "0 mapq: 16 files written to $TMP/sgot $(sha256sum <"$TMP/got/image-2-blur.png")" \
    "$? $(cat "$TMP/sfetch.err") $(sha256sum <"$TMP/sgot/image-2-blur.png" 2>&1)"

(cd "$TMP/elsewhere" && MAPQ_NAMESPACE="$NS2" timeout -s KILL 120 "$MAPQ" run "$ex" \
    --store "file://$shared" --json >"$TMP/shared2.json" 2>"$TMP/shared2.err")
rc=$?
x=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["execution"])' "$TMP/shared2.json")
counts=$(MAPQ_NAMESPACE="$NS2" "$MAPQ" status "$x" --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(" ".join("%s:%d/%d" % (n["name"], n["counts"]["cached"], n["total"]) for n in doc["nodes"]))')
check "a second run on the shared directory is all cache hits" \
    "0 images:4/4 augmented:4/4 all:0/1" "$rc $counts"

# An agent not given the run's directory stores nothing there: the
# subtask fails as a system failure, and the message says why.
(cd "$TMP/elsewhere" && MAPQ_NAMESPACE="$NS2" timeout -s KILL 120 "$MAPQ" run "$ex" \
    --store "file://$TMP/elsewhere" --overwrite-cache --json >"$TMP/other.json" 2>"$TMP/other.err")
rc=$?
check "a store the agents were not given fails the run, saying why" "1 yes" \
    "$rc $(grep -q "was not given --store file://$TMP/elsewhere" "$TMP/other.err" "$TMP/other.json" && echo yes)"
check "... and nothing was written there" "no" \
    "$([ -e "$TMP/elsewhere/sha256" ] && echo yes || echo no)"

finish
