#!/usr/bin/env bash
# The emergency-access demo: brings up a local control plane (etcd and
# kube-apiserver, built from Go modules on first use), installs the CRDs and
# admission policies, starts the operator, and plays the emergency procedures
# with kubectl as different people. Then it leaves the operator running until
# Ctrl-C, or stops at once with --once.
#
# Needs: rustup (or cargo), Go 1.26+, openssl, bash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

once=0
[[ "${1:-}" == "--once" ]] && once=1

if [[ -t 1 ]]; then
  bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
  say() { printf '\033[2m$ %s\033[0m\n' "$*"; }
else
  bold() { printf '\n== %s\n' "$*"; }
  say() { printf '$ %s\n' "$*"; }
  export NO_COLOR=1
fi

bold "Building the control plane and the operator"
bin="$(bash tests/controlplane/build.sh | tail -n 1)"
cargo build --locked --quiet --bin foureyes
foureyes="$repo/target/debug/foureyes"
kubectl_bin="$bin/kubectl"

state="$(mktemp -d "${TMPDIR:-/tmp}/foureyes-demo.XXXXXX")"
operator_pid=""
cleanup() {
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  bash tests/controlplane/stop.sh "$state/plane" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "Starting a local control plane"
FOUREYES_CONTROLPLANE_BIN="$bin" bash tests/controlplane/start.sh "$state/plane" $$ >/dev/null
kc() { local who="$1"; shift; "$kubectl_bin" --kubeconfig "$state/plane/kubeconfig/$who.kubeconfig" "$@"; }
# as WHO CMD...: prints the command, runs it as WHO, and keeps going if it is refused.
as() {
  local who="$1"; shift
  say "kubectl $* # as $who"
  kc "$who" "$@" || true
}

bold "Installing the CRDs and admission policies"
say "foureyes crds | kubectl apply --server-side -f -"
"$foureyes" crds | kc admin apply --server-side --field-manager=foureyes -f - >/dev/null
kc admin wait --for=condition=Established --timeout=60s crd --all >/dev/null
# The people of the demo may write foureyes objects; the operator gets its own
# least-privilege ClusterRole for the demo's configuration.
kc admin apply --server-side --field-manager=foureyes-demo -f tests/controlplane/rbac.yaml >/dev/null
cat >"$state/config.yaml" <<'YAML'
partners: { users: [partner], groups: ["foureyes:partners"] }
auditors: { groups: ["foureyes:auditors"] }
sweepInterval: 10s
YAML
"$foureyes" rbac --config "$state/config.yaml" | kc admin apply --server-side --field-manager=foureyes-demo -f - >/dev/null

bold "Starting the operator (as its service account)"
KUBECONFIG="$state/plane/kubeconfig/operator.kubeconfig" "$foureyes" run --config "$state/config.yaml" \
  --metrics-addr 127.0.0.1:0 >"$state/operator.log" 2>&1 &
operator_pid=$!
for _ in $(seq 1 50); do
  grep -q "ready" "$state/operator.log" && break
  sleep 0.2
done
grep -q "ready" "$state/operator.log" || { cat "$state/operator.log"; exit 1; }

# Wait until the identity policy is active (it takes a moment after creation).
for _ in $(seq 1 120); do
  if ! kc alice create --dry-run=server -f - >/dev/null 2>&1 <<'YAML'
apiVersion: foureyes.dev/v1alpha1
kind: RoleRequest
metadata: { name: probe, namespace: ws-payments }
spec: { subject: { kind: User, name: dave }, workspaceRole: member, duration: 1h, justification: probe, requester: bob }
YAML
  then break; fi
  sleep 0.5
done

bold "Setup: a partner creates the workspace 'payments', its project 'checkout' and two managers"
as partner apply -f examples/00-workspace.yaml
as partner get workspace payments

bold "Procedure 1: manager alice adds the emergency user dave, and asks for 'admin' in checkout for 2h"
as alice apply -f examples/01-emergency-user.yaml

bold "Identity is verified by the API server: alice cannot approve in bob's name"
say "kubectl patch rr dave-checkout-admin --type=json -p '[{\"op\":\"add\",\"path\":\"/spec/approvals/-\",\"value\":{\"user\":\"bob\",\"decision\":\"Approve\"}}]' # as alice"
kc alice -n ws-payments patch rr dave-checkout-admin --type=json \
  -p '[{"op":"add","path":"/spec/approvals/-","value":{"user":"bob","decision":"Approve"}}]' || true

bold "Procedure 2: the second manager bob approves (four eyes)"
as bob apply -f examples/02-second-approval.yaml
as bob -n ws-payments get rr dave-checkout-admin -o jsonpath='{range .spec.approvals[*]}{.user}: {.decision} ({.comment}){"\n"}{end}'

bold "Procedure 2, break-glass: erin asks, no manager answers, the partner approves alone"
sed '/^  approvals:/,$d' examples/03-break-glass.yaml | kc erin apply -f - && say "(request filed by erin)"
as partner apply -f examples/03-break-glass.yaml

bold "Procedure 3: the partner adds themselves as workspace manager for 1h"
as partner apply -f examples/04-partner-self-assignment.yaml

bold "Procedure 4: alice revokes dave's membership at once"
as alice apply -f examples/05-revoke.yaml
say "a revocation cannot be taken back:"
kc alice -n ws-payments patch frb member-dave --type=json -p '[{"op":"remove","path":"/spec/revocation"}]' || true

bold "Procedure 5: what an auditor sees"
as admin -n ws-payments get rolerequests.foureyes.dev
as admin -n ws-payments get rolebindings.foureyes.dev

bold "What the operator observed"
sed 's/^/  /' "$state/operator.log"

if [[ $once -eq 1 ]]; then
  bold "Demo complete"
  exit 0
fi
bold "The operator keeps running (log: $state/operator.log). Try kubectl yourself:"
echo "  export KUBECONFIG=$state/plane/kubeconfig/alice.kubeconfig   # or bob, partner, admin, ..."
echo "Press Ctrl-C to stop everything."
wait "$operator_pid"
