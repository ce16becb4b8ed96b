#!/usr/bin/env bash
# Checks the `serve` container image (the root Dockerfile) as far as this machine allows, and
# says which way it went. Not part of `make test`: it builds an image (minutes) or runs a server.
#
#   bash infra/container-check.sh                      # buildah when it can, else the process check
#   CW_CONTAINER_CHECK=process bash infra/container-check.sh
#
# buildah: the Dockerfile's runtime stage is built with BINARY_FROM=prebuilt from a context
#   holding the binary and the built dashboard (the toolchain stages need the rust and node
#   images, which this script does not assume), with buildah's chroot isolation and vfs
#   storage (no daemon, no user namespaces, no overlay). The image's config is checked
#   (user, volume, port, environment, HEALTHCHECK), then the image is run: `serve` as its
#   entrypoint gives it, and the HEALTHCHECK command inside the same image, and the dashboard
#   and /healthz are fetched from the host. The base `debian:bookworm-slim` must be in
#   buildah's storage or pullable; CW_BASE_ROOTFS=DIR (a debootstrapped bookworm) makes a
#   stand-in for it when no registry can be reached.
# process: no image. The binary runs as the image runs it: uid and gid 10001 (setpriv), the
#   image's environment (DATASTORE_PATH, DASHBOARD_DIR, LISTEN_HOST=0.0.0.0, PORT), a data
#   directory owned by that user with the image's mode, its command line; then the
#   HEALTHCHECK command, /healthz and the dashboard. Paths are a temporary directory's, not
#   /app and /datastore.
#
# Environment: CW_BINARY (default target/release/changewatch, else target/debug/changewatch),
# CW_DASHBOARD_DIR (default dashboard/dist), CW_CONTAINER_CHECK (auto|buildah|process),
# CW_CHECK_PORT (default 5077).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${CW_CONTAINER_CHECK:-auto}
port=${CW_CHECK_PORT:-5077}
binary=${CW_BINARY:-}
if [[ -z $binary ]]; then
  if [[ -x target/release/changewatch ]]; then binary=target/release/changewatch; else binary=target/debug/changewatch; fi
