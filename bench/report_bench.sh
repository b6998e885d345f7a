#!/usr/bin/env bash
# bench/report_bench.sh: the time digits-report takes for the page of a 45-epoch run (the bar: < 1 s).
#
#   bench/report_bench.sh
#
# Trains the tests' tiny model (tests/fixtures/spec/tiny.spec, an MLP that misclassifies ~10% of the 4200
# validation rows, so the gallery is full) for 45 epochs on data/train.npy with --tensorboard, then renders its
# page five times with the default gallery (60 digits) and five times with --gallery 1000; prints the best wall
# time of each and the page sizes. Environment: BUILD_DIR (default build), TMPDIR for the run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BIN=$BUILD_DIR/bin
say() { printf '== %s\n' "$*" >&2; }

if [ ! -x "$BIN/digits-report" ] || [ ! -x "$BIN/digits-train" ]; then
    say "building digits-train and digits-report in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j2 --target digits-train digits-report >/dev/null
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/report_bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

say "training tiny.spec for 45 epochs"
"$BIN/digits-train" --data "$ROOT/data/train.npy" --model "$ROOT/tests/fixtures/spec/tiny.spec" --epochs 45 \
    --run "$WORK/run" --tensorboard "$WORK/tb" --quiet
say "load: $(cut -d' ' -f1-3 /proc/loadavg)"

best() { # best <label> <digits-report args...>: the best of 5 wall times
    local label=$1 b=999 t0 t1 t
    shift
    for _ in 1 2 3 4 5; do
        t0=$(date +%s.%N)
        "$BIN/digits-report" "$@" >/dev/null
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        b=$(echo "if ($t < $b) $t else $b" | bc -l)
    done
    printf '%-34s best of 5: %.3f s\n' "$label" "$b"
}
best "45 epochs, gallery 60" --run "$WORK/run" -o "$WORK/a.html"
best "45 epochs, gallery 1000" --run "$WORK/run" --gallery 1000 -o "$WORK/b.html"
printf 'page sizes: %s (gallery 60), %s (gallery 1000); %s misclassified of %s\n' \
    "$(du -h "$WORK/a.html" | cut -f1)" "$(du -h "$WORK/b.html" | cut -f1)" \
    "$(grep -o '[0-9]* misclassified' "$WORK/a.html" | head -1 | cut -d' ' -f1)" \
    "$(grep -o 'on [0-9]* rows' "$WORK/a.html" | head -1 | cut -d' ' -f2)"
printf 'tfevents: %s\n' "$(ls "$WORK/tb")"
