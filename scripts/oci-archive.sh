#!/usr/bin/env bash
# Writes a one-layer OCI image archive (an oci-layout directory in a tar) from
# a root file system directory and an image configuration, without a container
# engine or a registry: only tar, sha256sum and stat. The output depends only
# on the files' contents, modes and names (owner root, times 1970-01-01,
# sorted names, uncompressed layer), so the same input gives the same digest.
#
# Usage: oci-archive.sh ROOTFS CONFIG_JSON IMAGE_NAME OUT_TAR
#   ROOTFS       directory that becomes the image's only layer
#   CONFIG_JSON  the OCI image config's "config" object (Entrypoint, User, ...)
#   IMAGE_NAME   repository:tag, recorded as io.containerd.image.name and,
#                for the tag, org.opencontainers.image.ref.name
# Prints the manifest digest (sha256:...) on stdout.
#
# `ctr images import OUT_TAR` takes the name from the archive; `skopeo copy
# oci-archive:OUT_TAR docker://REGISTRY/NAME:TAG` pushes it.
set -euo pipefail
[[ $# -eq 4 ]] || { echo "usage: oci-archive.sh ROOTFS CONFIG_JSON IMAGE_NAME OUT_TAR" >&2; exit 2; }
rootfs="$1" config="$2" name="$3" out="$4"
[[ -d $rootfs ]] || { echo "oci-archive.sh: $rootfs is not a directory" >&2; exit 1; }
tag="${name##*:}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layout/blobs/sha256"
export LC_ALL=C
umask 022

# FILE -> "digest size", after moving FILE into the blobs.
blob() {
  local d s
  d="$(sha256sum "$1" | cut -d' ' -f1)"
  s="$(stat -c %s "$1")"
  mv "$1" "$work/layout/blobs/sha256/$d"
  echo "$d $s"
}
tarit() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu "$@"; }

# The layer: uncompressed, so its digest is also its diff_id.
tarit -C "$rootfs" -cf "$work/layer.tar" .
read -r layer_d layer_s < <(blob "$work/layer.tar")

printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/oci-archive.sh"}],"created":"1970-01-01T00:00:00Z"}' \
  "$config" "$layer_d" >"$work/config.json"
read -r cfg_d cfg_s < <(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$cfg_d" "$cfg_s" "$layer_d" "$layer_s" >"$work/manifest.json"
read -r man_d man_s < <(blob "$work/manifest.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$man_d" "$man_s" "$name" "$tag" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

mkdir -p "$(dirname "$out")"
tarit -C "$work/layout" -cf "$out.partial" oci-layout index.json blobs
mv "$out.partial" "$out"
echo "sha256:$man_d"
