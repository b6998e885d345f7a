#!/usr/bin/env bash
# bench/augment_bench.sh: augment/ beside torchvision 0.14, per core, on the same 28x28 images; our 2-thread
# scaling; and the expansion bar (60000 training images x10 with affine + elastic to .npy: < 15 s, < 256 MB RSS,
# numpy opens it and the labels match).
#
#   bench/augment_bench.sh [--quick]
#
# Images: data/train.npy if present, else data/train.csv (converted with digits-ingest into a temporary folder).
# Environment: BUILD_DIR (default build), PYTHON (default /usr/bin/python3), TMPDIR for the x10 output.
# The machine may be shared: every figure is the best of a few repeats, and the load average is printed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
PYTHON=${PYTHON:-/usr/bin/python3}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

say() { printf '== %s\n' "$*" >&2; }

if [ ! -x "$BUILD_DIR/bench/augment_speed" ] || [ ! -x "$BUILD_DIR/bin/digits-augment" ]; then
    say "building augment_speed and digits-augment in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j2 --target augment_speed digits-augment digits-ingest >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/augment_bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

DATA=$ROOT/data/train.npy
if [ ! -f "$DATA" ]; then
    [ -f "$ROOT/data/train.csv" ] || { echo "augment_bench: need data/train.npy or data/train.csv" >&2; exit 1; }
    [ -x "$BUILD_DIR/bin/digits-ingest" ] || cmake --build "$BUILD_DIR" -j2 --target digits-ingest >/dev/null
    say "data/train.npy not found: ingesting data/train.csv"
    "$BUILD_DIR/bin/digits-ingest" -q -o "$WORK/train.npy" "$ROOT/data/train.csv"
    DATA=$WORK/train.npy
fi

if [ $QUICK = 1 ]; then OURS_N=5000; PEER_N=300; REP=2; else OURS_N=20000; PEER_N=2000; REP=3; fi
say "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

say "ours: augment_speed (uint8 output), 1 and 2 threads"
"$BUILD_DIR/bench/augment_speed" --data "$DATA" --images $OURS_N --repeat $REP \
    --policy simard --policy kaggle --policy ciresan --threads 1 --threads 2 2>/dev/null | tee "$WORK/ours.txt"
"$BUILD_DIR/bench/augment_speed" --data "$DATA" --images $OURS_N --repeat $REP --f32 \
    --policy simard --policy kaggle --threads 1 2>/dev/null | tee -a "$WORK/ours.txt"

say "ours: CPU time per image at 1 and 2 threads (OMP_WAIT_POLICY=passive: waiting threads sleep, not spin)"
OMP_WAIT_POLICY=passive "$BUILD_DIR/bench/augment_speed" --data "$DATA" --images $((OURS_N / 4)) --repeat $((REP * 8)) \
    --policy simard --policy kaggle --policy ciresan --threads 1 --threads 2 2>/dev/null | tee "$WORK/passive.txt"

say "peer: torchvision, 1 thread"
"$PYTHON" "$ROOT/bench/augment_peers.py" --data "$DATA" --images $PEER_N --repeat $REP | tee "$WORK/peers.txt"

say "the bar: 60000 x 10 (policy ciresan: rotation, scaling, elastic) to .npy"
BIG=$DATA
NSRC=$("$PYTHON" -c "import numpy as np, sys; print(len(np.load(sys.argv[1], mmap_mode='r')))" "$DATA")
/usr/bin/time -v "$BUILD_DIR/bin/digits-augment" --data "$BIG" --out "$WORK/x10.npy" --format npy --policy ciresan \
    --copies 10 -q 2>"$WORK/time.txt"
WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
RSS=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
CHECK=$("$PYTHON" - "$WORK/x10.npy" "$WORK/x10-labels.npy" "$DATA" <<'EOF'
import sys
import numpy as np
x = np.load(sys.argv[1], mmap_mode="r")
y = np.load(sys.argv[2])
d = np.load(sys.argv[3], mmap_mode="r")
ok = x.shape == (10 * len(d), 28, 28) and x.dtype == np.uint8 and (y == np.tile(d["label"], 10)).all()
print(f"numpy.load: images {x.shape} {x.dtype}, labels {y.shape}, labels match: {bool(ok)}")
EOF
)
rm -f "$WORK"/x10*

