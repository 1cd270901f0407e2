#!/usr/bin/env bash
# deps.sh - installs what mapq needs to build and test on Debian 12 / Ubuntu,
# skipping what is already there. Uses sudo when not run as root.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libhiredis-dev libmsgpack-dev
      libevent-dev libcmocka-dev libyaml-dev libjansson-dev libyajl-dev
      libssl-dev libsystemd-dev libcurl4-openssl-dev systemd
      redis-server redis-tools python3 valgrind clang clang-format
      libclang-rt-14-dev procps prometheus python3-yaml chromium groff-base
      dpkg-dev stunnel4 openssl iproute2 imagemagick git)
# git: integration.upgrade runs older revisions of the function library
# as this repository's history has them.
# node and npm run the S3-protocol server of the S3 test (s3rver, from
# npm); a node that is there already (another build of it) is kept.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
