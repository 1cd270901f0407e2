# mapq: an agent image (mapq-agent as the entry point, the mapq command line
# beside it).
#
#   podman build --format docker -t mapq .    (docker format: keeps HEALTHCHECK)
#   docker build -t mapq .
#   podman run -d -e MAPQ_REDIS_URL=redis://:PASSWORD@HOST:6379 mapq --slots 4
#   podman run --rm --entrypoint mapq -e MAPQ_REDIS_URL=... mapq agents
#
# See docs/OPERATIONS.md, "Container image".

# ---- build ---------------------------------------------------------------
FROM debian:bookworm-slim AS build

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libhiredis-dev libmsgpack-dev libevent-dev libyaml-dev \
        libjansson-dev libyajl-dev libssl-dev libsystemd-dev \
        libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# Only the two programs: no tests (cmocka), no benchmark, no example plugin.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DMAPQ_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target mapq mapq-agent \
 && install -D -s -m 0755 /build/mapq /out/usr/local/bin/mapq \
 && install -D -s -m 0755 /build/mapq-agent /out/usr/local/bin/mapq-agent

# ---- runtime -------------------------------------------------------------
FROM debian:bookworm-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mapq" \
      org.opencontainers.image.description="mapq agent: runs the subtasks of mapq workflows from Redis (mapq-agent, with the mapq command line)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# Runtime libraries only, and tini to run as PID 1: it forwards SIGTERM to
# the agent (which drains) and reaps orphans. Documentation that the
# packages would bring is not installed (copyright files are kept), nor
# tini's static build (/usr/bin/tini is used); apt's lists and caches go in
# the same layer.
ARG DEBIAN_FRONTEND=noninteractive
RUN printf '%s\n' \
        'path-exclude /usr/share/doc/*' \
        'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' \
        'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' \
        'path-exclude /usr/share/lintian/*' \
        'path-exclude /usr/bin/tini-static' \
        >/etc/dpkg/dpkg.cfg.d/mapq-nodoc \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
        libhiredis0.14 libmsgpackc2 libevent-2.1-7 libjansson4 libyajl2 \
        libssl3 libyaml-0-2 libsystemd0 libcurl4 tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
        /var/cache/apt/archives/*.deb /var/cache/debconf/*-old \
        /var/lib/dpkg/*-old /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 mapq \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/mapq \
        --create-home --shell /usr/sbin/nologin mapq

COPY --from=build /out/ /

# Subtasks' working directories and the health file live in /tmp; with
# --read-only, podman mounts a tmpfs there (docker: --tmpfs /tmp).
ENV MAPQ_HEALTH_FILE=/tmp/mapq-agent.health
USER 10001:10001
WORKDIR /var/lib/mapq

# The agent touches MAPQ_HEALTH_FILE after every heartbeat Redis answered
# (about once a second); the check fails when the last one is over 10 s old.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["mapq-agent", "--check-health", "/tmp/mapq-agent.health"]

ENTRYPOINT ["/usr/bin/tini", "--", "mapq-agent"]
CMD []
