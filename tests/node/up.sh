#!/usr/bin/env bash
# Adds a node that really runs pods to a control plane from
# tests/controlplane/start.sh: containerd and runc (Debian's packages), the
# kubelet and kube-scheduler (built with the control plane), and a second
# kube-controller-manager with the controllers that Deployments and pods need.
#
# Usage: up.sh CP_DIR NODE_DIR [PARENT_PID]
#   CP_DIR      a directory of start.sh (its env and pki/ca.{crt,key} are read)
#   NODE_DIR    the node's state directory; must be empty or absent
#   PARENT_PID  optional; a detached watchdog runs down.sh NODE_DIR as soon as
#               that process is gone, so a crashed test run leaves no node behind
# Environment:
#   NODE_IMAGES  OCI archives to import besides the sandbox image (space-separated)
#   RUNC         the OCI runtime (default /usr/sbin/runc)
#
# Needs root, and `apt-get install containerd runc containernetworking-plugins iptables iproute2`.
# Everything the node writes stays under NODE_DIR, except its cgroups
# (/<cgroup hierarchy>/foureyes-node-N), its bridge fenodeN (10.88.N.0/24) and
# one iptables rule that forwards the `kubernetes` Service's address to the API
# server on 127.0.0.1; down.sh removes them. Stop with down.sh NODE_DIR before
# stop.sh CP_DIR. See docs/real-node.md for what each setting works around.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "node/up.sh: $*" >&2; exit 1; }
[[ $# -ge 2 && $# -le 3 ]] || die "usage: up.sh CP_DIR NODE_DIR [PARENT_PID]"
[[ $(id -u) -eq 0 ]] || die "a node that runs pods needs root (mounts, cgroups, network namespaces)"
cp_dir="$(cd "$1" && pwd)"
dir="$2"
parent_pid="${3:-}"
node_name=localhost
runc="${RUNC:-/usr/sbin/runc}"
for b in containerd ctr iptables ip; do
  command -v $b >/dev/null || die "$b is missing (apt-get install containerd runc containernetworking-plugins iptables iproute2)"
done
[[ -x $runc ]] || die "$runc is missing (apt-get install runc)"
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || die "the CNI plugins are missing (apt-get install containernetworking-plugins)"
[[ -r $cp_dir/env && -r $cp_dir/pki/ca.key ]] || die "$cp_dir is not a directory of start.sh"
# shellcheck disable=SC1091
set -a; . "$cp_dir/env"; set +a
for b in kubelet kube-scheduler kube-controller-manager; do
  [[ -x $FOUREYES_CP_BIN/$b ]] || die "$FOUREYES_CP_BIN/$b is missing (tests/controlplane/build.sh builds it)"
done
kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
pause_image="$(bash "$here/build.sh" | tail -n 1)"

if [[ -e $dir ]]; then [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"; fi
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
mkdir -p "$dir"/{containerd,cni/net.d,cni/ipam,pki,kubelet,runc}
: >"$dir/pids"
t0=$SECONDS
ok=0
trap '[[ $ok == 1 ]] || { echo "node/up.sh: failed; the logs stay in $dir" >&2; bash "$here/down.sh" "$dir" >&2 || true; }' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

start_bg() { # NAME LOG CMD...
  local name=$1 log=$2; shift 2
  "$@" </dev/null >"$dir/$log" 2>&1 &
  echo "$name $! $(proc_starttime $!)" >>"$dir/pids"
}
free_port() {
  local p hex
  for _ in $(seq 200); do
    p=$(shuf -i 20000-32767 -n 1); printf -v hex ':%04X ' "$p"
    grep -qF "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port"
}
wait_for() { # SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2 name pid _born; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    while read -r name pid _born; do
      [[ $name == watchdog ]] && continue
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir"/*.log >&2; die "$name (pid $pid) exited while waiting for $what"; }
    done <"$dir/pids"
    ((SECONDS < deadline)) || { tail -n 20 "$dir"/*.log >&2; die "timed out after ${limit}s waiting for $what"; }
    sleep 0.5
  done
}

# --- watchdog (as start.sh's): down.sh when PARENT_PID is gone -----------------
# The start time of process $1 (field 22 of /proc/PID/stat): with the PID it
# identifies a process even after its PID is reused. Fails for a zombie.
proc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat
  [[ $1 != Z ]] || return 1
  echo "${20}"
}
if [[ -n $parent_pid ]]; then
  [[ $parent_pid =~ ^[0-9]+$ ]] || die "PARENT_PID must be a number, got '$parent_pid'"
  born="$(proc_starttime "$parent_pid")" || die "no process with PID $parent_pid"
  # shellcheck disable=SC2016 # expanded by the watchdog's shell
  watchdog="$(declare -f proc_starttime)"'
    parent=$1 born=$2 dir=$3 down=$4
    echo "watchdog: watching pid $parent for $dir"
    while [[ "$(proc_starttime "$parent")" == "$born" ]]; do sleep 1; done
    echo "watchdog: pid $parent is gone, taking the node in $dir down"
    exec bash "$down" "$dir"
  '
  setsid nohup bash -c "$watchdog" foureyes-node-watchdog "$parent_pid" "$born" "$dir" "$here/down.sh" \
    </dev/null >"$dir/watchdog.log" 2>&1 &
  echo "watchdog $! $(proc_starttime $!)" >>"$dir/pids"
fi

# --- containerd ----------------------------------------------------------------
# Without CAP_SYS_RESOURCE in the bounding set (bit 24), oom_score_adj cannot be
# lowered: clamp it (see containerd.toml.in).
capbnd="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
restrict_oom=false
(( (16#$capbnd >> 24) & 1 )) || restrict_oom=true
echo "$restrict_oom" >"$dir/restrict-oom-score-adj"
sed -e "s#@DIR@#$dir#g" -e "s#@RUNC@#$runc#" -e "s#@RESTRICT_OOM@#$restrict_oom#" \
  "$here/containerd.toml.in" >"$dir/containerd/config.toml"
sock="$dir/containerd/containerd.sock"
start_bg containerd containerd.log containerd --config "$dir/containerd/config.toml"
wait_for 30 containerd ctr -a "$sock" version
for img in $pause_image ${NODE_IMAGES:-}; do
  ctr -a "$sock" -n k8s.io images import "$img" >>"$dir/images.log" || die "could not import $img"
done

# --- network: a bridge per node, and the `kubernetes` Service's address --------
n=""
for _ in $(seq 50); do
  c=$(shuf -i 1-250 -n 1)
  ip -o link show "fenode$c" >/dev/null 2>&1 || ip route | grep -q "^10\.88\.$c\.0/24" || { n=$c; break; }
done
[[ -n $n ]] || die "no free bridge name and subnet"
echo "$n" >"$dir/cni/index"
bridge="fenode$n"
# Made here rather than by the CNI plugin, so that the forwarding below is in
# place before the first pod starts.
ip link add "$bridge" type bridge
ip addr add "10.88.$n.1/24" dev "$bridge"
ip link set "$bridge" up
cat >"$dir/cni/net.d/10-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "foureyes-node-$n",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.$n.0/24", "gateway": "10.88.$n.1"}]], "dataDir": "$dir/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
# There is no kube-proxy: pods reach the API server at the `kubernetes`
# Service's address (KUBERNETES_SERVICE_HOST, 10.0.0.1:443, in the API server's
# certificate) through one DNAT rule for packets from this bridge to the API
# server on 127.0.0.1, which the kernel accepts with route_localnet on the
# bridge only. Nothing leaves the machine.
service_ip="$(kubectl get service kubernetes -n default -o jsonpath='{.spec.clusterIP}')"
[[ $service_ip =~ ^[0-9.]+$ ]] || die "no address for the Service default/kubernetes"
api_port="${APISERVER_URL##*:}"
echo 1 >"/proc/sys/net/ipv4/conf/$bridge/route_localnet"
rule=(PREROUTING -i "$bridge" -d "$service_ip/32" -p tcp --dport 443 -m comment --comment "foureyes-node $dir"
  -j DNAT --to-destination "127.0.0.1:$api_port")
printf '%q ' "${rule[@]}" >"$dir/iptables-rule"
iptables -t nat -A "${rule[@]}"

# --- the node's identity: a client certificate from the control plane's CA ---
openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$dir/pki/node.key" -out "$dir/pki/node.csr" \
  -subj "/O=system:nodes/CN=system:node:$node_name" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$dir/pki/node.ext"
openssl x509 -req -sha256 -days 30 -in "$dir/pki/node.csr" -CA "$cp_dir/pki/ca.crt" -CAkey "$cp_dir/pki/ca.key" \
  -CAcreateserial -CAserial "$dir/pki/ca.srl" -extfile "$dir/pki/node.ext" -out "$dir/pki/node.crt" 2>/dev/null
chmod 600 "$dir/pki/node.key"
cat >"$dir/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cp
  cluster: {server: "$APISERVER_URL", certificate-authority: "$cp_dir/pki/ca.crt"}
users:
- name: node
  user: {client-certificate: "$dir/pki/node.crt", client-key: "$dir/pki/node.key"}
contexts:
- name: node
  context: {cluster: cp, user: node}
current-context: node
EOF
# The API server authorizes with RBAC only (no Node authorizer), and the
# ClusterRole system:node is bound to nobody by default.
kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: foureyes-test-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}]
EOF

# --- kubelet -------------------------------------------------------------------
kport=$(free_port)
cgroot="/foureyes-node-$n"
echo "$cgroot" >"$dir/cgroup-root"
# The kubelet wants its cgroupRoot to exist in every hierarchy. A new cgroup v1
# cpuset starts with empty cpus and mems: copy them from the parent.
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
  mkdir -p "/sys/fs/cgroup$cgroot"
else
  for h in /sys/fs/cgroup/*/; do
    [[ -e $h/cgroup.procs ]] || continue
    mkdir -p "$h${cgroot#/}"
    if [[ -e $h/cpuset.cpus ]]; then
      cat "$h/cpuset.cpus" >"$h${cgroot#/}/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h${cgroot#/}/cpuset.mems"
    fi
  done
fi
cat >"$dir/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
cgroupRoot: $cgroot
# Refused by default since 1.35; some hosts still have cgroup v1 (or hybrid).
failCgroupV1: false
failSwapOn: false
address: 127.0.0.1
port: $kport
healthzPort: 0
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# No KUBE-FIREWALL, KUBE-KUBELET-CANARY or KUBE-IPTABLES-HINT chains on the host.
makeIPTablesUtilChains: false
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
resolvConf: /etc/resolv.conf
EOF
node_ip="$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
[[ -n $node_ip ]] || node_ip="$(hostname -I | awk '{ print $1 }')"
[[ -n $node_ip ]] || die "no IPv4 address for the node"
start_bg kubelet kubelet.log "$FOUREYES_CP_BIN/kubelet" --config="$dir/kubelet-config.yaml" \
  --kubeconfig="$dir/kubelet.kubeconfig" --hostname-override="$node_name" --node-ip="$node_ip" \
  --root-dir="$dir/kubelet" --cert-dir="$dir/pki/kubelet" -v=1

# --- scheduler and the controllers that pods need ------------------------------
start_bg kube-scheduler scheduler.log "$FOUREYES_CP_BIN/kube-scheduler" --kubeconfig="$KUBECONFIG" \
  --authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=0
# deployment and replicaset: Deployments make pods; node-lifecycle removes the
# not-ready taint that admission puts on every new Node; garbage-collector
# deletes a Deployment's ReplicaSets and pods (helm uninstall);
# root-ca-certificate-publisher writes the ConfigMap kube-root-ca.crt that
# every ServiceAccount token volume mounts; serviceaccount makes `default`.
start_bg kube-controller-manager-node controller-manager.log "$FOUREYES_CP_BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" --authorization-kubeconfig="$KUBECONFIG" \
  --controllers=deployment-controller,replicaset-controller,node-lifecycle-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,serviceaccount-controller \
  --root-ca-file="$cp_dir/pki/ca.crt" \
  --leader-elect=false --use-service-account-credentials=false --bind-address=127.0.0.1 --secure-port=0

node_ready() {
  [[ "$(kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}|{.spec.taints}')" == "True|" ]]
}
wait_for 90 "node $node_name Ready and untainted" node_ready
printf 'NODE_DIR=%q\nNODE_NAME=%q\nCONTAINERD_SOCK=%q\nKUBELET_PORT=%q\nNODE_CGROUP_ROOT=%q\nNODE_BRIDGE=%q\n' \
  "$dir" "$node_name" "$sock" "$kport" "$cgroot" "$bridge" >"$dir/env"
ok=1
echo "node/up.sh: node $node_name ready in $((SECONDS - t0)) s" >&2
echo "$dir"
