#!/usr/bin/env bash
# Builds one Lambda function's `bootstrap` for SAM's makefile build method: plain `sam build`
# from the repository root runs `make build-<LogicalId>` there (the template's
# `BuildMethod: makefile`, `ContextPath: ..`; samconfig.toml's `build_in_source = true`), and
# the root Makefile calls this script with the function's logical id and SAM's ARTIFACTS_DIR.
#
#   bash infra/build-function.sh CheckerFunction "$ARTIFACTS_DIR"
#
# Why not SAM's rust-cargolambda method: it links whatever libxml2 the build machine has (a
# shared one, which provided.al2023 lacks) unless the caller's shell was prepared by hand, and
# SAM's cache hashed only the function's folder. Here every build:
#   - builds (once, cached) and links libxml2 statically (infra/build-libxml2.sh);
#   - builds for the architecture samconfig.toml names (its one `Architecture=` setting; SAM
#     does not tell a makefile build which one the template resolved), or SAM_ARCH if set;
#   - cross-compiles with cargo-lambda and Zig (no Docker), into SAM_TARGET_DIR (default
#     target/sam, apart from the workspace's target/ so other builds are not locked out);
#   - checks the result with infra/check-lambda-binaries.sh before SAM packages it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
id="${1:?usage: $0 LogicalId ARTIFACTS_DIR}"
out="${2:?usage: $0 LogicalId ARTIFACTS_DIR}"

case "$id" in
  ApiFunction) bin=changewatch-fn-api ;;
  SchedulerFunction) bin=changewatch-fn-scheduler ;;
  CheckerFunction) bin=changewatch-fn-checker ;;
  NotifierFunction) bin=changewatch-fn-notifier ;;
  *) echo "build-function: no function $id in the template" >&2; exit 2 ;;
esac

arch="${SAM_ARCH:-$(sed -n 's/.*Architecture=\(arm64\|x86_64\).*/\1/p' "$root/samconfig.toml" | head -n 1)}"
case "$arch" in
  arm64) flag=--arm64 ;;
  x86_64) flag=--x86-64 ;;
  *) echo "build-function: no Architecture=arm64|x86_64 in samconfig.toml (or SAM_ARCH)" >&2; exit 2 ;;
esac
command -v cargo-lambda >/dev/null 2>&1 || {
  echo "build-function: cargo-lambda is needed (python3 -m pip install cargo-lambda)" >&2
  exit 2
}

# SAM builds the four functions in parallel: the first one builds libxml2, the others wait for
# it instead of building (and installing) it at the same time.
cache="${CW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/changewatch}"
mkdir -p "$cache"
env_lines="$(flock "$cache/libxml2-$arch.lock" bash "$here/build-libxml2.sh" "$arch")"
eval "$env_lines"
export CARGO_TARGET_DIR="${SAM_TARGET_DIR:-$root/target/sam}"
echo "build-function: $id -> $bin ($arch)" >&2
(cd "$root" && cargo lambda build --release --locked "$flag" -p "$bin" --bin "$bin")
mkdir -p "$out"
install -m 0755 "$CARGO_TARGET_DIR/lambda/$bin/bootstrap" "$out/bootstrap"
bash "$here/check-lambda-binaries.sh" "$out/bootstrap"
