#!/usr/bin/env bash
# Starts a throwaway Kubernetes control plane (etcd + kube-apiserver) for the
# integration tests and the demo.
#
# Usage: start.sh DIR [PARENT_PID]
#
#   DIR         state directory; must be empty or absent. Receives the PKI,
#               the static token file, one kubeconfig per test identity, the
#               etcd data, the logs, the pids and a shell-sourceable `env`.
#   PARENT_PID  optional; when given, a detached watchdog runs stop.sh DIR as
#               soon as that process is gone, so a crashed or killed test run
#               does not leave a control plane behind.
#
# The binaries come from $FOUREYES_CONTROLPLANE_BIN if set, else from build.sh
# (cached after the first build). On success the last line of stdout is DIR.
# Stop the control plane with stop.sh DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "start.sh: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 && -n "$1" ]] || die "usage: start.sh DIR [PARENT_PID]"

# Prints the start time of process $1 (field 22 of /proc/PID/stat), which
# together with the PID identifies a process even after its PID is reused.
# Fails if the process does not exist or is a zombie. Also used by the
# watchdog below.
proc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"     # drop "pid (comm) "; comm may contain spaces
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat            # now $1 = state, ..., $20 = start time
  [[ $1 != Z ]] || return 1
  echo "${20}"
}

# The parent's identity is taken now, while it certainly still waits for us:
# it may well exit right after this script returns.
parent_pid="${2:-}"
parent_born=""
if [[ -n "$parent_pid" ]]; then
  [[ "$parent_pid" =~ ^[0-9]+$ ]] || die "PARENT_PID must be a number, got '$parent_pid'"
  if [[ -d /proc/self ]]; then
    parent_born="$(proc_starttime "$parent_pid")" || die "no process with PID $parent_pid"
  else
    kill -0 "$parent_pid" 2>/dev/null || die "no process with PID $parent_pid"
  fi
fi

# --- binaries ----------------------------------------------------------------
if [[ -n "${FOUREYES_CONTROLPLANE_BIN:-}" ]]; then
  bin="$FOUREYES_CONTROLPLANE_BIN"
else
  # build.sh logs to stderr and prints the bin directory on its last line.
  bin="$("$here/build.sh" | tail -n 1)"
fi
bin="$(cd "$bin" && pwd)" || die "bin directory '$bin' does not exist"
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x "$bin/$b" ]] || die "$bin/$b is missing or not executable"
done
kubectl="$bin/kubectl"

# --- state directory ---------------------------------------------------------
dir="$1"
if [[ -e "$dir" ]]; then
  [[ -d "$dir" ]] || die "$dir exists and is not a directory"
  [[ -z "$(ls -A "$dir")" ]] || die "$dir exists and is not empty"
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
mkdir -p "$dir/pki" "$dir/kubeconfig"

# From here on, any failure stops whatever was started (the logs stay in DIR).
started=0
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 && $started -eq 1 ]]; then
    "$here/stop.sh" "$dir" >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
# Turn fatal signals into an ordinary exit so that the EXIT trap runs.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- free loopback ports -----------------------------------------------------
# Picks random ports below the kernel's default ephemeral range (32768+), so
# they do not collide with outgoing connections, and skips any port that has a
# socket in /proc/net/tcp{,6} or accepts a connection. Only bash and coreutils
# are needed. (There is an unavoidable window between the check and the bind.)
chosen=()
port_is_free() {
  local port=$1 hex p
  for p in "${chosen[@]}"; do [[ $p == "$port" ]] && return 1; done
  printf -v hex ':%04X ' "$port"
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] && grep -qF "$hex" "$f" && return 1
  done
  # A successful connect means something listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 1
  return 0
}
free_port() {
  local port i
  for i in $(seq 1 200); do
    port="$(shuf -i 20000-32767 -n 1)"
    if port_is_free "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "could not find a free loopback port"
}
# free_port runs in a subshell ($(...)), so each choice is recorded here.
etcd_port="$(free_port)"; chosen+=("$etcd_port")
peer_port="$(free_port)"; chosen+=("$peer_port")
api_port="$(free_port)"; chosen+=("$api_port")
api_url="https://127.0.0.1:$api_port"
etcd_url="http://127.0.0.1:$etcd_port"
peer_url="http://127.0.0.1:$peer_port"

