#!/usr/bin/env bash
# `cmake --install` into a fresh prefix: the two programs (and nothing of the
# tests or the benchmark), the plugin header and its pkg-config file, the
# man pages (which render without warnings and name every subcommand and
# agent option the programs know), the systemd units pointing at the
# installed programs, the documentation. A plugin built out of the tree
# with pkg-config runs under the installed programs in local mode.
. "$(dirname "$0")/harness.sh"

P=$TMP/prefix
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1
check "cmake --install: exit 0" 0 "$?"
for f in bin/mapq bin/mapq-agent include/mapq/plugin.h \
    share/pkgconfig/mapq-plugin.pc share/man/man1/mapq.1 \
    share/man/man1/mapq-agent.1 lib/systemd/system/mapq-agent.service \
    lib/systemd/system/mapq-scheduler.service share/doc/mapq/LICENSE \
    share/doc/mapq/OPERATIONS.md share/doc/mapq/JSON.md \
    share/doc/mapq/examples/anomalies.yaml; do
    check "installs $f" yes "$([ -s "$P/$f" ] && echo yes || echo no)"
done
check "installs no test, benchmark or test plugin" "" \
    "$(find "$P" -name 'test_*' -o -name 'mapq-bench*' -o -name '*.so' | head -3)"
check "the installed mapq runs" "mapq 0.1.0" \
    "$("$P/bin/mapq" --version | cut -d' ' -f1-2)"
check "the installed mapq-agent runs" "mapq-agent 0.1.0" \
    "$("$P/bin/mapq-agent" --version | cut -d' ' -f1-2)"
check "the agent's unit starts the installed agent" 1 \
    "$(grep -c "^ExecStart=$P/bin/mapq-agent " "$P/lib/systemd/system/mapq-agent.service")"
check "the scheduler's unit starts the installed mapq" 1 \
    "$(grep -c "^ExecStart=$P/bin/mapq scheduler" "$P/lib/systemd/system/mapq-scheduler.service")"

# ---- the plugin API through pkg-config ---------------------------------
export PKG_CONFIG_PATH="$P/share/pkgconfig"
check "pkg-config: mapq-plugin's version" 0.1.0 \
    "$(pkg-config --modversion mapq-plugin)"
inc=$(pkg-config --cflags-only-I mapq-plugin | sed 's/^ *-I//; s/ *$//')
check "pkg-config: its include directory is the installed one" \
    "$(realpath "$P/include")" "$(realpath "$inc" 2>&1)"
mkdir -p "$TMP/plugins"
# shellcheck disable=SC2046
cc -shared -fPIC -Wall -Werror $(pkg-config --cflags mapq-plugin msgpack) \
    -o "$TMP/plugins/mapq_example_plugin.so" \
    "$SRC/examples/plugins/example_plugin.c" $(pkg-config --libs msgpack) \
    2>"$TMP/cc.err"
check "the example plugin builds out of the tree against the installed header" \
    0 "$?"
check "... and runs under the installed programs (local mode)" "[1,4,9,16,25]" \
    "$(env -u MAPQ_REDIS_URL MAPQ_PLUGIN_PATH="$TMP/plugins" \
        timeout 60 "$P/bin/mapq" run "$SRC/examples/plugin_square.yaml" \
        --agents 1 2>"$TMP/run.err" | tr -d ' \n')"

# ---- the man pages ------------------------------------------------------
if command -v groff >/dev/null && ! groff -Tutf8 -z </dev/null >/dev/null 2>&1; then
    # A slim image (dpkg path-exclude /usr/share/groff) keeps the program
    # but not its devices; container-test.sh runs this on the full host.
    echo "ok - man pages render # SKIP groff's devices are not installed here"
elif command -v groff >/dev/null; then
    for m in mapq mapq-agent; do
        check "$m.1 renders without a warning" "" \
            "$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$P/share/man/man1/$m.1" 2>&1 | head -3)"
    done
else
    echo "not ok - groff is not installed (scripts/deps.sh installs groff-base)"
    FAILED=$((FAILED + 1))
fi
page=$(sed 's/\\-/-/g' "$P/share/man/man1/mapq.1")
for cmd in $("$P/bin/mapq" --help | grep -o 'mapq [a-z]*' | awk '{ print $2 }' | sort -u); do
    check "mapq.1 documents mapq $cmd" yes \
        "$(echo "$page" | grep -q "^\.B mapq $cmd\b" && echo yes || echo no)"
done
page=$(sed 's/\\-/-/g' "$P/share/man/man1/mapq-agent.1")
for opt in $("$P/bin/mapq-agent" --help | grep -o -- '--[a-z-]*[a-z]' | sort -u); do
    check "mapq-agent.1 documents $opt" yes \
        "$(echo "$page" | grep -q -- "$opt\b" && echo yes || echo no)"
done
finish
