#!/usr/bin/env bash
# fresh.sh - proves the README on a pristine Debian 12 machine: a clean
# clone of this repository (its committed HEAD) runs the README's two
# commands, scripts/quickstart.sh and then scripts/test.sh (the whole
# suite), inside a container of a minimal debian:bookworm-slim that has
# nothing installed. A missing install step fails here. Needs root (podman,
# installed when missing); when no image registry is reachable the base
# image is made with debootstrap (scripts/container-lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/container-lib.sh

need_podman
base_image
work=$(mktemp -d /tmp/mapq-fresh-XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q --no-local . "$work/src"
echo "== fresh machine: $BASE_IMAGE, clone of $(git rev-parse --short HEAD)"
# The machine's own setup comes along, as its apt mirror does: when its
# npm trusts certificates of its own (a TLS proxy's), so does npm in the
# container (integration.s3 installs its server from npm). Nothing of the
# project's is installed this way.
setup=()
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
    setup=(-v "$cafile:/etc/mapq-machine-ca.crt:ro"
        -e NPM_CONFIG_CAFILE=/etc/mapq-machine-ca.crt)
fi
# As root on a real machine, with CAP_SYS_PTRACE (tests read the /proc
# files of processes that made themselves non-dumpable).
podman_run --rm --network host --cap-add SYS_PTRACE "${setup[@]}" \
    -v "$work/src:/src" -w /src "$BASE_IMAGE" \
    bash -c 'set -e; scripts/quickstart.sh; scripts/test.sh'