# --- PKI ---------------------------------------------------------------------
pki="$dir/pki"
# Certificate authority; it signs the serving certificate and is the client CA.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=foureyes-test-ca" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  2>/dev/null
# kube-apiserver serving certificate for 127.0.0.1 / localhost, and for the
# `kubernetes` Service's address and names, by which pods reach the API server
# (tests/node/up.sh forwards that address to this API server).
openssl req -new -newkey rsa:2048 -nodes -sha256 \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver" \
  2>/dev/null
cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
EOF
openssl x509 -req -sha256 -days 365 -in "$pki/apiserver.csr" \
  -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
# Service-account token signing key pair (pods on a node from tests/node/
# get tokens signed with it, mounted by the ServiceAccount admission plugin).
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
chmod 600 "$pki"/*.key

# --- identities: static tokens and kubeconfigs -------------------------------
# identity | user name | groups (comma-separated, may be empty)
identities=(
  "admin|admin|system:masters"
  "alice|alice|"
  "bob|bob|"
  "carol|carol|"
  "dave|dave|"
  "erin|erin|"
  "partner|partner|foureyes:partners"
  "auditor|auditor|foureyes:auditors"
  "gitops|gitops|foureyes:trusted-asserters"
  "operator|system:serviceaccount:foureyes-system:foureyes|system:serviceaccounts,system:serviceaccounts:foureyes-system"
)
ca_data="$(base64 -w0 <"$pki/ca.crt")"
declare -A tokens=()
: >"$dir/tokens.csv"
chmod 600 "$dir/tokens.csv"
for entry in "${identities[@]}"; do
  IFS='|' read -r id user groups <<<"$entry"
  token="$(openssl rand -hex 16)"
  tokens[$id]="$token"
  # Format: token,user,uid[,"group1,group2"]. The uid is the identity name.
  # Users without groups get no fourth column (an empty one would be a group
  # named ""). Every token user is also in system:authenticated.
  if [[ -n "$groups" ]]; then
    printf '%s,%s,%s,"%s"\n' "$token" "$user" "$id" "$groups" >>"$dir/tokens.csv"
  else
    printf '%s,%s,%s\n' "$token" "$user" "$id" >>"$dir/tokens.csv"
  fi
  kc="$dir/kubeconfig/$id.kubeconfig"
  cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: foureyes
  cluster:
    server: $api_url
    certificate-authority-data: $ca_data
users:
- name: $id
  user:
    token: $token
contexts:
- name: foureyes-$id
  context:
    cluster: foureyes
    user: $id
current-context: foureyes-$id
EOF
  chmod 600 "$kc"
done
# kubeconfig/admin.kubeconfig (written above) is the default one, see KUBECONFIG
# in DIR/env.

# --- processes -----------------------------------------------------------------
# Every background process gets stdin from /dev/null and stdout/stderr in a
# log file, so none keeps the caller's pipes open (`out=$(start.sh ...)`
# returns as soon as this script exits).
: >"$dir/pids"
started=1

# --- watchdog --------------------------------------------------------------------
# Detached (own session, all fds on files): polls PARENT_PID once a second and
# runs stop.sh DIR when it is gone. A zombie, or a different process that got
# the same PID (other start time), counts as gone; without /proc only the PID
# is checked. Started before etcd, so a parent that dies during start-up is
# covered too.
if [[ -n "$parent_pid" ]]; then
  # shellcheck disable=SC2016 # expanded by the watchdog's shell
  watchdog="$(declare -f proc_starttime)"'
    parent=$1 born=$2 dir=$3 stop=$4
    alive() {
      if [[ -n $born ]]; then
        [[ "$(proc_starttime "$parent")" == "$born" ]]
      else
        kill -0 "$parent" 2>/dev/null
      fi
    }
    echo "watchdog: watching pid $parent for $dir"
    while alive; do sleep 1; done
    echo "watchdog: pid $parent is gone, stopping the control plane in $dir"
    exec "$stop" "$dir"
  '
  setsid nohup bash -c "$watchdog" foureyes-watchdog "$parent_pid" "$parent_born" "$dir" "$here/stop.sh" \
    </dev/null >"$dir/watchdog.log" 2>&1 &
  echo "watchdog $!" >>"$dir/pids"
fi

# --- etcd and kube-apiserver ---------------------------------------------------
"$bin/etcd" \
  --name=default \
  --data-dir="$dir/etcd" \
  --listen-client-urls="$etcd_url" \
  --advertise-client-urls="$etcd_url" \
  --listen-peer-urls="$peer_url" \
  --initial-advertise-peer-urls="$peer_url" \
  --initial-cluster="default=$peer_url" \
  --initial-cluster-state=new \
  --unsafe-no-fsync \
  </dev/null >"$dir/etcd.log" 2>&1 &
echo "etcd $!" >>"$dir/pids"

# The apiserver refuses to publish a loopback address in the `kubernetes`
# Service's endpoints ("may not be in the loopback range"), so the endpoint
# reconciler is switched off (as the upstream test server does).
"$bin/kube-apiserver" \
  --etcd-servers="$etcd_url" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --secure-port="$api_port" \
  --tls-cert-file="$pki/apiserver.crt" \
  --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --token-auth-file="$dir/tokens.csv" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --authorization-mode=RBAC \
  --allow-privileged=false \
  </dev/null >"$dir/apiserver.log" 2>&1 &
echo "kube-apiserver $!" >>"$dir/pids"

# --- wait for /readyz ----------------------------------------------------------
show_logs() {
  local log
  for log in etcd.log apiserver.log controller-manager.log; do
    echo "----- last 40 lines of $dir/$log -----" >&2
    tail -n 40 "$dir/$log" >&2 || true
  done
}
admin_kc="$dir/kubeconfig/admin.kubeconfig"
deadline=$((SECONDS + 120))
until [[ "$("$kubectl" --kubeconfig "$admin_kc" --request-timeout=5s get --raw /readyz 2>/dev/null)" == ok ]]; do
  # Fail fast when a process has already exited.
  while read -r name pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs
      die "$name (pid $pid) exited before the control plane became ready"
    fi
  done <"$dir/pids"
  if ((SECONDS >= deadline)); then
    show_logs
    die "control plane in $dir not ready after 120 s"
  fi
  sleep 0.5
done

# --- kube-controller-manager -----------------------------------------------------
# Only the controllers that a cluster without nodes needs for our purposes:
# aggregating the admin/edit/view ClusterRoles (the tests compare the default
# project roles with them), and finishing namespace deletion. (foureyes uses
# finalizers, not owner references, so the garbage collector is not needed.)
"$bin/kube-controller-manager" \
  --kubeconfig="$admin_kc" \
  --authentication-kubeconfig="$admin_kc" \
  --authorization-kubeconfig="$admin_kc" \
  --controllers=clusterrole-aggregation-controller,namespace-controller \
  --leader-elect=false \
  --use-service-account-credentials=false \
  --bind-address=127.0.0.1 \
  --secure-port=0 \
  </dev/null >"$dir/controller-manager.log" 2>&1 &
echo "kube-controller-manager $!" >>"$dir/pids"

# Ready when the aggregated ClusterRoles have their rules.
deadline=$((SECONDS + 60))
until [[ -n "$("$kubectl" --kubeconfig "$admin_kc" get clusterrole view -o jsonpath='{.rules[0]}' 2>/dev/null)" ]]; do
  if ((SECONDS >= deadline)); then
    show_logs
    die "kube-controller-manager did not aggregate the ClusterRoles within 60 s"
  fi
  sleep 0.5
done

# --- env file ------------------------------------------------------------------
# KEY=value lines (values shell-quoted with %q where needed), for `. DIR/env`.
{
  printf 'FOUREYES_CP_DIR=%q\n' "$dir"
  printf 'FOUREYES_CP_BIN=%q\n' "$bin"
  printf 'KUBECTL=%q\n' "$kubectl"
  printf 'KUBECONFIG=%q\n' "$admin_kc"
  printf 'APISERVER_URL=%q\n' "$api_url"
  printf 'APISERVER_CA=%q\n' "$pki/ca.crt"
  for entry in "${identities[@]}"; do
    id="${entry%%|*}"
    printf 'TOKEN_%s=%q\n' "${id^^}" "${tokens[$id]}"
  done
} >"$dir/env"

echo "$dir"
