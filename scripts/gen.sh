#!/usr/bin/env bash
# Regenerates the committed protobuf code under proto/. Installs what it needs:
# protoc (Debian's protobuf-compiler) and the Go plugins at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
  echo "gen: installing protoc (protobuf-compiler)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler >/dev/null; fi
fi

go mod download github.com/asynkron/protoactor-go
actor_version=$(go list -m -f '{{.Version}}' github.com/asynkron/protoactor-go)
actor_dir=$(go list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go)
bin="$(go env GOPATH)/bin"
export PATH="$bin:$PATH"
echo "gen: installing protoc-gen-go, protoc-gen-go-grpc, protoc-gen-go-grain" >&2
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
go install "github.com/asynkron/protoactor-go/protobuf/protoc-gen-go-grain@${actor_version}"

# The public API alone lives under proto/ (its import path is
# ordergrid/v1/api.proto); every other message set lives beside the package
# that owns it: the grid's grain calls, commands and records in
# internal/gridpb, the grain services (whose generated code links Proto.Actor)
# in internal/gridpb/grains, the partitions' RPC in cluster/clusterpb, the
# ledger's Raft commands in ledger/ledgerpb. All keep the protobuf package
# ordergrid.v1, so what goes over the wire and into Pebble does not depend on
# where the Go code lives.
(cd proto && protoc -I. --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  ordergrid/v1/api.proto)
protoc -I. --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  cluster/clusterpb/partition.proto ledger/ledgerpb/ledger.proto
protoc -I. -Iproto --go_out=. --go_opt=paths=source_relative \
  internal/gridpb/grains.proto
protoc -I. -Iproto -I"$actor_dir" --go_out=. --go_opt=paths=source_relative \
  --go-grain_out=. --go-grain_opt=paths=source_relative \
  internal/gridpb/grains/services.proto
echo "gen: done" >&2
