#!/usr/bin/env bash
# Lays out the operator image's root file system in DEST: the binaries in
# /usr/local/bin and, at their usual paths, the shared libraries they load and
# the dynamic loader (glibc's libc, libm and libgcc_s: see the README, "The
# image"). Nothing else: no shell, no package manager, no users' files.
# Used by scripts/image.sh and by the Containerfile, so both make the same files.
#
# Usage: image-rootfs.sh DEST BINARY...
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: image-rootfs.sh DEST BINARY..." >&2; exit 2; }
dest="$1"; shift
mkdir -p "$dest/usr/local/bin"
libs=()
for b in "$@"; do
  install -m 0755 "$b" "$dest/usr/local/bin/$(basename "$b")"
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  while read -r lib; do libs+=("$lib"); done < <(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
done
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  mkdir -p "$dest$(dirname "$lib")"
  install -m 0755 "$(readlink -f "$lib")" "$dest$lib"
done
# Directories as a package would make them, whatever the umask.
find "$dest" -type d -exec chmod 0755 {} +
