#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and integration tests
# against a real control plane (built from Go modules on first use), among
# them the operator installed by Helm from its image and running as pods on a
# node next to the control plane (tests/in_cluster.rs); then the demo run once
# from start to end.
#
# Needs: rustup (or cargo with rustfmt and clippy), Go 1.26+, openssl, bash,
# and root with Debian's containerd, runc, containernetworking-plugins,
# iptables and iproute2 packages for the node, and chromium and
# chromium-driver for the console's browser tests (all installed here with
# apt-get when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: the suite runs the operator as pods on a node of its own, which needs root" >&2
  echo "test.sh: (mounts, cgroups, network namespaces); this machine cannot run pods as $(id -un)" >&2
  exit 1
fi
packages=()
command -v containerd >/dev/null || packages+=(containerd)
[[ -x /usr/sbin/runc ]] || packages+=(runc)
[[ -x /usr/lib/cni/bridge ]] || packages+=(containernetworking-plugins)
command -v iptables >/dev/null || packages+=(iptables)
command -v ip >/dev/null || packages+=(iproute2)
# The console's browser tests (tests/console.rs): headless Chromium over WebDriver.
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
[[ -x /usr/bin/chromedriver ]] || packages+=(chromium-driver)
if [[ ${#packages[@]} -gt 0 ]]; then
  echo "==> installing ${packages[*]} (Debian's packages) for the node and the browser tests"
  command -v apt-get >/dev/null || { echo "test.sh: ${packages[*]} missing and no apt-get to install them" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
fi

if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
command -v go >/dev/null || { echo "test.sh: Go 1.26 or newer is needed to build the control plane" >&2; exit 1; }
command -v openssl >/dev/null || { echo "test.sh: openssl is needed for the control plane's certificates" >&2; exit 1; }

echo "==> building the control plane (cached after the first build)"
bash tests/controlplane/build.sh >/dev/null
echo "==> building helm for the chart's tests (cached after the first build)"
bash tests/controlplane/helm/build.sh >/dev/null

echo "==> building the operator image (scripts/image.sh, release build)"
image_line="$(bash scripts/image.sh | tail -n 1)"
read -r image image_name image_digest <<<"$image_line"
echo "$image_name $image_digest"
export FOUREYES_IMAGE="$image"

echo "==> cargo fmt --check"
cargo fmt --check

echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

echo "==> demo (once)"
bash scripts/demo.sh --once

echo "==> cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# One closing line for the whole suite: the sum over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
