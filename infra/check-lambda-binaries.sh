#!/usr/bin/env bash
# Checks that built Lambda binaries run on provided.al2023: their only shared libraries are
# glibc's (and libgcc_s), and no symbol needs a glibc newer than AL2023's 2.34.
#
#   bash infra/check-lambda-binaries.sh infra/.aws-sam/build     # every */bootstrap below it
#   bash infra/check-lambda-binaries.sh path/to/bootstrap ...
#
# Prints one line per binary (size, NEEDED entries, newest GLIBC_ symbol version) and exits 1
# when one of them needs anything else.
set -euo pipefail

max_glibc="${CW_MAX_GLIBC:-2.34}"
# What the provided.al2023 image has in /lib64 (glibc, its loader, libgcc_s).
allowed=" libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libgcc_s.so.1 \
ld-linux-x86-64.so.2 ld-linux-aarch64.so.1 "

bins=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r f; do bins+=("$f"); done < <(find "$arg" -name bootstrap -type f | sort)
  else
    bins+=("$arg")
  fi
done
[ "${#bins[@]}" -gt 0 ] || { echo "usage: $0 DIR|BINARY..." >&2; exit 2; }

# binutils' readelf/objdump read foreign-architecture ELF files too.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }

status=0
for bin in "${bins[@]}"; do
  if [ ! -f "$bin" ]; then
    echo "$bin: no such file; NOT OK"
    status=1
    continue
  fi
  needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  newest="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
  size="$(du -hL "$bin" | cut -f1)"
  problems=""
  for lib in $needed; do
    case "$allowed" in *" $lib "*) ;; *) problems="$problems needs $lib;" ;; esac
  done
  if [ -n "$newest" ] && ! version_le "$newest" "$max_glibc"; then
    problems="$problems glibc $newest > $max_glibc;"
  fi
  echo "$bin: $size; NEEDED: ${needed:-none}; newest GLIBC_: ${newest:-none}${problems:+; NOT OK:$problems}"
  [ -z "$problems" ] || status=1
done
exit "$status"
