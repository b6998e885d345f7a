#!/usr/bin/env bash
# The ASHA bar: on the same 16 dense configurations (mlp2: 4 learning rates x 4 widths, 9 epochs), ASHA (rungs 1,
# 3, 9 epochs, eta 3) must find the grid's best configuration, or one within 0.1% validation accuracy, in at most
# 40% of the grid's epochs.
#
#   bench/sweep_asha_bench.sh [DATA]     (default data/train.npy; ROWS=20000 rows of it: 18,000 train, 2,000 val)
#   env: BIN=build/bin  WORKERS=2  ROWS=20000  SEEDS="1 2 3" (ASHA's sweep seeds: its rung-0 order)
#
# Both sweeps use one thread per trial, so a configuration ASHA trains to the end is bit-identical to the grid's
# run of it (--stop-at and --resume continue the same schedule). Epochs are counted from the databases.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data=${1:-$root/data/train.npy}
BIN=${BIN:-$root/build/bin}
WORKERS=${WORKERS:-2}
ROWS=${ROWS:-20000}
SEEDS=${SEEDS:-1 2 3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
params_asha='"train.lr": [0.005, 0.01, 0.02, 0.05], "layer2.units": [32, 64, 128, 300]'
params="$params_asha"', "train.epochs": [9]'
echo "sweep ASHA bench: $data ($ROWS rows), $WORKERS workers, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
run() { # run NAME: the sweep $tmp/NAME.sweep; prints epochs and the best row
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN/digits-sweep" --quiet --data "$data" --dir "$tmp/$1" --workers "$WORKERS" --top 0 "$tmp/$1.sweep"
    t1=$(date +%s.%N)
    epochs=$(sqlite3 "$tmp/$1/sweep.db" "select sum(epochs) from trials")
    best=$(sed -n 2p "$tmp/$1/leaderboard.csv" | cut -d, -f6)
    echo "$1: $epochs epochs, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s; best (config,val_acc,lr,units): $(sed -n 2p "$tmp/$1/leaderboard.csv" | cut -d, -f2,6,10,11)"
}
# The sweep seed sets the training seeds and ASHA's rung-0 order: each ASHA run is compared with a grid of the same seed.
for seed in $SEEDS; do
    cat > "$tmp/grid$seed.sweep" <<S
{"model": "mlp2", "strategy": "grid", "params": {$params}, "rows": $ROWS, "threads": 1, "seed": $seed}
S
    cat > "$tmp/asha$seed.sweep" <<S
{"model": "mlp2", "strategy": "asha", "asha": {"rungs": [1, 3, 9], "eta": 3}, "params": {$params_asha},
 "rows": $ROWS, "threads": 1, "seed": $seed}
S
    run "grid$seed"
    ge=$epochs gb=$best
    run "asha$seed"
    awk -v ge="$ge" -v ae="$epochs" -v gb="$gb" -v ab="$best" -v s="$seed" 'BEGIN {
        printf "seed %s: ASHA used %.1f%% of the grid'"'"'s epochs (bar <= 40%%); its best is %.4f%% below the grid'"'"'s best (bar <= 0.1%%)\n",
               s, 100 * ae / ge, 100 * (gb - ab) }'
done
