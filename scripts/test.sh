#!/usr/bin/env bash
# Runs every test of ordergrid: formatting, go vet, staticcheck, the unit and
# end-to-end tests under the race detector (the end-to-end tests build and run
# the real binary, kill it, and audit what survives), then a short fuzz of
# each parser. Needs Go; installs what else the tests use from Debian's
# packages when missing (etcd-server for the etcd provider test, curl for
# scripts/cluster-up.sh, iproute2 for the network partition test), and Go
# tools through the module proxy at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-15s}
step() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "test.sh: not root and no sudo: cannot install ${need[*]}; the tests that need them will fail or skip" >&2
  else
    for attempt in 1 2 3; do
      if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
        break
      fi
      [ "$attempt" = 3 ] && { echo "test.sh: could not install ${need[*]}" >&2; exit 1; }
      sleep 5
    done
  fi
fi

step "gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

step "go test -race (unit and end-to-end)"
go test -race -count=1 -timeout 30m ./...

step "fuzz: order decoder ($FUZZTIME)"
go test ./gateway -run '^$' -fuzz '^FuzzDecodeOrder$' -fuzztime "$FUZZTIME"
step "fuzz: Authorization header ($FUZZTIME)"
go test ./gateway -run '^$' -fuzz '^FuzzAuthenticate$' -fuzztime "$FUZZTIME"
step "fuzz: master keys parser ($FUZZTIME)"
go test ./privacy -run '^$' -fuzz '^FuzzParseKeyring$' -fuzztime "$FUZZTIME"
step "fuzz: Raft log entry decoder ($FUZZTIME)"
go test ./cluster -run '^$' -fuzz '^FuzzDecodeLog$' -fuzztime "$FUZZTIME"

step "fuzz: checkpoint parser ($FUZZTIME)"
go test ./ledger/checkpoint -run '^$' -fuzz '^FuzzParse$' -fuzztime "$FUZZTIME"
step "fuzz: leaf decoder ($FUZZTIME)"
go test ./ledger -run '^$' -fuzz '^FuzzDecodeLeaf$' -fuzztime "$FUZZTIME"
step "fuzz: bundle verifier ($FUZZTIME)"
go test ./ledger -run '^$' -fuzz '^FuzzVerifyBundle$' -fuzztime "$FUZZTIME"

step "fuzz: warehouse documents ($FUZZTIME)"
go test ./routing -run '^$' -fuzz '^FuzzParseWarehouse$' -fuzztime "$FUZZTIME"
step "fuzz: strategy documents ($FUZZTIME)"
go test ./routing -run '^$' -fuzz '^FuzzParseStrategy$' -fuzztime "$FUZZTIME"
step "fuzz: simulation order lines ($FUZZTIME)"
go test ./routing -run '^$' -fuzz '^FuzzParseOrderDoc$' -fuzztime "$FUZZTIME"

for target in $(grep -ho '^func FuzzMap[A-Za-z]*' channels/*_test.go | sed 's/^func //' | sort); do
  step "fuzz: channel payload $target ($FUZZTIME)"
  go test ./channels -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME"
done

step "all tests passed in $(( $(date +%s) - start ))s"
