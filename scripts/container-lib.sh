# container-lib.sh - shared by fresh.sh, container-test.sh and
# deploy-test.sh (sourced): podman as root, a debian:bookworm-slim image
# even where no image registry is reachable, and the checks of the tests.

# need_podman: installs podman (and debootstrap, runc, the CNI dnsname
# plugin, without which compose services cannot find each other by name,
# and catatonit, the init of the pause container `podman kube play`
# builds) when missing. Debian brings the last two as podman's
# recommendations, which a minimal install leaves out.
need_podman() {
    local p missing=()
    for p in podman debootstrap runc; do
        command -v "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ -x /usr/lib/cni/dnsname ] || missing+=(dnsname)
    command -v catatonit >/dev/null 2>&1 ||
        [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "containers: needs root to install ${missing[*]}" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends podman debootstrap runc uidmap \
        fuse-overlayfs slirp4netns ca-certificates catatonit \
        golang-github-containernetworking-plugin-dnsname >/dev/null
}

# Resource limits given to every container: runc cannot raise a
# container's limits above the host's hard ones, which podman's defaults
# may be.
PODMAN_LIMITS=(--ulimit nofile=16384:16384 --ulimit nproc=8192:8192)

# podman_runtime: "--runtime runc" where runc is installed (crun cannot
# start containers on hosts with hybrid cgroups).
podman_runtime() {
    if command -v runc >/dev/null 2>&1; then
        echo "--runtime=$(command -v runc)"
    fi
}

# podman_run ARGS...: podman run with that runtime and those limits.
podman_run() {
    podman $(podman_runtime) run "${PODMAN_LIMITS[@]}" "$@"
}

# podman_build ARGS...: podman build in Docker's image format (the OCI
# format drops HEALTHCHECK), from local images only, with the host's
# network for apt.
podman_build() {
    podman build $(podman_runtime) "${PODMAN_LIMITS[@]}" --format docker \
        --pull=never --network host "$@"
}

# apt_mirror: the Debian mirror this machine's apt uses (deb822 sources
# first, then sources.list), or deb.debian.org.
apt_mirror() {
    local url
    url=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
        url=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
            /etc/apt/sources.list | head -n 1)
    fi
    echo "${url:-http://deb.debian.org/debian}"
}

# BASE_IMAGE: what Dockerfiles name as their base, resolved locally.
BASE_IMAGE=docker.io/library/debian:bookworm-slim

# base_image: makes sure $BASE_IMAGE exists in podman's store. Without a
# registry it is built: debootstrap --variant=minbase bookworm from the
# machine's apt mirror (about 30 s), trimmed as Debian's slim images are,
# imported.
base_image() {
    local root mirror
    podman image exists "$BASE_IMAGE" && return 0
    if timeout 120 podman pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    mirror=$(apt_mirror)
    root=$(mktemp -d /tmp/mapq-bookworm-XXXXXX)
    echo "making $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror"
    if ! debootstrap --variant=minbase bookworm "$root" "$mirror" \
        >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        rm -rf "$root" "$root.log"
        return 1
    fi
    # As Debian's slim images: no documentation, manuals or locales, now
    # or from packages installed later (copyright files stay).
    printf '%s\n' 'path-exclude /usr/share/doc/*' \
        'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' \
        'path-exclude /usr/share/info/*' 'path-exclude /usr/share/lintian/*' \
        'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' \
        >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright \
        -not -type d -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/usr/share/lintian/* \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import -q \
        --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root" "$root.log"
}

# redis_image TAG: an image of Debian's redis-server, run as redis in
# /data (for AOF files), for where the official one is not at hand.
redis_image() {
    podman_build -q -t "$1" -f - . >/dev/null <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis /data
USER redis
WORKDIR /data
CMD ["redis-server"]
EOF
}

# ---- the tests' checks (they count failures in $failed) ----------------

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        echo "ok - $1"
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#   actual:   $3"
        failed=$((failed + 1))
    fi
}
# wait_for SECONDS COMMAND...: polls COMMAND every 100 ms.
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
