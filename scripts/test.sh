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

# fuzz PKG TARGET runs one fuzz target for $FUZZTIME. Go's fuzzing engine can
# end a run with "context deadline exceeded" when -fuzztime runs out while a
# worker is still busy (a loaded machine), having found nothing; such a run is
# repeated once. A run that found a failing input (written to testdata/fuzz)
# fails at once.
fuzz() {
  local out
  for attempt in 1 2; do
    if out=$(go test "$1" -run '^$' -fuzz "$2" -fuzztime "$FUZZTIME" 2>&1); then
      printf '%s\n' "$out" | tail -n 3 >&2
      return 0
    fi
    printf '%s\n' "$out" >&2
    if [ "$attempt" = 2 ] || grep -q 'Failing input written' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
      return 1
    fi
    echo "test.sh: the fuzzing engine timed out without a finding; running $2 once more" >&2
  done
}

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
fuzz ./gateway '^FuzzDecodeOrder$'
step "fuzz: batch decoder ($FUZZTIME)"
fuzz ./gateway '^FuzzDecodeBatch$'
step "fuzz: Authorization header ($FUZZTIME)"
fuzz ./gateway '^FuzzAuthenticate$'
step "fuzz: master keys parser ($FUZZTIME)"
fuzz ./privacy '^FuzzParseKeyring$'
step "fuzz: Raft log entry decoder ($FUZZTIME)"
fuzz ./cluster '^FuzzDecodeLog$'

step "fuzz: event stream's leaf decoder ($FUZZTIME)"
fuzz ./stream '^FuzzDecodeEvent$'
step "fuzz: event stream's filter parser ($FUZZTIME)"
fuzz ./stream '^FuzzParseFilter$'
step "fuzz: tracking link verifier ($FUZZTIME)"
fuzz ./tracking '^FuzzVerify$'

step "fuzz: checkpoint parser ($FUZZTIME)"
fuzz ./ledger/checkpoint '^FuzzParse$'
step "fuzz: leaf decoder ($FUZZTIME)"
fuzz ./ledger '^FuzzDecodeLeaf$'
step "fuzz: bundle verifier ($FUZZTIME)"
fuzz ./ledger '^FuzzVerifyBundle$'

step "fuzz: JSON shape checker ($FUZZTIME)"
fuzz ./jsonshape '^FuzzCheck$'
step "fuzz: warehouse documents ($FUZZTIME)"
fuzz ./routing '^FuzzParseWarehouse$'
step "fuzz: strategy documents ($FUZZTIME)"
fuzz ./routing '^FuzzParseStrategy$'
step "fuzz: simulation order lines ($FUZZTIME)"
fuzz ./routing '^FuzzParseOrderDoc$'

for target in $(grep -ho '^func FuzzMap[A-Za-z]*' channels/*_test.go | sed 's/^func //' | sort); do
  step "fuzz: channel payload $target ($FUZZTIME)"
  fuzz ./channels "^$target\$"
done
step "fuzz: WeChat encrypted push decryption ($FUZZTIME)"
fuzz ./channels '^FuzzOpenWeChat$'
step "fuzz: pushes that name orders ($FUZZTIME)"
fuzz ./channels '^FuzzNotices$'
step "fuzz: platform API list pages ($FUZZTIME)"
fuzz ./platforms '^FuzzParseDouyinPage$'

step "all tests passed in $(( $(date +%s) - start ))s"
