#!/usr/bin/env bash
# Builds the node's sandbox ("pause") image, local.test/pause:1, from pause/
# (a static Go program, no dependencies) into an OCI archive, cached under
# <repo>/.cache/node/<key>/pause.oci.tar, where the key is a hash of its
# sources and of the archive writer. Prints the archive's path on its last line.
# The kubelet and kube-scheduler are built with the control plane
# (tests/controlplane/build.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
key="$(cat "$here/pause/go.mod" "$here/pause/main.go" "$repo/scripts/oci-archive.sh" | sha256sum | cut -c1-16)"
out="$repo/.cache/node/$key"
if [[ -f $out/pause.oci.tar ]]; then
  echo "$out/pause.oci.tar"
  exit 0
fi
command -v go >/dev/null || { echo "node/build.sh: Go is required (go1.26 or newer)" >&2; exit 1; }
tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp/rootfs"
(cd "$here/pause" && CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS= \
  nice -n 19 go build -trimpath -ldflags '-s -w' -o "$tmp/rootfs/pause" .)
bash "$repo/scripts/oci-archive.sh" "$tmp/rootfs" '{"Entrypoint":["/pause"],"User":"65535:65535","WorkingDir":"/"}' \
  local.test/pause:1 "$tmp/pause.oci.tar" >/dev/null
rm -rf "$tmp/rootfs" "$out"
mv "$tmp" "$out"
echo "$out/pause.oci.tar"
