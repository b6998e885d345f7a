#!/usr/bin/env bash
# The overhead bar: 200 one-epoch trials (mlp2 on ROWS rows, one thread each) run by digits-sweep --workers 1, and
# the same 200 digits-train commands back to back from a shell loop; the sweep may lose < 5% wall time, and its
# coordinator must use < 1% of a core (digits-sweep's last log line: its own CPU time over its wall time).
#
#   bench/sweep_overhead.sh [DATA]     (default data/train.npy)
#   env: BIN=build/bin  ROWS=3000  N=200 (a multiple of 20)  ROUNDS=2 (alternating sweep, loop, sweep, loop, ...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data=${1:-$root/data/train.npy}
BIN=${BIN:-$root/build/bin}
ROWS=${ROWS:-3000}
N=${N:-200}
ROUNDS=${ROUNDS:-2}
# both sides with the stages' wait policy in the environment: without it each digits-train of the shell loop would
# re-execute itself to set it (dg_stage_init), while the sweep's trainers get it from digits-sweep
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# N = 20 learning rates x N / 20 momentums (a parameter holds at most 64 values)
lrs=$(awk 'BEGIN { for (i = 0; i < 20; i++) printf "%s%.4f", i ? ", " : "", 0.01 + 0.002 * i }')
moms=$(awk -v n="$N" 'BEGIN { for (i = 0; i < n / 20; i++) printf "%s%.3f", i ? ", " : "", 0.5 + 0.04 * i }')
cat > "$tmp/o.sweep" <<S
{"model": "mlp2", "params": {"train.lr": [$lrs], "train.momentum": [$moms], "train.epochs": [1]}, "rows": $ROWS,
 "threads": 1}
S
echo "sweep overhead bench: $N trials of 1 epoch, $ROWS rows, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for r in $(seq "$ROUNDS"); do
    rm -rf "$tmp/s" "$tmp/b"
    t0=$(date +%s.%N)
    "$BIN/digits-sweep" --data "$data" --dir "$tmp/s" --top 0 "$tmp/o.sweep" 2> "$tmp/log"
    t1=$(date +%s.%N)
    grep "coordinator used" "$tmp/log" || true
    seed=$(sqlite3 "$tmp/s/sweep.db" "select seed from trials where id = 0")
    mkdir -p "$tmp/b"
    t2=$(date +%s.%N)
    for i in $(seq 0 $((N - 1))); do
        c=$(printf c%04d "$i")
        "$BIN/digits-train" --data "$tmp/s/data.npy" --model "$tmp/s/configs/$c.spec" --run "$tmp/b/$c" \
            --seed "$seed" --split-seed 1 --val-frac 0.1 --threads 1 --resume --quiet > /dev/null 2>&1
    done
    t3=$(date +%s.%N)
    awk -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v l="$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')" \
        'BEGIN { printf "round: sweep %.1f s, back to back %.1f s: the sweep loses %.1f%%\n", s, l, 100 * (s - l) / l }'
done
