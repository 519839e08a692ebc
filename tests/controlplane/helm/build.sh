#!/usr/bin/env bash
# Builds helm from the Go module pinned in this directory's go.mod and go.sum,
# through the Go module proxy (helm has no replace directives, so the module
# builds as it is; it lives apart from ../go.mod because it pins other versions
# of the Kubernetes libraries than the control plane does).
#
# The binary is cached under <repo>/.cache/helm/<key>/bin, where the key is a
# hash of go.mod and go.sum: a changed pin builds afresh, an unchanged one
# returns at once. Prints the bin directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod

helm_version="$(awk '$1 == "helm.sh/helm/v3" { print $2; exit }' "$here/go.mod")"
k8s_minor="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$here/go.mod")"
k8s_minor="${k8s_minor#v0.}"; k8s_minor="${k8s_minor%%.*}"
key="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
bin="$repo/.cache/helm/$key/bin"

if [[ -x "$bin/helm" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "helm/build.sh: Go is required (go1.26 or newer)" >&2; exit 1; }

# The version that `helm version` reports, and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster (that of the
# Kubernetes libraries helm is built with).
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

tmp="$bin.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
start=$SECONDS
cd "$here"
echo "helm/build.sh: building helm $helm_version into $bin" >&2
go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm
rm -rf "$bin"
mv "$tmp" "$bin"
echo "helm/build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
