#!/usr/bin/env bash
# Builds the operator image without a container engine: the release binaries
# `foureyes` and `kubectl-access` (cargo build --release --locked), their shared
# libraries and the dynamic loader, in one layer, as an OCI image archive.
# User 65532:65532, entrypoint /usr/local/bin/foureyes, no shell, OCI labels
# with the version (Cargo.toml's) and the source. The same binaries give the
# same digest (scripts/oci-archive.sh); the Containerfile builds the same image
# with ordinary container tooling (tests/image.rs checks that they agree).
#
# Usage: image.sh [--bin-dir DIR] [--name REPOSITORY:TAG] [--out FILE]
#   --bin-dir  take the binaries from DIR instead of building them (release)
#   --name     default ghcr.io/foureyes-dev/foureyes:<version>
#   --out      default target/image/foureyes.oci.tar
# Prints the archive's path and the manifest digest on its last line:
#   <file> <image name> sha256:<digest>
# Push it with e.g. `skopeo copy oci-archive:<file> docker://<image name>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
repository="ghcr.io/foureyes-dev/foureyes"
source_url="https://github.com/foureyes-dev/foureyes"
bin_dir="" name="$repository:$version" out="$repo/target/image/foureyes.oci.tar"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: image.sh [--bin-dir DIR] [--name REPOSITORY:TAG] [--out FILE]" >&2; exit 2 ;;
  esac
done

if [[ -z $bin_dir ]]; then
  echo "image.sh: cargo build --release --locked --bin foureyes --bin kubectl-access" >&2
  cargo build --release --locked --quiet --bin foureyes --bin kubectl-access
  bin_dir="$repo/target/release"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash scripts/image-rootfs.sh "$work/rootfs" "$bin_dir/foureyes" "$bin_dir/kubectl-access"

# Keys in a fixed order: the configuration is part of the digest.
config="$(printf '{"User":"65532:65532","Entrypoint":["/usr/local/bin/foureyes"],"Env":["PATH=/usr/local/bin"],"WorkingDir":"/","Labels":{"org.opencontainers.image.description":"Kubernetes operator for emergency and just-in-time access with four-eyes approval","org.opencontainers.image.licenses":"Apache-2.0","org.opencontainers.image.source":"%s","org.opencontainers.image.title":"foureyes","org.opencontainers.image.version":"%s"}}' \
  "$source_url" "$version")"
digest="$(bash scripts/oci-archive.sh "$work/rootfs" "$config" "$name" "$out")"
echo "$out $name $digest"
