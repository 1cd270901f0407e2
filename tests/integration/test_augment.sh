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

finish
