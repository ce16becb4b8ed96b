#!/usr/bin/env bash
# Builds libxml2 as a static, position-independent library for a Lambda target, or for this
# machine, and prints the environment that makes the `libxml` crate link it statically:
#
#   eval "$(bash infra/build-libxml2.sh x86_64)"    # or arm64
#   sam build --parameter-overrides Architecture=x86_64     # from the repository root
#
#   eval "$(bash infra/build-libxml2.sh native)"    # the release build of `changewatch serve`
#   cargo build --release -p changewatch            # (the Makefile's release targets do this)
#
# Why native: Debian's libxml2.so links ICU (libicuuc, libicudata), which links libstdc++, and
# zlib and liblzma. Every process that loads it maps and relocates all of them: ~1.9 MB of
# resident memory per process (smaps of a program that only links libxml2), and `serve` is a
# server plus its sandbox children, each the same binary. Linked statically, only the few
# libxml2 functions a process runs are resident, laid out with the rest of the binary's code
# (`-ffunction-sections`, so the symbol-ordering file can place each one).
#
# Why: the checker function parses pages with libxml2. Linked against the build machine's
# libxml2 it needs libxml2.so, ICU, zlib and liblzma at run time, and `provided.al2023` has none
# of them. This library is configured without ICU, zlib, lzma, Python, HTTP/FTP and dynamic
# modules (encodings go through glibc's iconv), so a binary linked with it needs only glibc.
# It is compiled with the Zig that cargo-lambda cross-compiles with, against an old glibc
# (CW_LIBXML2_GLIBC, default 2.17), so no symbol newer than the Lambda runtime's glibc (2.34 on
# AL2023) can come from it.
#
# Source: Debian's libxml2 source package for this machine's release, with Debian's patches
# (security fixes) applied, fetched with apt-get through a private sources list (the system's
# apt configuration is not touched). Or set CW_LIBXML2_TARBALL to a libxml2 release tarball.
#
# Idempotent: the result is cached in $CW_CACHE_DIR (default ~/.cache/changewatch), about 10 MB
# per target; the source and build trees are deleted afterwards. `--force` rebuilds.
# Logs go to stderr; stdout carries only the `export` lines.
set -euo pipefail

force=0
or_system=0
arch=x86_64
args=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1; args+=("$arg") ;;
    --or-system) or_system=1 ;;
    x86_64 | arm64 | native) arch="$arg"; args+=("$arg") ;;
    *) echo "usage: $0 [--force] [--or-system] [x86_64|arm64|native]" >&2; exit 2 ;;
  esac
done

# --or-system (the Makefile's release builds): when the library cannot be built (no network
# for the source, no root for apt, no compiler), say so and print nothing, so the build links
# the system's libxml2 as debug builds do. CW_STATIC_LIBXML2=0 asks for that outright.
if [ "$or_system" = 1 ]; then
  if [ "${CW_STATIC_LIBXML2:-1}" = 0 ]; then
    echo "build-libxml2: CW_STATIC_LIBXML2=0: linking the system's libxml2" >&2
  elif ! out="$(bash "$0" "${args[@]}")"; then
    echo "build-libxml2: could not build libxml2: linking the system's (with ICU and" \
      "libstdc++, ~1.9 MB more resident memory per process)" >&2
  else
    printf '%s\n' "$out"
  fi
  exit 0
fi

cache="${CW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/changewatch}"
case "$arch" in
  x86_64) zig_arch=x86_64; rust_target=x86_64-unknown-linux-gnu ;;
  arm64) zig_arch=aarch64; rust_target=aarch64-unknown-linux-gnu ;;
  native)
    # This machine's compiler and glibc, for the target rustc builds for by default.
    rust_target="$(rustc -vV | sed -n 's/^host: //p')"
    [ -n "$rust_target" ] || { echo "build-libxml2: rustc -vV names no host" >&2; exit 1; } ;;
esac
if [ "$arch" = native ]; then
  prefix="$cache/libxml2-static/native-$rust_target"
else
  glibc="${CW_LIBXML2_GLIBC:-2.17}"
  prefix="$cache/libxml2-static/$arch-glibc$glibc"
fi
log() { echo "build-libxml2: $*" >&2; }

print_env() {
  local t="${rust_target//-/_}"
  # Target-specific pkg-config variables (the pkg-config crate reads them before the generic
  # ones), so only crates built for the Lambda target see this prefix. PKG_CONFIG_LIBDIR
  # replaces the system search path: the host's libxml-2.0.pc can never be picked instead.
  echo "export PKG_CONFIG_LIBDIR_${t}=$prefix/lib/pkgconfig"
  echo "export PKG_CONFIG_PATH_${t}="
  echo "export PKG_CONFIG_ALLOW_CROSS=1"
  # The libxml crate's build script: ask pkg-config for the static link (libxml2.a, then the
  # .pc's private libraries -lpthread -lm, which stay dynamic and are part of glibc).
  echo "export LIBXML2_STATIC=1"
}

