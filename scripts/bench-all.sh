#!/usr/bin/env bash
# Runs every bench scenario, each against a fresh throwaway single node, and
# writes each report (text, JSON, HTML) under DIR. BENCHMARKS.md is made from
# these runs. Takes about 4 minutes on 2 cores.
#
#   scripts/bench-all.sh DIR [DURATION]      (DURATION default 10s)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [DURATION]" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=$1
dur=${2:-10s}
mkdir -p "$out"
bin="$out/ordergrid"
echo "bench-all: building" >&2
go build -o "$bin" ./cmd/ordergrid
run() { # NAME ARGS...
  local name=$1
  shift
  echo "bench-all: $name" >&2
  "$bin" bench -ordergrid "$bin" -progress=false -duration "$dur" \
    -json "$out/$name.json" -html "$out/$name.html" "$@" | tee "$out/$name.txt"
  echo
}
run hot-sku-http-single   -scenario hot-sku -concurrency 64
run hot-sku-http-batch    -scenario hot-sku -mode batch -batch 100 -concurrency 8
run hot-sku-grpc-single   -scenario hot-sku -transport grpc -concurrency 64
run hot-sku-grpc-batch    -scenario hot-sku -transport grpc -mode batch -batch 100 -concurrency 8
run hot-sku-grpc-stream   -scenario hot-sku -transport grpc-stream -concurrency 512
run spread-uniform        -scenario spread -skus 10000 -warehouses 4 -dist uniform -concurrency 64
run spread-zipf           -scenario spread -skus 10000 -warehouses 4 -dist zipf -concurrency 64
run surge                 -scenario surge -base-rate 50 -surge-factor 840 -ramp 2s -stock 100000000
run lifecycle             -scenario lifecycle -concurrency 32
echo "bench-all: reports in $out" >&2
