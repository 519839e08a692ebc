#!/usr/bin/env bash
# The emergency-access demo: brings up a local control plane (etcd and
# kube-apiserver, built from Go modules on first use), installs the CRDs and
# admission policies, starts the operator, and plays the emergency procedures
# of the design (DESIGN §7) with kubectl and the kubectl plugin
# `kubectl access`, as different people. Every step waits for its outcome and
# stops the demo with a message if it does not come. Then it leaves the
# operator running until Ctrl-C, or stops at once with --once.
#
# With --in-cluster the operator runs as it does on a real cluster: two pods
# from its image (scripts/image.sh), installed by `helm install` of
# charts/foureyes, on a node that runs pods (tests/node/: containerd, runc,
# the kubelet and the scheduler). That needs root and Debian's containerd,
# runc and containernetworking-plugins packages.
#
# Needs: rustup (or cargo), Go 1.26+, openssl, bash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

once=0 in_cluster=0
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    --in-cluster) in_cluster=1 ;;
    *) echo "usage: demo.sh [--once] [--in-cluster]" >&2; exit 2 ;;
  esac
done
started=$SECONDS

# shown ARGS...: the arguments as one would type them (quoted where needed).
shown() {
  local a out=()
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+=("$a")
    elif [[ "$a" != *"'"* ]]; then out+=("'$a'")
    else out+=("\"$a\""); fi
  done
  printf '%s' "${out[*]}"
}
if [[ -t 1 ]]; then
  bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
  say() { printf '\033[2m$ %s\033[0m\n' "$*"; }
else
  bold() { printf '\n== %s\n' "$*"; }
  say() { printf '$ %s\n' "$*"; }
  export NO_COLOR=1
fi
note() { printf '   (%s)\n' "$*"; }
die() {
  printf '\ndemo FAILED: %s\n' "$*" >&2
  [[ -n "${state:-}" && -f "$state/operator.log" ]] && { echo "--- operator log (last lines) ---" >&2; tail -n 30 "$state/operator.log" >&2; }
  [[ ${in_cluster:-0} -eq 1 && -n "${state:-}" ]] && { echo "--- operator pods' logs (last lines) ---" >&2
    kc admin -n foureyes-system logs -l app.kubernetes.io/name=foureyes --tail=30 --prefix >&2 || true; }
  exit 1
}

if [[ $in_cluster -eq 1 && $(id -u) -ne 0 ]]; then
  echo "demo.sh --in-cluster: a node that runs pods needs root" >&2
  exit 1
fi
bold "Building the control plane and the operator"
bin="$(bash tests/controlplane/build.sh | tail -n 1)"
cargo build --locked --quiet --bin foureyes --bin kubectl-access
if [[ $in_cluster -eq 1 ]]; then
  helm_bin="$(bash tests/controlplane/helm/build.sh | tail -n 1)/helm"
  say "scripts/image.sh"
  image_line="$(bash scripts/image.sh | tail -n 1)"
  read -r image image_name image_digest <<<"$image_line"
  note "$image_name $image_digest"
fi
foureyes="$repo/target/debug/foureyes"
kubectl_bin="$bin/kubectl"

