#!/bin/bash
# The conditional DCGAN generator's forward + backward, nn/net (bench/gan_speed.c) against PyTorch
# (bench/gan_peer.py), alternated ROUNDS times on the same threads so both see the same machine load.
# usage: bench/gan_bench.sh [BUILD_DIR (build)] [ROUNDS (3)] [THREADS (2)] [BATCH (64)]
set -euo pipefail
build=${1:-build} rounds=${2:-3} threads=${3:-2} batch=${4:-64}
export OMP_NUM_THREADS=$threads
# both are libgomp programs: the stages' spin limit (core/dg_cli.c dg_stage_init) for both, since on a loaded
# machine a spinning OpenMP barrier costs more than the work (PyTorch with the default spin: 38-64 img/s, with a
# passive wait 288 on the same load)
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$rounds"); do
    "$build/bench/gan_speed" --batch "$batch" --threads "$threads" --seconds 5
    /usr/bin/python3 "$(dirname "$0")/gan_peer.py" --batch "$batch" --threads "$threads" --seconds 5
done