fi
dashboard=${CW_DASHBOARD_DIR:-dashboard/dist}
[[ -x $binary ]] || { echo "no changewatch binary at $binary (cargo build -p changewatch)" >&2; exit 2; }
[[ -f $dashboard/index.html ]] || { echo "no built dashboard at $dashboard (cd dashboard && npm run build)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n ${ctr:-} ]]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "container-check: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# The password the checks log in with (a server on 0.0.0.0 refuses to start without one).
salted=$(printf 'check-password' | "$binary" hash-password)

# Waits for /healthz on the host's loopback and fetches the dashboard.
probe() {
  local base="http://127.0.0.1:$port" i
  for i in $(seq 1 100); do
    if curl -fsS "$base/healthz" >"$work/health.json" 2>/dev/null; then break; fi
    sleep 0.2
  done
  grep -q '"status":"healthy"' "$work/health.json" || fail "/healthz: $(cat "$work/health.json" 2>/dev/null)"
  say "/healthz: $(cat "$work/health.json")"
  curl -fsS "$base/" >"$work/index.html" || fail "the dashboard's / did not answer"
  grep -qi '<script' "$work/index.html" || fail "/ is not the dashboard"
  local js
  js=$(grep -o 'src="[^"]*\.js"' "$work/index.html" | head -1 | sed 's/src="//; s/"$//')
  curl -fsS "$base/${js#/}" -o /dev/null || fail "the dashboard's script $js did not load"
  say "dashboard: / and $js served"
  # The password is required for the API; the session endpoint answers without it.
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/watch") == 403 ]] || fail "/api/v1/watch without a key is not 403"
}

have_base() {
  buildah images --quiet docker.io/library/debian:bookworm-slim >/dev/null 2>&1 && return 0
  buildah pull --quiet docker.io/library/debian:bookworm-slim >/dev/null 2>&1 && return 0
  if [[ -n ${CW_BASE_ROOTFS:-} && -x ${CW_BASE_ROOTFS}/bin/sh ]]; then
    say "no registry: debian:bookworm-slim stands in from $CW_BASE_ROOTFS"
    local c m
    c=$(buildah from scratch)
    m=$(buildah mount "$c")
    cp -a "$CW_BASE_ROOTFS"/. "$m"/
    buildah umount "$c" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$c"
    buildah commit --quiet "$c" docker.io/library/debian:bookworm-slim >/dev/null
    buildah rm "$c" >/dev/null
    return 0
  fi
  return 1
}

check_buildah() {
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
  have_base || { say "buildah: debian:bookworm-slim is neither stored nor pullable (set CW_BASE_ROOTFS)"; return 1; }
  local ctx="$work/context"
  mkdir -p "$ctx/target/release" "$ctx/dashboard"
  cp "$binary" "$ctx/target/release/changewatch"
  cp -r "$dashboard" "$ctx/dashboard/dist"
  cp Dockerfile "$ctx/Dockerfile"
  say "buildah: building the runtime stage (BINARY_FROM=prebuilt, binary $binary)"
  # Docker format: the OCI image config has no HEALTHCHECK, and buildah drops it there.
  buildah bud --quiet --format docker --pull=never --layers=false --build-arg BINARY_FROM=prebuilt \
    -t localhost/changewatch:check -f "$ctx/Dockerfile" "$ctx" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; fail "buildah bud"; }
  local cfg
  cfg=$(buildah inspect --type image localhost/changewatch:check)
  echo "$cfg" >"$work/inspect.json"
  python3 - "$work/inspect.json" <<'PY' || fail "image config"
import json, sys
c = json.load(open(sys.argv[1]))
oci = c["Docker"]["config"]
docker = oci
env = dict(e.split("=", 1) for e in oci["Env"])
assert oci["User"] == "10001:10001", oci["User"]
assert "/datastore" in oci["Volumes"], oci.get("Volumes")
assert "5000/tcp" in oci["ExposedPorts"], oci.get("ExposedPorts")
assert oci["Entrypoint"] == ["/app/changewatch"] and oci["Cmd"] == ["serve"], (oci["Entrypoint"], oci["Cmd"])
for k, v in {"DATASTORE_PATH": "/datastore", "DASHBOARD_DIR": "/app/dashboard", "LISTEN_HOST": "0.0.0.0", "PORT": "5000"}.items():
    assert env.get(k) == v, (k, env.get(k))
hc = docker.get("Healthcheck") or {}
assert hc.get("Test") == ["CMD", "/app/changewatch", "healthcheck"], hc
print("image config: user 10001:10001, volume /datastore, port 5000, entrypoint /app/changewatch serve, HEALTHCHECK", hc["Test"][1:], file=sys.stderr)
PY
  ctr=$(buildah from --pull=never localhost/changewatch:check)
  # The image's own user, environment, volume and command; the port moved so a local 5000
  # is left alone.
  buildah run --env PORT="$port" --env SALTED_PASS="$salted" "$ctr" -- /app/changewatch serve \
    >"$work/serve.log" 2>&1 &
  pids+=($!)
  probe
  buildah run --env PORT="$port" "$ctr" -- /app/changewatch healthcheck \
    || fail "the HEALTHCHECK command inside the image"
  local who
  who=$(buildah run "$ctr" -- /app/changewatch --version)
  say "HEALTHCHECK command inside the image: exit 0 ($who)"
  # Files the server wrote belong to the image's user.
  # The server process, seen from this host: its user, and the database in its /datastore
  # (buildah run gives the image's volume a fresh directory per run, so it is read through
  # the process's own root).
  local spid owner
  spid=$(pgrep -o -u 10001 -f '^/app/changewatch serve$') || fail "no server process of uid 10001"
  grep -q "^Uid:[[:space:]]*10001[[:space:]]" "/proc/$spid/status" || fail "the server does not run as uid 10001"
  owner=$(stat -c '%u:%g' "/proc/$spid/root/datastore/changewatch.db")
  [[ $owner == 10001:10001 ]] || fail "/datastore/changewatch.db is owned by $owner"
  say "the server runs as uid 10001; /datastore/changewatch.db is owned by 10001:10001"
  say "OK (buildah: image built and run)"
}

check_process() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to run as uid 10001"
  [[ $(id -u) == 0 ]] || fail "the process check switches to uid 10001: run it as root"
  mkdir -p "$work/app" "$work/datastore"
  cp "$binary" "$work/app/changewatch"
  cp -r "$dashboard" "$work/app/dashboard"
  chmod 0755 "$work" "$work/app"
  chown 10001:10001 "$work/datastore"
  chmod 0750 "$work/datastore"
  local run=(setpriv --reuid 10001 --regid 10001 --clear-groups --)
  local envs=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    DATASTORE_PATH="$work/datastore" DASHBOARD_DIR="$work/app/dashboard"
    LISTEN_HOST=0.0.0.0 PORT="$port" LOG_LEVEL=info)
  say "process: $binary as uid 10001, the image's environment, port $port"
  (cd "$work/app" && exec "${run[@]}" "${envs[@]}" SALTED_PASS="$salted" ./changewatch serve) \
    >"$work/serve.log" 2>&1 &
  pids+=($!)
  probe
  "${run[@]}" "${envs[@]}" "$work/app/changewatch" healthcheck || fail "the HEALTHCHECK command"
  say "HEALTHCHECK command: exit 0"
  local owner
  owner=$(stat -c '%u:%g' "$work/datastore/changewatch.db")
  [[ $owner == 10001:10001 ]] || fail "changewatch.db is owned by $owner"
  say "OK (process: no image built)"
}

case $mode in
  buildah) check_buildah ;;
  process) check_process ;;
  auto)
    if command -v buildah >/dev/null && check_buildah; then :; else
      say "buildah unavailable or without a base image: checking the process instead"
      check_process
    fi
    ;;
  *) fail "CW_CONTAINER_CHECK must be auto, buildah or process" ;;
esac
