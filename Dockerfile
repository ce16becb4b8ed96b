# syntax=docker/dockerfile:1
#
# changewatch serve: embedded mode (dashboard, REST API, Socket.IO, scheduler and checkers
# over one SQLite file in /datastore) on port 5000, as a non-root user.
#
#   docker build -t changewatch .
#   docker run -d -p 5000:5000 -v changewatch-data:/datastore \
#     -e SALTED_PASS="$(changewatch hash-password)" changewatch
#
# A server on a network address refuses to start without a dashboard password: give one with
# SALTED_PASS, or set CW_ALLOW_NO_PASSWORD=true on a network you trust. docker-compose.yml
# has the same with an optional browser for JavaScript pages. README.md ("Container") says
# what of this file has been verified and how.
#
# BINARY_FROM=prebuilt takes target/release/changewatch and dashboard/dist from a context
# that holds them (infra/container-check.sh does, to build the runtime stage without the
# toolchain images); by default both are built here.

ARG RUST_VERSION=1
ARG NODE_VERSION=22
ARG BINARY_FROM=build

# --- dashboard: TypeScript bundle built to dashboard/dist --------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS dashboard
WORKDIR /src/dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboard/ ./
RUN npm run build

# --- changewatch binary -------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS compile
# libxml2 (XPath filters) is linked by the core crate; the libxml crate generates its
# bindings with bindgen, which needs libclang. The release build links a libxml2 built from
# Debian's source without ICU (infra/build-libxml2.sh, dpkg-dev unpacks the source), as
# `make run` does; if that fails it links the system's, which the runtime stage has.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libxml2-dev pkg-config libclang-dev dpkg-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    eval "$(bash infra/build-libxml2.sh --or-system native)" \
 && cargo build --release --locked -p changewatch \
 && install -D -m 0755 target/release/changewatch /out/changewatch

FROM scratch AS build
COPY --from=compile /out/changewatch /out/changewatch
COPY --from=dashboard /src/dashboard/dist /out/dashboard

FROM scratch AS prebuilt
COPY target/release/changewatch /out/changewatch
COPY dashboard/dist /out/dashboard

FROM ${BINARY_FROM} AS binary

# --- runtime ------------------------------------------------------------------------------
# Debian's slim image with libxml2 (the one library the binary needs beyond glibc) and CA
# certificates (https pages and notification services). No shell tools are used at run time:
# the health check is the binary itself.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libxml2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin changewatch \
 && install -d -o 10001 -g 10001 -m 0750 /datastore
WORKDIR /app
COPY --from=binary /out/changewatch /app/changewatch
COPY --from=binary /out/dashboard /app/dashboard
# Upstream's image's names where changewatch has them (PORT, LISTEN_HOST, the datastore in
# /datastore); the rest of the configuration is the same environment as `changewatch serve`
# (README.md, "Configuration"): BASE_URL, SALTED_PASS, FETCH_WORKERS,
# MINIMUM_SECONDS_RECHECK_TIME, PLAYWRIGHT_DRIVER_URL, ...
ENV DATASTORE_PATH=/datastore \
    DASHBOARD_DIR=/app/dashboard \
    LISTEN_HOST=0.0.0.0 \
    PORT=5000 \
    LOG_LEVEL=info
VOLUME ["/datastore"]
USER 10001:10001
EXPOSE 5000
# SIGTERM starts the graceful shutdown (checks finish for up to 10 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/app/changewatch", "healthcheck"]
ENTRYPOINT ["/app/changewatch"]
CMD ["serve"]