"$PYTHON" - "$WORK/ours.txt" "$WORK/peers.txt" "$WALL" "$RSS" "$NSRC" "$CHECK" "$WORK/passive.txt" <<'EOF'
import sys
def parse(path):
    rows = []
    for line in open(path):
        if "=" in line and not line.startswith("#"):
            rows.append(dict(kv.split("=", 1) for kv in line.split()))
    return rows
ours, peers, passive = parse(sys.argv[1]), parse(sys.argv[2]), parse(sys.argv[7])
wall, rss_kb, nsrc, check = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def ips(policy, threads, output="u8", key="images_per_s"):
    for r in ours:
        if r["policy"] == policy and r["threads"] == str(threads) and r["output"] == output:
            return float(r[key])
peer = {r["transform"]: r for r in peers}
print()
print("Per core: one thread each; 'wall' = images / elapsed seconds, 'cpu' = images / CPU seconds of the process")
print("(the same unless other processes share the cores). The bar is judged on cpu.")
print(f"{'':34s}{'ours wall':>11s}{'ours cpu':>11s}{'tv wall':>9s}{'tv cpu':>9s}{'ratio wall':>12s}{'ratio cpu':>11s}{'bar':>6s}")
for name, pol, bar in (("elastic (alpha 34, sigma 4)", "simard", 50), ("affine (rot 10, shift 10%, zoom)", "kaggle", 30)):
    ow, oc = ips(pol, 1), ips(pol, 1, key="images_per_cpu_s")
    p = peer[name.split()[0]]
    pw, pc = float(p["images_per_s"]), float(p["images_per_cpu_s"])
    print(f"{name:34s}{ow:9.0f}/s{oc:9.0f}/s{pw:7.0f}/s{pc:7.0f}/s{ow / pw:11.1f}x{oc / pc:10.1f}x{bar:5d}x  "
          f"{'PASS' if oc / pc >= bar else 'FAIL'}")
print()
for pol in ("simard", "kaggle", "ciresan"):
    a, b = ips(pol, 1), ips(pol, 2)
    print(f"2-thread scaling (wall), {pol:8s}: {a:9.0f}/s -> {b:9.0f}/s = {b / a:.2f}x (bar 1.8x) "
          f"{'PASS' if b / a >= 1.8 else 'FAIL (is the machine busy? see the load average)'}")
print("Parallel efficiency in CPU time (images per CPU-second at 2 threads / at 1 thread, waiting threads asleep):")
print("what 2 threads give when both get a core (the wall figure above needs an idle machine).")
for pol in ("simard", "kaggle", "ciresan"):
    r = {x["threads"]: float(x["images_per_cpu_s"]) for x in passive if x["policy"] == pol}
    e = r["2"] / r["1"]
    print(f"  {pol:8s}: {r['1']:9.0f} -> {r['2']:9.0f} per CPU-second, efficiency {e:.3f}, 2 cores -> {2 * e:.2f}x")
f = ips("simard", 1, "f32")
if f:
    print(f"float output (aug_batch_f32, as the train stage uses it), 1 thread wall: simard {f:.0f}/s, "
          f"kaggle {ips('kaggle', 1, 'f32'):.0f}/s")
m, s = wall.split(":")[-2:]
secs = float(m) * 60 + float(s)
print()
print(f"expand {nsrc} x10 (ciresan) to .npy: {secs:.2f} s (bar < 15 s) {'PASS' if secs < 15 else 'FAIL'}, "
      f"max RSS {rss_kb / 1024:.0f} MB (bar < 256 MB) {'PASS' if rss_kb < 256 * 1024 else 'FAIL'}")
print(check)
print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]}")
EOF
