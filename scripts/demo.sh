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
metadata: { name: probe, namespace: foureyes-system }
spec: { subject: { kind: User, name: dave }, workspaceRole: member, duration: 1h, justification: probe, requester: bob }
YAML
  then break; fi
  sleep 0.5
done
# ...and until bindings are served and stamped with their creator (the
# MutatingAdmissionPolicy resolves the new kinds a moment after the CRDs are
# established; until then a create is refused as ServiceUnavailable).
for _ in $(seq 1 120); do
  stamp="$(kc alice create --dry-run=server -o 'jsonpath={.metadata.annotations.foureyes\.dev/created-by}' -f - 2>/dev/null <<'YAML' || true
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata: { name: probe, namespace: foureyes-system }
spec: { subject: { kind: User, name: dave }, workspaceRole: member, duration: 1h, justification: probe, grantedBy: alice }
YAML
)"
  [[ "$stamp" == alice ]] && break
  sleep 0.5
done

# access WHO VERB RESOURCE NAMESPACE: asks the API server (a SubjectAccessReview).
access() {
  local answer
  answer="$(kc admin auth can-i "$2" "$3" -n "$4" --as "$1" 2>/dev/null || true)"
  printf '   access check: can %-7s %s %s in %s? %s\n' "$1" "$2" "$3" "$4" "${answer:-no}"
}
# wait_phase NAME PHASE: waits until the foureyes binding reaches the phase.
wait_phase() {
  kc admin -n ws-payments wait "rolebindings.foureyes.dev/$1" --for=jsonpath='{.status.phase}'="$2" --timeout=60s >/dev/null
}

bold "Setup: a partner creates the workspace 'payments', its project 'checkout' and two managers"
as partner apply -f examples/00-workspace.yaml
kc admin wait workspace/payments --for=condition=Ready --timeout=60s >/dev/null
as partner apply -f examples/01-project-and-managers.yaml
wait_phase manager-alice Active
wait_phase manager-bob Active
kc admin -n ws-payments wait project/checkout --for=condition=Ready --timeout=60s >/dev/null
as partner get workspace payments
as partner -n ws-payments get project checkout
access alice create rolerequests.foureyes.dev ws-payments
access alice list configmaps ws-payments

bold "Procedure 1: manager alice adds the emergency user dave, and asks for 'admin' in checkout for 2h"
access dave list configmaps ws-payments
as alice apply -f examples/02-emergency-user.yaml
wait_phase member-dave Active
access dave list configmaps ws-payments
access dave create configmaps payments-checkout

bold "Four eyes: alice cannot grant a project role alone, and cannot approve in bob's name"
kc alice apply -f - >/dev/null <<'YAML'
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata: { name: dave-direct-admin, namespace: ws-payments }
spec:
  subject: { kind: User, name: dave }
  project: checkout
  projectRole: admin
  duration: 2h
  justification: trying to skip the second manager
  grantedBy: alice
YAML
say "(alice created a RoleBinding for dave as admin in checkout directly)"
sleep 2
as admin -n ws-payments get frb dave-direct-admin -o jsonpath='{.status.phase}: {.status.conditions[?(@.type=="Authorized")].message}{"\n"}'
access dave create configmaps payments-checkout
say "kubectl patch rr dave-checkout-admin --type=json -p '[{\"op\":\"add\",\"path\":\"/spec/approvals/-\",\"value\":{\"user\":\"bob\",\"decision\":\"Approve\"}}]' # as alice"
kc alice -n ws-payments patch rr dave-checkout-admin --type=json \
  -p '[{"op":"add","path":"/spec/approvals/-","value":{"user":"bob","decision":"Approve"}}]' || true

bold "Procedure 2: the second manager bob approves (four eyes)"
as bob apply -f examples/03-second-approval.yaml
as bob -n ws-payments get rr dave-checkout-admin -o jsonpath='{range .spec.approvals[*]}{.user}: {.decision} ({.comment}){"\n"}{end}'

bold "Procedure 2, break-glass: erin asks, no manager answers, the partner approves alone"
sed '/^  approvals:/,$d' examples/04-break-glass.yaml | kc erin apply -f - && say "(request filed by erin)"
as partner apply -f examples/04-break-glass.yaml

bold "Procedure 3: the partner adds themselves as workspace manager for 1h"
access partner list configmaps ws-payments
as partner apply -f examples/05-partner-self-assignment.yaml
wait_phase partner-manager Active
access partner list configmaps ws-payments

bold "Procedure 4: access expires on its own: alice makes erin a member for 8 seconds"
kc alice apply -f - >/dev/null <<'YAML'
apiVersion: foureyes.dev/v1alpha1
kind: RoleBinding
metadata: { name: erin-short, namespace: ws-payments }
spec:
  subject: { kind: User, name: erin }
  workspaceRole: member
  duration: 8s
  justification: INC-4714 read the workspace history once
  grantedBy: alice
YAML
wait_phase erin-short Active
access erin list configmaps ws-payments
say "(waiting for the expiry)"
wait_phase erin-short Expired
access erin list configmaps ws-payments

bold "Procedure 4: alice revokes dave's membership at once"
as alice apply -f examples/06-revoke.yaml
wait_phase member-dave Revoked
access dave list configmaps ws-payments
say "a revocation cannot be taken back:"
kc alice -n ws-payments patch frb member-dave --type=json -p '[{"op":"remove","path":"/spec/revocation"}]' || true

bold "Procedure 5: what an auditor sees"
as auditor -n ws-payments get rolebindings.foureyes.dev
as auditor -n ws-payments get rolerequests.foureyes.dev
say "kubectl get events -n ws-payments # as auditor"
kc auditor -n ws-payments get events --sort-by=.metadata.creationTimestamp \
  -o custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message 2>/dev/null \
  || kc auditor -n ws-payments get events

bold "The operator's log"
tail -n 15 "$state/operator.log" | sed 's/^/  /'

if [[ $once -eq 1 ]]; then
  bold "Demo complete"
  exit 0
fi
bold "The operator keeps running (log: $state/operator.log). Try kubectl yourself:"
echo "  export KUBECONFIG=$state/plane/kubeconfig/alice.kubeconfig   # or bob, partner, admin, ..."
echo "Press Ctrl-C to stop everything."
wait "$operator_pid"
