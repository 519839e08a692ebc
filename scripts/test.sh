#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and integration tests
# against a real control plane (built from Go modules on first use), then the
# demo run once from start to end.
#
# Needs: rustup (or cargo with rustfmt and clippy), Go 1.26+, openssl, bash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
command -v go >/dev/null || { echo "test.sh: Go 1.26 or newer is needed to build the control plane" >&2; exit 1; }
command -v openssl >/dev/null || { echo "test.sh: openssl is needed for the control plane's certificates" >&2; exit 1; }

echo "==> building the control plane (cached after the first build)"
bash tests/controlplane/build.sh >/dev/null
echo "==> building helm for the chart's tests (cached after the first build)"
bash tests/controlplane/helm/build.sh >/dev/null

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
