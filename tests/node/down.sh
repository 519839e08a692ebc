#!/usr/bin/env bash
# Takes a node of up.sh down and removes what it left on the machine: its
# processes (by the PIDs recorded in NODE_DIR, checked against their start
# times), the containerd shims serving its socket and the processes in its
# cgroups (by path), the mounts under NODE_DIR, its cgroups, its bridge and its
# iptables rule; then its state, keeping the logs in NODE_DIR. Never by
# process name. Idempotent; run it before the control plane's stop.sh.
#
# Usage: down.sh NODE_DIR
set -uo pipefail
dir="$(cd "$1" 2>/dev/null && pwd)" || exit 0
[[ -f $dir/pids ]] || exit 0
sock="$dir/containerd/containerd.sock"

starttime() { local s; s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1; s="${s##*) }"; set -- $s; [[ $1 != Z ]] && echo "${20}"; }
# PIDs of NAME that are still the processes up.sh started (same start time).
pid_of() {
  local name pid born
  while read -r name pid born; do
    [[ $name == "$1" && $pid != "$$" && -n $born && "$(starttime "$pid")" == "$born" ]] && echo "$pid"
  done <"$dir/pids"
}
stop_pid() { # PID: TERM, up to 10 s, then KILL
  local pid=$1
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null; sleep 0.2
}
for name in watchdog kubelet kube-scheduler kube-controller-manager-node; do stop_pid "$(pid_of "$name")"; done

# The containers, while containerd still runs: deleting a task ends its shim,
# which removes its socket. The sandboxes' ids name the CNI plugins' cached
# results outside NODE_DIR.
cpid="$(pid_of containerd)"
if [[ -n $cpid ]]; then
  ctr -a "$sock" -n k8s.io containers ls -q >>"$dir/container-ids" 2>/dev/null
  for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    timeout 20 ctr -a "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1
  done
  for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
    timeout 20 ctr -a "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1
  done
  stop_pid "$cpid"
fi
# Shims that still run (they outlive containerd): those serving this node's
# socket (by path), and the sockets they listen on.
for p in /proc/[0-9]*; do
  cmd="$( (tr '\0' ' ' <"$p/cmdline") 2>/dev/null)" || continue
  [[ $cmd == *containerd-shim* && $cmd == *"$sock"* ]] || continue
  for fd in "$p"/fd/*; do
    l="$(readlink "$fd" 2>/dev/null)" || continue
    [[ $l == socket:* ]] || continue
    l="${l#socket:[}"
    awk -v i="${l%]}" '$7 == i && $8 ~ /^\/run\/containerd\/s\/[0-9a-f]+$/ { print $8 }' "$p/net/unix" 2>/dev/null
  done >>"$dir/shim-sockets"
  kill -9 "${p#/proc/}" 2>/dev/null
done
while read -r f; do rm -f "$f"; done < <(sort -u "$dir/shim-sockets" 2>/dev/null)
while read -r id; do
  [[ $id =~ ^[0-9a-f]{64}$ ]] && rm -f /var/lib/cni/results/*-"$id"-*
done < <(sort -u "$dir/container-ids" 2>/dev/null)
# Whatever still runs in the node's cgroups (by path).
cgroot="$(cat "$dir/cgroup-root" 2>/dev/null)"
cgroup_dirs() {
  [[ -n $cgroot ]] || return 0
  if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
    [[ -d /sys/fs/cgroup$cgroot ]] && echo "/sys/fs/cgroup$cgroot"
  else
    for h in /sys/fs/cgroup/*/; do [[ -d "$h${cgroot#/}" ]] && echo "$h${cgroot#/}"; done
  fi
}
for _ in 1 2 3 4; do
  pids="$(for d in $(cgroup_dirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)"
  [[ -z $pids ]] && break
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null; sleep 0.5
done

# Mounts under NODE_DIR (the kubelet's volumes, container root file systems,
# the pods' network namespaces), deepest first.
for _ in 1 2 3; do
  mps="$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)"
  [[ -z $mps ]] && break
  while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done <<<"$mps"
done
# The cgroups, deepest first.
for d in $(cgroup_dirs); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
# The forwarding rule (its exact spec, as up.sh added it) and the bridge.
if [[ -s $dir/iptables-rule ]]; then
  eval "rule=($(cat "$dir/iptables-rule"))"
  while iptables -t nat -C "${rule[@]}" 2>/dev/null; do iptables -t nat -D "${rule[@]}"; done
fi
n="$(cat "$dir/cni/index" 2>/dev/null)"
[[ -n $n ]] && ip link del "fenode$n" 2>/dev/null
# Empty directories that the shims and the CNI library make outside NODE_DIR.
rmdir /run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni 2>/dev/null
# The state goes, the logs stay.
rm -rf "$dir/containerd" "$dir/kubelet" "$dir/runc" "$dir/cni" "$dir/pki"
: >"$dir/pids"
exit 0
