#!/usr/bin/env bash
# bench/serve_bench.sh: digits-serve's POST /predict requests/s for one 28x28 PNG each, server and clients on the
# machine's first 2 cores (taskset), the server with 2 request threads.
#
#   bench/serve_bench.sh MODEL... (env BUILD_DIR=build, SECONDS_EACH=10, CLIENTS=4, CPUS=0,1)
#
# MODEL: model files or run directories (the default preset's members, e.g.). Not a test: it never fails on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/serve_bench.sh MODEL..." >&2; exit 2; }
BUILD_DIR=${BUILD_DIR:-build}
cpus=${CPUS:-0,1}
out=$(mktemp)
taskset -c "$cpus" "$BUILD_DIR/bin/digits-serve" --port 0 --threads 2 "$@" >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
port=$(sed -n 's|.*127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out")
[ -n "$port" ] || { echo "serve_bench.sh: digits-serve did not start" >&2; exit 1; }
echo "# serve_bench $(date -u +%Y-%m-%dT%H:%MZ) on CPUs $cpus of $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); models: $*"
taskset -c "$cpus" "$BUILD_DIR/bench/serve_bench" "$port" "${CLIENTS:-4}" "${SECONDS_EACH:-10}"
