#!/usr/bin/env bash
# Stops the cluster that scripts/cluster-up.sh DIR started: SIGTERM, then
# SIGKILL for a node that is still there after 30 s. Data stays in DIR.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
for i in 1 2 3; do
  f="$dir/node$i.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster-down: node$i did not stop in 30s; killing" >&2
      kill -KILL "$pid" || true
    fi
  fi
  rm -f "$f"
  echo "cluster-down: node$i stopped" >&2
done
