#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, etcd and kubectl, and for the
# node that runs pods (tests/node/) the kubelet and kube-scheduler, from the Go
# modules pinned in this directory's go.mod and go.sum, through the Go module
# proxy. Go builds run at the lowest CPU priority (nice 19).
#
# The binaries are cached under <repo>/.cache/controlplane/<key>/bin, where the
# key is a hash of go.mod and go.sum: a changed pin builds afresh, an unchanged
# one returns at once. Prints the bin directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod

k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
key="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
bin="$repo/.cache/controlplane/$key/bin"

binaries=(kube-apiserver kube-controller-manager kubectl etcd kubelet kube-scheduler)
complete=1
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || complete=0; done
if [[ $complete -eq 1 ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required (go1.26 or newer)" >&2; exit 1; }

git_major="${k8s_version#v}"; git_major="${git_major%%.*}"
git_minor="${k8s_version#v*.}"; git_minor="${git_minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version"
  stamp+=" -X $pkg.gitMajor=$git_major -X $pkg.gitMinor=$git_minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

tmp="$bin.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
start=$SECONDS
cd "$here"
echo "build.sh: building kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler ($k8s_version) and etcd into $bin" >&2
for cmd in kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler; do
  nice -n 19 go build -trimpath -ldflags "-s -w $stamp" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  echo "build.sh: $cmd after $((SECONDS - start)) s" >&2
done
nice -n 19 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
rm -rf "$bin"
mv "$tmp" "$bin"
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
