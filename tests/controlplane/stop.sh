#!/usr/bin/env bash
# Stops a control plane started by start.sh.
#
# Usage: stop.sh DIR
#
# Sends TERM to every process listed in DIR/pids ("name pid" lines: the
# optional watchdog, etcd and kube-apiserver), waits up to 5 s, then sends KILL to any
# that remain. Idempotent and quiet: a missing DIR/pids or processes that are
# already gone are not errors. DIR itself (logs, data) is left in place.
set -euo pipefail

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: stop.sh DIR" >&2; exit 2; }
[[ -d "$1" ]] || exit 0
dir="$(cd "$1" && pwd)"
[[ -f "$dir/pids" ]] || exit 0

# True while PID runs (a zombie does not count). Where /proc exists, the
# process must also have DIR in its command line, so a PID that has since been
# reused by an unrelated process is left alone.
ours() {
  local pid=$1 stat args
  if [[ -d /proc/self ]]; then
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"                  # drop "pid (comm) "
    [[ ${stat%% *} != Z ]] || return 1   # state field
    # One argument per line; one must be DIR or lie under DIR/.
    args=$'\n'"$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")"$'\n'
    [[ $args == *$'\n'"$dir"$'\n'* || $args == *"$dir/"* ]]
  else
    kill -0 "$pid" 2>/dev/null
  fi
}

# Last started first: kube-apiserver, etcd, then the watchdog. When the
# watchdog runs this script it does so via exec, so its own PID ($$) is
# skipped.
pids=()
while read -r _name pid; do
  if [[ "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]]; then
    pids=("$pid" "${pids[@]}")
  fi
done <"$dir/pids"

for pid in "${pids[@]}"; do
  if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
done

for _ in $(seq 1 50); do
  remaining=0
  for pid in "${pids[@]}"; do
    if ours "$pid"; then remaining=1; fi
  done
  if [[ $remaining -eq 0 ]]; then exit 0; fi
  sleep 0.1
done

for pid in "${pids[@]}"; do
  if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
done
exit 0