state="$(mktemp -d "${TMPDIR:-/tmp}/foureyes-demo.XXXXXX")"
# kubectl and the plugin on PATH, so that `kubectl access` finds kubectl-access.
mkdir -p "$state/bin"
ln -s "$kubectl_bin" "$state/bin/kubectl"
ln -s "$repo/target/debug/kubectl-access" "$state/bin/kubectl-access"
export PATH="$state/bin:$PATH"
operator_pid=""
cleanup() {
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  [[ $in_cluster -eq 1 ]] && bash tests/node/down.sh "$state/plane/node" >/dev/null 2>&1
  bash tests/controlplane/stop.sh "$state/plane" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "Starting a local control plane"
FOUREYES_CONTROLPLANE_BIN="$bin" bash tests/controlplane/start.sh "$state/plane" $$ >/dev/null
if [[ $in_cluster -eq 1 ]]; then
  bold "Adding a node that runs pods (containerd, runc, kubelet, scheduler)"
  NODE_IMAGES="$image" bash tests/node/up.sh "$state/plane" "$state/plane/node" $$ >/dev/null
fi
kc() { local who="$1"; shift; kubectl --kubeconfig "$state/plane/kubeconfig/$who.kubeconfig" "$@"; }
# as WHO CMD...: prints `kubectl CMD` and runs it as WHO; the demo stops if it fails.
as() {
  local who="$1"; shift
  say "kubectl $(shown "$@") # as $who"
  kc "$who" "$@" || die "kubectl $* (as $who) failed"
}
# plugin WHO ARGS...: prints and runs `kubectl access ARGS` as WHO; the demo stops if it fails.
plugin() {
  local who="$1"; shift
  say "kubectl access $(shown "$@") # as $who"
  KUBECONFIG="$state/plane/kubeconfig/$who.kubeconfig" kubectl access "$@" || die "kubectl access $* (as $who) failed"
}
# refused CODE WHO ARGS...: runs `kubectl access ARGS` (or `kubectl ARGS` when
# ARGS start with "kubectl") as WHO and requires exit code CODE (1 refused,
# 2 done but not in effect).
refused() {
  local code="$1" who="$2"; shift 2
  local rc=0
  if [[ "$1" == kubectl ]]; then
    shift
    say "kubectl $(shown "$@") # as $who"
    kc "$who" "$@" || rc=$?
  else
    say "kubectl access $(shown "$@") # as $who"
    KUBECONFIG="$state/plane/kubeconfig/$who.kubeconfig" kubectl access "$@" || rc=$?
  fi
  [[ $rc -eq $code ]] || die "expected exit code $code from the step above, got $rc"
}

if [[ $in_cluster -eq 1 ]]; then
  bold "Installing foureyes with Helm: two replicas from the image"
  # The people of the demo may write foureyes objects.
  kc admin apply --server-side --field-manager=foureyes-demo -f tests/controlplane/rbac.yaml >/dev/null
  cat >"$state/values.yaml" <<'YAML'
logFormat: text
config:
  partners: { users: [partner], groups: ["foureyes:partners"] }
  auditors: { groups: ["foureyes:auditors"] }
  sweepInterval: 10s
YAML
  say "helm install foureyes charts/foureyes --namespace foureyes-system --create-namespace -f values.yaml --wait"
  "$helm_bin" --kubeconfig "$state/plane/kubeconfig/admin.kubeconfig" install foureyes charts/foureyes \
    --namespace foureyes-system --create-namespace -f "$state/values.yaml" --wait --timeout 180s >/dev/null \
    || die "helm install failed"
  as admin -n foureyes-system get pods -o wide
  for _ in $(seq 1 120); do
    leader="$(kc admin -n foureyes-system get lease foureyes -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)"
    [[ -n "$leader" ]] && break
    sleep 0.5
  done
  [[ -n "$leader" ]] || die "no replica holds the Lease foureyes-system/foureyes"
  say "kubectl -n foureyes-system get lease foureyes -o jsonpath='{.spec.holderIdentity}' # as admin"
  echo "$leader"
else
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
fi

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

# can WHO VERB RESOURCE NAMESPACE yes|no: asks the API server (a
# SubjectAccessReview, as the admin) until the answer is the expected one,
# for up to 20 seconds; prints it, and stops the demo if it never comes.
can() {
  local who="$1" verb="$2" resource="$3" ns="$4" want="$5" answer=""
  for _ in $(seq 1 80); do
    answer="$(kc admin auth can-i "$verb" "$resource" -n "$ns" --as "$who" 2>/dev/null || true)"
    [[ "$answer" == "$want" ]] && break
    sleep 0.25
  done
  printf '   access check: can %-7s %s %s in %s? %s\n' "$who" "$verb" "$resource" "$ns" "${answer:-no}"
  [[ "$answer" == "$want" ]] || die "$who should get '$want' for $verb $resource in $ns"
}
# wait_phase NAME PHASE [TIMEOUT]: waits until the foureyes binding reaches the phase.
wait_phase() {
  kc admin -n ws-payments wait "rolebindings.foureyes.dev/$1" --for=jsonpath='{.status.phase}'="$2" \
    --timeout="${3:-30s}" >/dev/null || die "binding $1 did not become $2"
}
# show_history WHO ARGS... -- ACTION:BINDING...: prints and runs `kubectl access
# history ARGS` as WHO until the chain holds an entry ACTION for each foureyes
# RoleBinding BINDING (for up to 20 seconds), then prints the table; the demo
# stops if they do not all appear.
show_history() {
  local who="$1"; shift
  local args=() want missing out rc
  while [[ $# -gt 0 && "$1" != -- ]]; do args+=("$1"); shift; done
  shift
  say "kubectl access $(shown history "${args[@]}") # as $who"
  for _ in $(seq 1 80); do
    rc=0
    out="$(KUBECONFIG="$state/plane/kubeconfig/$who.kubeconfig" kubectl access history "${args[@]}" 2>"$state/history.err")" || rc=$?
    missing=""
    for want in "$@"; do
      grep -Eq " ${want%%:*} +RoleBinding/${want#*:}( |\$)" <<<"$out" || missing+=" $want"
    done
    [[ $rc -eq 0 && -z "$missing" ]] && break
    sleep 0.25
  done
  [[ $rc -eq 0 ]] || die "kubectl access history ${args[*]} (as $who) failed: $(cat "$state/history.err")"
  [[ -z "$missing" ]] || die "kubectl access history ${args[*]}: no entry for$missing after 20 seconds"
  echo "$out"
}
# wait_request NAME PHASE: waits until the request reaches the phase.
wait_request() {
  kc admin -n ws-payments wait "rolerequests.foureyes.dev/$1" --for=jsonpath='{.status.phase}'="$2" \
    --timeout=30s >/dev/null || die "request $1 did not become $2"
}

bold "Set-up: a partner creates the workspace 'payments', its project 'checkout' and two managers"
as partner apply -f examples/00-workspace.yaml
kc admin wait workspace/payments --for=condition=Ready --timeout=60s >/dev/null || die "workspace payments not ready"
note "the managers are made a moment from now: their approvals count after the workspace's cooling-off (1h by default, 5s for this demo)"
as partner patch workspace payments --type=merge -p '{"spec":{"approvalPolicy":{"managerCoolingOff":"5s"}}}'
as partner apply -f examples/01-project-and-managers.yaml
wait_phase manager-alice Active
wait_phase manager-bob Active
kc admin -n ws-payments wait project/checkout --for=condition=Ready --timeout=60s >/dev/null || die "project checkout not ready"
as partner get workspace payments
as partner -n ws-payments get project checkout
plugin alice whoami

bold "Procedure 1: manager alice adds the emergency user dave (INC-4711)"
note "a GitOps reviewer can check the change first: who counts, who can still approve, the cap"
plugin gitops plan -f examples/02-emergency-user.yaml
can dave list configmaps ws-payments no
plugin alice grant dave -w payments --role member --for 8h --name member-dave \
  --reason "INC-4711 checkout outage, dave is on call"
wait_phase member-dave Active
can dave list configmaps ws-payments yes
note "a project role needs two managers here: alice's direct grant stays pending, exit code 2"
refused 2 alice grant dave -w payments --project checkout --project-role admin --for 2h \
  --name dave-direct-admin --reason "trying to skip the second manager"
can dave create deployments payments-checkout no
plugin alice request dave -w payments --project checkout --project-role admin --for 2h \
  --name dave-checkout-admin --reason "INC-4711 dave needs to restart the payment workers"
wait_request dave-checkout-admin Pending
as alice -n ws-payments get rr dave-checkout-admin
note "alice cannot approve in bob's name: the API server checks who writes the vote"
refused 1 alice kubectl -n ws-payments patch rr dave-checkout-admin --type=json \
  -p '[{"op":"add","path":"/spec/approvals/-","value":{"user":"bob","decision":"Approve"}}]'

bold "Procedure 2: four eyes: the second manager bob approves"
plugin bob list -w payments
plugin bob approve dave-checkout-admin -w payments --comment "confirmed with the incident commander"
wait_request dave-checkout-admin Granted
wait_phase dave-checkout-admin Active
as bob -n ws-payments get rr dave-checkout-admin
can dave create deployments payments-checkout yes

bold "Procedure 2, break-glass: erin asks, no manager answers, the partner approves alone"
plugin erin request -w payments --project checkout --project-role user --for 1h \
  --name erin-checkout-user --reason "INC-4712 no second manager reachable, erin must read the payment logs"
wait_request erin-checkout-user Pending
can erin create deployments payments-checkout no
plugin partner approve erin-checkout-user -w payments --comment "break-glass, the incident commander asked"
wait_request erin-checkout-user Granted
wait_phase erin-checkout-user Active
can erin create deployments payments-checkout yes
as partner -n ws-payments get rr erin-checkout-user \
  -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,BREAK-GLASS-BY:.status.breakGlassBy
say "kubectl get events -n ws-payments --field-selector reason=BreakGlass # as auditor"

bold "Procedure 7: a manager ratifies the break-glass after the fact"
as partner -n ws-payments get frb erin-checkout-user \
  -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,RATIFICATION:.status.ratification.state,BREAK-GLASS-BY:.status.ratification.breakGlassBy,UNTIL:.status.ratification.deadline
note "the partner who broke the glass never ratifies it, nor does erin; a manager who is neither does"
refused 1 partner ratify erin-checkout-user -w payments --comment "it was needed"
plugin bob ratify erin-checkout-user -w payments --comment "INC-4712 checked with the incident commander"
as auditor -n ws-payments get frb erin-checkout-user \
  -o custom-columns=NAME:.metadata.name,RATIFICATION:.status.ratification.state,BY:.status.ratification.by,AT:.status.ratification.at
note "an objection (--object) would have revoked it at once; nobody within the window: a Warning event BreakGlassUnratified"

bold "Cooling-off: a manager made a moment ago does not count yet"
note "making a friend a manager and approving together right away does not work"
note "the partner puts the cooling-off back to its default, 1h, and makes carol a manager"
as partner patch workspace payments --type=merge -p '{"spec":{"approvalPolicy":{"managerCoolingOff":"1h"}}}'
as partner apply -f examples/09-cooling-off.yaml
wait_phase manager-carol Active
plugin erin request -w payments --project checkout --project-role reader --for 1h \
  --name erin-checkout-reader --reason "INC-4714 erin must check the checkout queue"
wait_request erin-checkout-reader Pending
plugin carol approve erin-checkout-reader -w payments --comment "approved by a brand-new manager"
kc admin -n ws-payments wait rolerequests.foureyes.dev/erin-checkout-reader \
  --for=jsonpath='{.status.ignored[0].reason}'=CoolingOff --timeout=30s >/dev/null \
  || die "carol's approval was not held back by her cooling-off"
as partner -n ws-payments get rr erin-checkout-reader \
  -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,APPROVALS:.status.approvals,IGNORED:.status.ignored[*].user,WHY:.status.ignored[*].reason
plugin partner deny erin-checkout-reader -w payments --comment "not needed after all"
wait_request erin-checkout-reader Denied
for _ in $(seq 1 40); do
  out="$(kc auditor -n ws-payments get events --field-selector reason=BreakGlass \
    -o custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message 2>/dev/null || true)"
  grep -q erin-checkout-user <<<"$out" && break
  sleep 0.25
done
grep -q erin-checkout-user <<<"$out" || die "no BreakGlass event for erin-checkout-user"
echo "$out"

bold "Procedure 3: the partner becomes a manager for 1h (INC-4713), acts, and leaves again"
can partner list configmaps ws-payments no
plugin partner grant partner -w payments --role manager --for 1h --name partner-manager \
  --reason "INC-4713 payments managers unreachable, platform team takes over"
wait_phase partner-manager Active
can partner list configmaps ws-payments yes
note "acting as a manager: the workspace's latest events, readable only by its members, managers and auditors"
as partner -n ws-payments get events --sort-by=.metadata.creationTimestamp \
  -o custom-columns=REASON:.reason,OBJECT:.involvedObject.name --no-headers
plugin partner revoke partner-manager -w payments --reason "INC-4713 resolved, the payments managers are back"
wait_phase partner-manager Revoked
can partner list configmaps ws-payments no

bold "Procedure 4: access expires on its own: alice makes erin a member for 20 seconds"
plugin alice grant erin -w payments --role member --for 20s --name erin-short \
  --reason "INC-4714 erin reads the workspace events once"
wait_phase erin-short Active
can erin list configmaps ws-payments yes
note "waiting for the expiry, about 20 seconds"
wait_phase erin-short Expired 60s
can erin list configmaps ws-payments no

bold "Procedure 4: dave's laptop is stolen: alice revokes both of his grants at once"
plugin alice revoke member-dave -w payments --reason "dave's laptop was stolen; account suspected compromised"
plugin alice revoke dave-checkout-admin -w payments --reason "dave's laptop was stolen; account suspected compromised"
wait_phase member-dave Revoked
wait_phase dave-checkout-admin Revoked
can dave list configmaps ws-payments no
can dave create deployments payments-checkout no
note "a revocation cannot be taken back"
refused 1 alice kubectl -n ws-payments patch frb member-dave --type=json -p '[{"op":"remove","path":"/spec/revocation"}]'

bold "Procedure 6: dave's account is compromised: a partner locks him out of everything foureyes granted"
note "dave holds grants in two workspaces again and has a pending request"
as partner apply -f - <<'YAML'
apiVersion: foureyes.dev/v1alpha1
kind: Workspace
metadata: { name: billing }
spec: { approvalPolicy: { workspaceRoleApprovals: 1, projectRoleApprovals: 2 } }
YAML
kc admin wait workspace/billing --for=condition=Ready --timeout=60s >/dev/null || die "workspace billing not ready"
plugin partner grant dave -w billing --role member --for 8h --name member-dave \
  --reason "INC-4716 dave helps the billing team"
plugin alice grant dave -w payments --role member --for 8h --name member-dave-again \
  --reason "INC-4716 dave is back on call"
wait_phase member-dave-again Active
kc admin -n ws-billing wait rolebindings.foureyes.dev/member-dave --for=jsonpath='{.status.phase}'=Active \
  --timeout=30s >/dev/null || die "dave's billing membership did not become Active"
plugin dave request -w payments --project checkout --project-role reader --for 1h \
  --name dave-checkout-reader --reason "INC-4716 dave wants to read the checkout logs"
wait_request dave-checkout-reader Pending
can dave list configmaps ws-payments yes
can dave list configmaps ws-billing yes
note "one step, every workspace: the partner waits until every revocation is done"
plugin partner lockout dave --for 24h --reason "INC-4717 dave's credentials were phished"
can dave list configmaps ws-payments no
can dave list configmaps ws-billing no
can dave create deployments payments-checkout no
wait_request dave-checkout-reader Denied
as partner -n ws-payments get rr dave-checkout-reader \
  -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,LOCKOUT:.status.lockout
note "a new request by dave, and a manager's new grant for him, are refused while the lockout lasts"
refused 1 dave request -w payments --role member --for 1h --name dave-again --reason "let me back in"
refused 1 alice grant dave -w payments --role member --for 1h --name member-dave-3 --reason "he says it is fine"
plugin partner lockout list

bold "Procedure 5: what an auditor sees"
as auditor -n ws-payments get rolebindings.foureyes.dev,rolerequests.foureyes.dev
say "kubectl get events -n ws-payments # as auditor"
kc auditor -n ws-payments get events --sort-by=.metadata.creationTimestamp \
  -o custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message \
  || die "the auditor cannot read the events"
refused 1 auditor kubectl auth can-i create rolebindings.foureyes.dev -n ws-payments
note "the history, the permanent record: the workspace's chain (workspace roles) and the project's"
show_history auditor payments -- Granted:manager-alice Granted:manager-bob Granted:member-dave \
  Granted:partner-manager Revoked:partner-manager Granted:erin-short Expired:erin-short Revoked:member-dave
show_history auditor payments --project checkout -- Granted:dave-checkout-admin Granted:erin-checkout-user \
  Revoked:dave-checkout-admin
note "every link and hash checked, and the head compared with the one the Workspace status records (auditors may read Workspaces: the ClusterRole foureyes-auditor)"
plugin auditor history verify payments --project checkout
plugin auditor history verify payments --all

bold "The web console: kubectl access console, for approvers and auditors who prefer a browser"
note "it serves 127.0.0.1 only, acts with the caller's own kubeconfig, and prints a link that works once; here curl stands in for the browser"
say "kubectl access console -w payments # as auditor"
KUBECONFIG="$state/plane/kubeconfig/auditor.kubeconfig" kubectl access console -w payments >"$state/console.out" 2>&1 &
console_pid=$!
link=""
for _ in $(seq 1 100); do
  link="$(grep -o 'http://127.0.0.1:[0-9]*/login?token=[0-9a-f]*' "$state/console.out" || true)"
  [[ -n "$link" ]] && break
  sleep 0.1
done
[[ -n "$link" ]] || die "the console printed no link: $(cat "$state/console.out")"
say "  ${link%%token=*}token=... (open it in a browser)"
if command -v curl >/dev/null; then
  curl -fsS -c "$state/console.cookies" -o /dev/null "$link" || die "the console refused its own link"
  badge="$(curl -fsS -b "$state/console.cookies" "${link%%/login*}/history?workspace=payments" \
    | grep -o 'intact, head #[0-9]* [^<]*' | head -n 1 || true)"
  [[ -n "$badge" ]] || die "the console's history page shows no intact chain"
  say "  History of payments: $badge"
  code="$(curl -s -o /dev/null -w '%{http_code}' "$link")"
  [[ "$code" == 401 ]] || die "the console's link worked twice (HTTP $code)"
  say "  the link again: HTTP $code, it works once"
else
  note "curl is not installed: the console runs, but the demo cannot look at it"
fi
kill "$console_pid" 2>/dev/null || true
wait "$console_pid" 2>/dev/null || true

bold "The operator's log"
if [[ $in_cluster -eq 1 ]]; then
  say "kubectl -n foureyes-system logs $leader --tail=15 # as admin"
  kc admin -n foureyes-system logs "$leader" --tail=15 | sed 's/^/  /'
else
  tail -n 15 "$state/operator.log" | sed 's/^/  /'
fi

if [[ $once -eq 1 ]]; then
  bold "Demo complete in $((SECONDS - started))s"
  exit 0
fi
bold "The operator keeps running (log: $state/operator.log). Try kubectl yourself:"
echo "  export KUBECONFIG=$state/plane/kubeconfig/alice.kubeconfig   # or bob, partner, admin, ..."
echo "  kubectl access console -w payments   # the web console: open the link it prints"
echo "Press Ctrl-C to stop everything."
if [[ $in_cluster -eq 1 ]]; then
  while sleep 3600; do :; done
else
  wait "$operator_pid"
fi
