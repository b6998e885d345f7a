#!/bin/bash
# Conditional GAN training, `digits-gan train` against its PyTorch peer (bench/gan_train_peer.py: the same nets,
# init, data, losses and Adam), one after the other on the same threads for the same training time; both write
# SAMPLES generated digits (image i of label i % 10) as a labelled dataset; then images/s of both and their ratio,
# a check that the peer's modules draw byte-identical digits from the C run's weights, and, where digits-gan has a
# `judge` command and CLASSIFIER names a digits-train run, both sample files judged (conditional accuracy,
# digits-FID).
#
# usage: bench/gan_train_bench.sh [SECONDS (60)] [THREADS (2)] [OUT (out/gan-train)] [BUILD (build)]
# env:   DATA (data/train.npy)  SAMPLES (10000)  SEED (1)  CLASSIFIER (a digits-train run for judge)
#        REAL (the real digits judge compares with; default DATA)
# Training time: C counts SECONDS from the start of its run (dataset open and init included, well under a second),
# the peer from its first step (after importing torch and loading the data); images/s is each side's own training
# loop (steps x 64 / seconds of steps, excluding the per-epoch grid and checkpoint on the C side).
set -euo pipefail
secs=${1:-60} threads=${2:-2} out=${3:-out/gan-train} build=${4:-build}
data=${DATA:-data/train.npy} n=${SAMPLES:-10000} seed=${SEED:-1} real=${REAL:-$data}
here=$(dirname "$0") cpus=$(nproc --all)
gan=$build/bin/digits-gan
py=/usr/bin/python3
export OMP_NUM_THREADS=$threads
# both are libgomp programs: the stages' spin limit (core/dg_cli.c dg_stage_init) for the peer too, as
# bench/gan_bench.sh (on a loaded machine a spinning OpenMP barrier costs PyTorch more than the work)
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
[ -x "$gan" ] || { echo "gan_train_bench: $gan missing (build first)" >&2; exit 1; }
mkdir -p "$out"
rm -rf "$out/c"
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cpus CPUs;" \
     "load: $(cut -d' ' -f1-3 /proc/loadavg); ${secs}s each, $threads thread(s), data $data"

echo "## C: $gan train --seconds $secs --threads $threads"
"$gan" train --data "$data" --run "$out/c" --seconds "$secs" --epochs 100000 --seed "$seed" --threads "$threads" \
    --quiet
"$gan" sample --label all -n "$n" -o "$out/c-samples.npy" --seed "$seed" --threads "$threads" "$out/c"
cat "$out/c/metrics.jsonl"

echo "## PyTorch: $here/gan_train_peer.py --seconds $secs --threads $threads (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$py" "$here/gan_train_peer.py" --data "$data" --seconds "$secs" --epochs 100000 --seed "$seed" \
    --threads "$threads" --samples "$n" -o "$out/torch-samples.npy" | tee "$out/torch.jsonl"

"$py" - "$out/c/metrics.jsonl" "$out/torch.jsonl" <<'EOF'
import json, sys
c = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
c_steps, c_secs = sum(l["steps"] for l in c), sum(l["seconds"] for l in c)
t_sum = t[-1]
c_ips = c_steps * 64 / c_secs
print(f"C:       {c_steps} steps ({c_steps * 64} images) in {c_secs:.1f} s of steps: {c_ips:.1f} images/s; "
      f"last loss_d {c[-1]['loss_d']:.3f} loss_g {c[-1]['loss_g']:.3f}")
print(f"PyTorch: {t_sum['steps']} steps ({t_sum['images']} images) in {t_sum['seconds']:.1f} s of steps: "
      f"{t_sum['images_per_s']:.1f} images/s; last loss_d {t[-2]['loss_d']:.3f} loss_g {t[-2]['loss_g']:.3f}")
print(f"C / PyTorch: {c_ips / t_sum['images_per_s']:.2f}x images/s")
EOF

# The same architecture: the peer's modules with the C run's weights draw the digits digits-gan draws.
"$gan" sample --label all -n 100 -o "$out/check-c.npy" --seed "$seed" --threads "$threads" "$out/c"
"$py" "$here/gan_train_peer.py" --check "$out/c" --samples 100 -o "$out/check-torch.npy" --seed "$seed" \
    --threads "$threads" >/dev/null
if cmp -s "$out/check-c.npy" "$out/check-torch.npy"; then
    echo "check: the peer's modules with the C run's weights draw the same 100 digits, byte for byte"
else
    echo "check: the peer's modules with the C run's weights draw OTHER digits than digits-gan" \
         "($(cmp -l "$out/check-c.npy" "$out/check-torch.npy" | wc -l) bytes differ)"
fi

echo "samples: $out/c-samples.npy $out/torch-samples.npy ($n digits each)"
if ! "$gan" --help 2>&1 | grep -q 'digits-gan judge'; then
    echo "judge: $gan has no judge command (yet): stopping after sampling"
    exit 0
fi
if [ -z "${CLASSIFIER:-}" ]; then
    echo "judge: set CLASSIFIER to a digits-train run (the judge) to score both sample files: stopping after sampling"
    exit 0
fi
for who in c torch; do
    echo "## judge $who"
    "$gan" judge --samples "$out/$who-samples.npy" --classifier "$CLASSIFIER" --real "$real" --threads "$threads"
done
