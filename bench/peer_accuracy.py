#!/usr/bin/env python3
"""PyTorch peer for the default preset's accuracy bar: the `deotte` recipe (Chris Deotte's Kaggle kernel:
experiments/models/deotte.spec, Adam lr 1e-3 * 0.95^epoch, batch 64, per-sample random affine augmentation:
rotation +-10 degrees, zoom 0.9..1.1, shift +-10%) trained for a fixed wall-clock budget on this machine, scored
on the same hold-out as ours.

The hold-out is read from one of our run directories (val_ids.npy), so both sides train on the same 54000 images
and are scored on the same 6000. Epochs are started while the elapsed time plus the last epoch's time fits the
budget (validation after each epoch is inside the budget, as ours is). test.csv is never read.

usage: peer_accuracy.py --data data/train.npy --val-ids RUN/val_ids.npy [--minutes 15] [--threads 2] [--seed 1]
prints a line per epoch, then one line: epochs=.. seconds=.. val_acc=.. errors=..
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import make  # noqa: E402  (the same deotte network as the throughput peer)


def random_affine(x, gen, degrees=10.0, zoom=0.1, shift=0.1):
    """Per-sample random rotation, zoom and shift of a batch (N,1,28,28), bilinear, zeros outside."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    a = u[:, 0] * math.radians(degrees)
    s = 1.0 + u[:, 1] * zoom           # zoom factor of the content
    tx, ty = u[:, 2] * shift * 2, u[:, 3] * shift * 2   # normalized coordinates span 2
    cos, sin = torch.cos(a) / s, torch.sin(a) / s     # output -> input sampling matrix
    theta = torch.stack([torch.stack([cos, -sin, -tx], 1), torch.stack([sin, cos, -ty], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def evaluate(model, x, y):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for xb, yb in zip(x.split(500), y.split(500)):
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    model.train()
    return correct / len(x), loss / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="labelled .npy from digits-ingest")
    ap.add_argument("--val-ids", required=True, help="val_ids.npy of one of our runs (the hold-out)")
    ap.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget (default 15)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--seed", type=int, default=1, help="initialization, order, augmentation (default 1)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--json", help="also write the per-epoch record here")
    a = ap.parse_args()
    if a.minutes <= 0 or a.threads < 1 or a.batch < 1:
        ap.error("--minutes must be > 0, --threads and --batch >= 1")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    rec = np.load(a.data)
    images = torch.from_numpy(rec["image"].astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(rec["label"].astype(np.int64))
    val = np.load(a.val_ids).astype(np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[val] = False
    tr, va = torch.from_numpy(np.nonzero(mask)[0]), torch.from_numpy(val)
    xv, yv = images[va], labels[va]
    xt, yt = images[tr], labels[tr]

    model = make("deotte")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.95 ** e)
    budget = a.minutes * 60.0
    t0 = time.perf_counter()
    history, last = [], 0.0
    epoch = 0
    while time.perf_counter() - t0 + last <= budget:
        e0 = time.perf_counter()
        perm = torch.randperm(len(yt), generator=gen)
        for s in range(0, len(perm), a.batch):
            idx = perm[s:s + a.batch]
            xb = random_affine(xt[idx], gen)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yt[idx]).backward()
            opt.step()
        sched.step()
        acc, loss = evaluate(model, xv, yv)
        epoch += 1
        now = time.perf_counter()
        last = now - e0
        history.append({"epoch": epoch, "val_acc": acc, "val_loss": loss, "seconds": last, "elapsed": now - t0})
        print(f"epoch {epoch}: val_acc {acc * 100:.2f}% val_loss {loss:.4f} ({last:.1f} s, {now - t0:.0f} s in all)",
              flush=True)
    # the first epoch always runs (last = 0 and the budget is positive), so history is not empty
    final = history[-1]
    errors = round((1 - final["val_acc"]) * len(yv))
    print(f"epochs={epoch} seconds={final['elapsed']:.0f} threads={a.threads} val_acc={final['val_acc'] * 100:.2f} "
          f"errors={errors} of {len(yv)}", flush=True)
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"recipe": "deotte (torch)", "minutes": a.minutes, "threads": a.threads, "seed": a.seed,
                       "val_ids": a.val_ids, "epochs": history}, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
