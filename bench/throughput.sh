#!/usr/bin/env bash
# bench/throughput.sh: training and inference images/s of this project's networks beside the same architectures
# in PyTorch (Debian's python3-torch, Adam, same shapes, best of 1 and 2 threads), in one run, with the ratios and
# the GFLOPS achieved against the machine's sgemm ceiling (measured in the same run).
#
#   bench/throughput.sh            (BUILD_DIR=build, SECONDS_EACH=10, PY=/usr/bin/python3)
#
# Training FLOPs per image are counted as 3x the forward FLOPs (forward, input gradient, weight gradient).
# Ours is measured at its default thread count (all CPUs). Not a test: it never fails on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SECS=${SECONDS_EACH:-10}
PY=${PY:-/usr/bin/python3}
NS=$BUILD_DIR/bench/net_speed
[ -x "$NS" ] || { echo "throughput.sh: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }

field() { sed -n "s/.*[ (]$1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

echo "# throughput $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
peak1=$(OMP_NUM_THREADS=1 "$BUILD_DIR/bench/sgemm_peak" 4096 3 | sed -n 's/^sgemm 4096.*: \([0-9.]*\) GFLOPS/\1/p')
peak2=$(OMP_NUM_THREADS=2 "$BUILD_DIR/bench/sgemm_peak" 4096 3 | sed -n 's/^sgemm 4096.*: \([0-9.]*\) GFLOPS/\1/p')
echo "sgemm 4096^3 ceiling: ${peak1} GFLOPS (1 thread), ${peak2} GFLOPS (2 threads)"
printf '%-8s %5s | %9s %9s %6s | %9s %9s %6s | %8s %6s\n' model batch "ours-trn" "torch-trn" ratio "ours-inf" \
    "torch-inf" ratio "GFLOPS" "%peak"
for mb in "mlp800 200" "lenet5 128" "deotte 64" "deotte 128" "vgg-ls 64"; do
    set -- $mb
    spec=$1
    [ "$1" = vgg-ls ] && spec=experiments/models/vgg-ls.spec # net_speed knows the first three by name
    ours=$("$NS" --model "$spec" --batch "$2" --seconds "$SECS" 2>&1 | tail -1)
    otr=$(field train_img_s "$ours")
    oin=$(field infer_img_s "$ours")
    mflop=$(sed -n 's/.* \([0-9.]*\) MFLOP\/image.*/\1/p' <<<"$ours")
    btr=0 bin=0
    for t in 1 2; do
        peer=$("$PY" bench/torch_peer.py "$1" "$2" --threads $t --steps $((SECS * 4)) 2>&1 | tail -1)
        ptr=$(field train_img_s "$peer")
        pin=$(field infer_img_s "$peer")
        btr=$(awk -v a="$btr" -v b="$ptr" 'BEGIN{print (b>a)?b:a}')
        bin=$(awk -v a="$bin" -v b="$pin" 'BEGIN{print (b>a)?b:a}')
    done
    awk -v m="$1" -v b="$2" -v otr="$otr" -v ptr="$btr" -v oin="$oin" -v pin="$bin" -v mf="$mflop" -v pk="$peak2" \
        'BEGIN{g=otr*3*mf/1000; printf "%-8s %5d | %9.0f %9.0f %5.2fx | %9.0f %9.0f %5.2fx | %8.1f %5.1f%%\n",
               m, b, otr, ptr, otr/ptr, oin, pin, oin/pin, g, 100*g/pk}'
done
