#!/usr/bin/env bash
# Stops the local Fabric network that scripts/fabric-up.sh started in DIR: the
# chaincode server, the peer and the orderer, found by their pid files
# (DIR/{chaincode,peer,orderer}.pid). Each gets SIGTERM (sent to its whole
# process group, so `go run` children go too), then SIGKILL if it is still
# there after FABRIC_DOWN_TIMEOUT seconds (default 5). The pid files are
# removed; everything else in DIR (crypto, ledgers, logs, fabric.env) is left
# for inspection. fabric-up.sh DIR wipes and recreates it.
#
#   scripts/fabric-down.sh DIR
#
# Fabric binaries are not needed here. To install them for fabric-up.sh, use
# Fabric's official script and point FABRIC_BIN at its bin directory:
#   curl -sSLO https://raw.githubusercontent.com/hyperledger/fabric/main/scripts/install-fabric.sh
#   bash install-fabric.sh --fabric-version 2.5.x binary    # e.g. 2.5.16
#   export FABRIC_BIN=$PWD/bin
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "fabric-down: no such directory: $1" >&2; exit 1; }
dir=$(cd "$1" && pwd)
timeout=${FABRIC_DOWN_TIMEOUT:-5}

log() { echo "fabric-down: $*" >&2; }

# target PID: "-PID" (its process group) when PID leads its own group, as
# fabric-up.sh's setsid makes it, else PID alone.
target() {
  local pgid
  pgid=$(ps -o pgid= -p "$1" 2> /dev/null | tr -d ' ') || true
  if [ "$pgid" = "$1" ]; then echo "-$1"; else echo "$1"; fi
}

stop() { # NAME
  local name=$1 pidfile pid t deadline
  pidfile=$dir/$name.pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  case $pid in '' | *[!0-9]*) log "ignoring $pidfile: not a pid"; rm -f "$pidfile"; return 0 ;; esac
  if ! kill -0 "$pid" 2> /dev/null; then
    log "$name (pid $pid) was not running"
    rm -f "$pidfile"
    return 0
  fi
  t=$(target "$pid")
  kill -TERM -- "$t" 2> /dev/null || true
  deadline=$(($(date +%s) + timeout))
  while kill -0 -- "$t" 2> /dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$name (pid $pid) still running after ${timeout}s; sending SIGKILL"
      kill -KILL -- "$t" 2> /dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

for name in chaincode peer orderer; do
  stop "$name"
done
log "done; $dir is left for inspection"
