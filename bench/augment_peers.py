#!/usr/bin/python3
"""augment_peers.py: torchvision's per-image augmentation speed on the digits, one core, for bench/augment_bench.sh.

    /usr/bin/python3 bench/augment_peers.py --data train.npy [--images N] [--repeat R]

Runs torchvision.transforms.ElasticTransform(alpha=34.0, sigma=4.0) (our "simard") and
RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)) (our "kaggle") on 28x28 uint8 tensors, one image per
call as a DataLoader would, with torch.set_num_threads(1). Prints one line per transform in the format of
augment_speed: "peer=torchvision transform=elastic images=2000 seconds=0.98 images_per_s=2040 cpu_seconds=0.97
images_per_cpu_s=2060" (CPU time: what other processes on a shared machine do not inflate).
--data is a dataset file (digits-ingest) or a Kaggle CSV (label,pixel0..pixel783).
"""
import argparse
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T


def load_images(path, n):
    if path.endswith(".npy"):
        d = np.load(path, mmap_mode="r")
        return np.ascontiguousarray(d["image"][:n])
    rows = np.loadtxt(path, delimiter=",", skiprows=1, max_rows=n, dtype=np.uint8)
    return rows[:, -784:].reshape(-1, 28, 28)


def bench(transform, images, repeat):
    tensors = [torch.from_numpy(im).unsqueeze(0) for im in images]  # (1, 28, 28) uint8
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for t in tensors:
            transform(t)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = load_images(a.data, a.images)
    print(f"# torch {torch.__version__} torchvision {torchvision.__version__}, {len(images)} images, 1 thread",
          file=sys.stderr)
    peers = [
        ("elastic", T.ElasticTransform(alpha=34.0, sigma=4.0)),
        ("affine", T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))),
    ]
    for name, tr in peers:
        s, c = bench(tr, images, a.repeat)
        print(f"peer=torchvision transform={name} images={len(images)} seconds={s:.4f} "
              f"images_per_s={len(images) / s:.0f} cpu_seconds={c:.4f} images_per_cpu_s={len(images) / c:.0f}",
              flush=True)


if __name__ == "__main__":
    main()
