#!/usr/bin/env bash
# The ASHA bar: on the same 16 dense configurations (mlp2: 4 learning rates x 4 widths, 9 epochs), ASHA (rungs 1,
# 3, 9 epochs, eta 3) must find the grid's best configuration, or one within 0.1% validation accuracy, in at most
# 40% of the grid's epochs.
#
#   bench/sweep_asha_bench.sh [DATA]     (default data/train.npy; ROWS=20000 rows of it: 18,000 train, 2,000 val)
#   env: BIN=build/bin  WORKERS=2  ROWS=20000
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
params='"train.lr": [0.005, 0.01, 0.02, 0.05], "layer2.units": [32, 64, 128, 300], "train.epochs": [9]'
cat > "$tmp/grid.sweep" <<S
{"model": "mlp2", "strategy": "grid", "params": {$params}, "rows": $ROWS, "threads": 1}
S
params_asha='"train.lr": [0.005, 0.01, 0.02, 0.05], "layer2.units": [32, 64, 128, 300]'
cat > "$tmp/asha.sweep" <<S
{"model": "mlp2", "strategy": "asha", "asha": {"rungs": [1, 3, 9], "eta": 3}, "params": {$params_asha},
 "rows": $ROWS, "threads": 1}
S
echo "sweep ASHA bench: $data ($ROWS rows), $WORKERS workers, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for s in grid asha; do
    t0=$(date +%s.%N)
    "$BIN/digits-sweep" --quiet --data "$data" --dir "$tmp/$s" --workers "$WORKERS" --top 0 "$tmp/$s.sweep"
    t1=$(date +%s.%N)
    epochs=$(sqlite3 "$tmp/$s/sweep.db" "select sum(epochs) from trials")
    best=$(sed -n 2p "$tmp/$s/leaderboard.csv" | cut -d, -f2,6,10,11)
    echo "$s: $epochs epochs, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s; best config,val_acc,lr,units: $best"
    echo "$epochs" > "$tmp/$s.epochs"
    sed -n 2p "$tmp/$s/leaderboard.csv" | cut -d, -f6 > "$tmp/$s.best"
done
awk -v ge="$(cat "$tmp/grid.epochs")" -v ae="$(cat "$tmp/asha.epochs")" -v gb="$(cat "$tmp/grid.best")" \
    -v ab="$(cat "$tmp/asha.best")" 'BEGIN {
    printf "ASHA used %.1f%% of the grid'"'"'s epochs (bar <= 40%%); its best is %.4f%% below the grid'"'"'s best (bar <= 0.1%%)\n",
           100 * ae / ge, 100 * (gb - ab) }'