if [ "$force" = 0 ] && [ -f "$prefix/.complete" ] && [ -f "$prefix/lib/libxml2.a" ]; then
  log "cached: $prefix ($(cat "$prefix/.complete"))"
  print_env
  exit 0
fi

# Zig (cross builds only): the one on PATH, or the one the `ziglang` PyPI package (a dependency
# of cargo-lambda's pip package) ships.
if [ "$arch" = native ]; then
  command -v cc >/dev/null 2>&1 || { log "no cc: install gcc (apt-get install gcc)"; exit 1; }
elif command -v zig >/dev/null 2>&1; then
  zig=(zig)
elif python3 -c "import ziglang" >/dev/null 2>&1; then
  zig=(python3 -m ziglang)
else
  log "no zig: install cargo-lambda with pip (python3 -m pip install cargo-lambda) or zig"
  exit 1
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/libxml2-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- source -----------------------------------------------------------------------------
if [ -n "${CW_LIBXML2_TARBALL:-}" ]; then
  log "source: $CW_LIBXML2_TARBALL"
  mkdir "$work/src"
  tar -xf "$CW_LIBXML2_TARBALL" -C "$work/src" --strip-components=1
  srcver="$(basename "$CW_LIBXML2_TARBALL")"
else
  command -v dpkg-source >/dev/null 2>&1 || {
    log "installing dpkg-dev (dpkg-source unpacks the source package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >&2
  }
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  apt_dir="$work/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename main"
    echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $codename-security main"
  } >"$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root")
  log "fetching Debian's libxml2 source package ($codename)"
  apt-get "${apt_opts[@]}" -qq update >&2
  (cd "$work" && apt-get "${apt_opts[@]}" -qq source libxml2 >"$work/source.log" 2>&1) \
    || { tail -n 20 "$work/source.log" >&2; exit 1; }
  src_dir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'libxml2-*' | head -n 1)"
  [ -n "$src_dir" ] || { log "apt-get source gave no libxml2 directory"; exit 1; }
  mv "$src_dir" "$work/src"
  srcver="$(cd "$work" && ls libxml2_*.dsc | sed 's/^libxml2_//; s/\.dsc$//')"
fi

# --- build ------------------------------------------------------------------------------
if [ "$arch" = native ]; then
  log "building libxml2 $srcver for this machine ($rust_target)"
  cc_env=(CC=cc AR=ar RANLIB=ranlib)
  # One section per function and datum: the linker keeps only what the binary calls and
  # places each function by the symbol-ordering file.
  cflags="-O2 -fPIC -ffunction-sections -fdata-sections"
  host_args=()
else
  log "building libxml2 $srcver for $zig_arch-linux-gnu.$glibc"
  # Small wrapper scripts, because configure wants a single word for CC/AR/RANLIB.
  mkdir "$work/bin"
  zig_cmd="$(printf '%q ' "${zig[@]}")"
  printf '#!/bin/sh\nexec %s cc -target %s "$@"\n' "$zig_cmd" "$zig_arch-linux-gnu.$glibc" >"$work/bin/cc"
  printf '#!/bin/sh\nexec %s ar "$@"\n' "$zig_cmd" >"$work/bin/ar"
  printf '#!/bin/sh\nexec %s ranlib "$@"\n' "$zig_cmd" >"$work/bin/ranlib"
  chmod +x "$work/bin/"*
  cc_env=(CC="$work/bin/cc" AR="$work/bin/ar" RANLIB="$work/bin/ranlib")
  # -fno-sanitize=undefined: zig cc otherwise compiles C with UBSan traps in some modes.
  cflags="-O2 -fPIC -fno-sanitize=undefined"
  host_args=(--host="$zig_arch-linux-gnu")
fi

stage="$work/prefix"
(
  cd "$work/src"
  # Debian's patches touch Makefile.am; make the generated autotools files newer again, so
  # that make does not try to rerun automake (not needed, and usually not installed).
  touch aclocal.m4 && touch configure config.h.in && find . -name Makefile.in -exec touch {} +
  env "${cc_env[@]}" CFLAGS="$cflags" \
    ./configure "${host_args[@]}" --build="$(./config.guess)" \
    --prefix="$prefix" --enable-static --disable-shared --with-pic \
    --without-icu --without-zlib --without-lzma --without-python --without-readline \
    --without-http --without-ftp --without-modules --without-debug --without-history \
    --without-coverage --with-iconv >"$work/configure.log" 2>&1 \
    || { tail -n 40 "$work/configure.log" >&2; exit 1; }
  # Only the library (and what `make install` of it needs), not xmllint or the test programs.
  make -j"$(nproc)" libxml2.la >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
  make install-libLTLIBRARIES install-pkgconfigDATA DESTDIR="$stage" >>"$work/make.log" 2>&1
  make -C include install DESTDIR="$stage" >>"$work/make.log" 2>&1
) || exit 1

# DESTDIR put the files under $stage$prefix; move them into the cache in one step.
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$stage$prefix" "$prefix"
rm -f "$prefix"/lib/*.la
echo "$srcver" >"$prefix/.complete"
log "installed $prefix ($(du -sh "$prefix" | cut -f1))"
print_env
