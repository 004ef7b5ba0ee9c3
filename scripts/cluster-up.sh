#!/usr/bin/env bash
# Starts (or restarts) a three-node ordergrid cluster on 127.0.0.1.
#
#   scripts/cluster-up.sh DIR
#
# Each node gets its own ports, data directory (DIR/nodeN), log (DIR/nodeN.log)
# and PID file (DIR/nodeN.pid). Waits until every node answers /readyz, then
# prints the three HTTP base URLs, one per line. Run again on the same DIR to
# restart the nodes that are not running, with their data; scripts/cluster-down.sh
# DIR stops them.
#
# Environment: ORDERGRID_BASE_PORT (first of 30 ports, default 17100, kept in
# DIR/cluster.env), ORDERGRID_BIN (a built binary; default: go build into DIR),
# ORDERGRID_EXTRA_ARGS (more serve flags for every node), READY_TIMEOUT (s, default 120),
# ORDERGRID_BOOTSTRAP_TOKEN (the admin API token of all three nodes; default: one made
# on the first run, kept in DIR/cluster.env and printed to stderr), ORDERGRID_MASTER_KEYS
# (the nodes' master keys for personal data; default: one key made on the first run, kept
# in DIR/cluster.env).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ -f "$dir/cluster.env" ]; then
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
else
  base=${ORDERGRID_BASE_PORT:-17100}
  token=${ORDERGRID_BOOTSTRAP_TOKEN:-og_$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 43)}
  printf 'base=%s\ntoken=%s\n' "$base" "$token" > "$dir/cluster.env"
  chmod 600 "$dir/cluster.env"
fi
token=${ORDERGRID_BOOTSTRAP_TOKEN:-${token:-}}
[ -n "$token" ] || { echo "cluster-up: no token in $dir/cluster.env; set ORDERGRID_BOOTSTRAP_TOKEN" >&2; exit 1; }
export ORDERGRID_BOOTSTRAP_TOKEN=$token

bin=${ORDERGRID_BIN:-}
if [ -z "$bin" ]; then
  bin="$dir/ordergrid"
  echo "cluster-up: building ordergrid" >&2
  (cd "$root" && go build -o "$bin" ./cmd/ordergrid)
fi

# One set of master keys (personal data) for the three nodes, made once.
if [ -z "${ORDERGRID_MASTER_KEYS:-}" ] && [ -z "${master_keys:-}" ]; then
  master_keys=$("$bin" privacy keygen --id k1)
  printf "master_keys='%s'\n" "$master_keys" >> "$dir/cluster.env"
fi
export ORDERGRID_MASTER_KEYS=${ORDERGRID_MASTER_KEYS:-$master_keys}

port() { echo $((base + 10 * ($1 - 1) + $2)); }   # node, slot: 0 http 1 raft 2 actor 3 provider 4 grpc
peers="" providers=""
for i in 1 2 3; do
  peers+="${peers:+,}node$i=127.0.0.1:$(port $i 1)"
  providers+="${providers:+,}127.0.0.1:$(port $i 3)"
done

alive() { [ -f "$dir/node$1.pid" ] && kill -0 "$(cat "$dir/node$1.pid")" 2>/dev/null; }

for i in 1 2 3; do
  if alive "$i"; then
    echo "cluster-up: node$i already running (pid $(cat "$dir/node$i.pid"))" >&2
    continue
  fi
  for s in 0 1 2 3 4; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$(port $i $s)") 2>/dev/null; then
      echo "cluster-up: port $(port $i $s) for node$i is in use; set ORDERGRID_BASE_PORT" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2086
  nohup "$bin" serve --node-id "node$i" --data-dir "$dir/node$i" \
    --http-addr "127.0.0.1:$(port $i 0)" --grpc-addr "127.0.0.1:$(port $i 4)" \
    --raft-addr "127.0.0.1:$(port $i 1)" --raft-peers "$peers" \
    --actor-addr "127.0.0.1:$(port $i 2)" --actor-provider-port "$(port $i 3)" \
    --actor-provider-hosts "$providers" --privacy-require-external-master-key \
    ${ORDERGRID_EXTRA_ARGS:-} \
    >> "$dir/node$i.log" 2>&1 < /dev/null &
  echo $! > "$dir/node$i.pid"
  echo "cluster-up: started node$i (pid $!), log $dir/node$i.log" >&2
done

deadline=$(( $(date +%s) + ${READY_TIMEOUT:-120} ))
for i in 1 2 3; do
  url="http://127.0.0.1:$(port $i 0)"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" 2>/dev/null)" = 200 ]; do
    if ! alive "$i"; then
      echo "cluster-up: node$i exited; last lines of its log:" >&2; tail -20 "$dir/node$i.log" >&2; exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "cluster-up: node$i not ready in time; last lines of its log:" >&2; tail -20 "$dir/node$i.log" >&2; exit 1
    fi
    printf '.' >&2; sleep 0.5
  done
done
printf '\n' >&2
echo "cluster-up: admin API token (Authorization: Bearer ...): $token" >&2
for i in 1 2 3; do echo "http://127.0.0.1:$(port $i 0)"; done
